"""One Ecolix call budget per agreement for every edigw process on a host, kept in one file.

The agreement (N calls in any rolling period) is per customer, not per process: the gateway's
intake process, its sending child and an operator's ``edigw replay`` on one machine, each
with a :class:`~edigw.ecolix.limiter.LocalLedger` of its own, would together send up to 3N.
:class:`HostLedger` keeps the one budget they share (the rule and its proof are in
``edigw/ecolix/limiter.py``).

- **Microseconds, no round trip.** The state is a small fixed binary layout that every process
  maps into memory; ``take`` and ``give_back`` hold ``flock`` on the file only while they read
  and write a few words. SQLite would cost a write transaction per call (journal writes, and
  retries while another process holds it), a budget server one more thing to run and a round
  trip per call. Several hosts share a budget through the PostgreSQL journal instead
  (``edigw.journal.budget.SharedLedger``).
- **One clock, one order.** ``CLOCK_MONOTONIC`` (``time.monotonic``) is one clock for the
  whole host and never jumps with NTP; the lock orders the acquisitions. That is all the
  proof needs.
- **A crashed process's calls expire.** The kernel drops the lock of a process that dies. A call
  left in flight by a process that is gone, or older than ``lease`` (at least the client's
  longest request), counts as completed at ``min(now, started + lease)``. Updates are
  ordered so that a process killed half-way through one leaves a call counted twice, never
  not at all.
- **Reboot.** The monotonic clock starts again at boot and no call survives one: the file keeps
  the boot id it was written under, and the first process to open it after a reboot clears it.

The file must be on a local file system (``flock`` and shared mappings are not coherent over
NFS), and its processes must share one pid and clock name space (not in separate containers).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from edigw.ecolix.limiter import IDLE_POLL, Grant
from edigw.errors import JournalError
from edigw.filemodes import FileModes, make_folders
from edigw.processes import pid_alive

log = logging.getLogger("edigw.budget")

MAGIC = b"EDIGWCB\x00"
LAYOUT_VERSION = 1
ENTRIES = 256  # calls in flight at once, every process together
INITIAL_RING = 64  # completion times the file holds at first; it grows with the agreement
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
_MIN_WAIT = 0.001  # as the limiter's: float rounding must not make a zero-length wait loop

# The file, little-endian. A 64-byte header: magic, layout version, ENTRIES, boot id digest,
# ring capacity, ring head, ring count, last ticket. The in-flight table, in four columns of
# ENTRIES values: state byte (0 free, 1 in flight), pid, start, ticket. Then the ring of
# completion times, ascending from its head, wrapping at its capacity. The ticket tells the
# call a ledger started from another that took its entry after its lease ended.
_HEADER = struct.Struct("<8sII16sQQQQ")
_BOOT_AT = 16
_CAPACITY_AT = 32
_HEAD_AT = 40
_TICKET_AT = 56
_STATES_AT = _HEADER.size
_PIDS_AT = _STATES_AT + ENTRIES
_STARTS_AT = _PIDS_AT + 8 * ENTRIES
_TICKETS_AT = _STARTS_AT + 8 * ENTRIES
_RING_AT = _TICKETS_AT + 8 * ENTRIES
_FREE, _IN_FLIGHT = 0, 1
_FREE_BYTE = bytes([_FREE])

_RING_STATE = struct.Struct("<QQQ")  # capacity, head, count
_HEAD_COUNT = struct.Struct("<QQ")
_I64 = struct.Struct("<q")
_U64 = struct.Struct("<Q")
_F64 = struct.Struct("<d")


class HostLedger:
    """The calls of one agreement by every process of this host, in a memory-mapped file.

    A :class:`edigw.ecolix.limiter.CallLedger`. Open it with :meth:`open`; threads may share
    one ledger, and a slot goes back to the ledger that gave it. ``lease`` is how long a call
    may stay in flight before it is taken for completed (its process hung or was killed).
    """

    def __init__(
        self,
        path: Path,
        *,
        lease: float,
        modes: FileModes,
        clock: Callable[[], float],
        boot: bytes,
    ) -> None:
        if lease <= 0:
            msg = f"lease must be positive, got {lease}"
            raise ValueError(msg)
        self.path = path
        self.lease = lease
        self._modes = modes
        self._clock = clock
        self._boot = boot
        self._lock = threading.Lock()  # flock is per open file: threads share this one
        self._held: dict[int, int] = {}  # slot -> ticket, the slots this ledger gave
        self._pid = os.getpid()
        # _mapped: the ring's capacity as this process mapped it (another may have grown it)
        self._fd, self._map, self._mapped = _attach(path, modes, boot)

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        lease: float,
        file_mode: int = 0o600,
        clock: Callable[[], float] = time.monotonic,
        boot_id: str | None = None,
    ) -> HostLedger:
        """The budget kept in ``path``, created (with its folders) when missing.

        ``boot_id`` stands for the host's (``/proc/sys/kernel/random/boot_id``) in tests.
        Raises ``JournalError`` when the file cannot be opened or is no call budget.
        """
        boot = boot_id if boot_id is not None else _read_boot_id()
        return cls(
            path,
            lease=lease,
            modes=FileModes(file_mode),
            clock=clock,
            boot=hashlib.sha256(boot.encode()).digest()[:16],
        )

    def close(self) -> None:
        """Let go of the file (calls in flight keep their entries until their lease ends)."""
        with self._lock:
            if self._fd >= 0:
                self._map.close()
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def take(self, calls: int, period: float) -> Grant:
        """Take a slot if fewer than ``calls`` calls count now; else say how long to wait.

        Raises ``JournalError`` when the file cannot be read: then no call may go.
        """
        self._follow_fork()
        with self._lock:
            try:
                self._lock_file()
                try:
                    return self._take(calls, period)
                finally:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
            except OSError as err:
                msg = f"cannot take a slot of the Ecolix call budget {self.path}: {_reason(err)}"
                raise JournalError(msg) from err

    def give_back(self, slot: int) -> None:
        """Record the slot's call as completed now; a failure only leaves it in flight longer."""
        self._follow_fork()
        with self._lock:
            ticket = self._held.pop(slot, None)
            if ticket is None:
                log.debug(
                    "call budget %s: slot %d is not held here (given back twice?)", self.path, slot
                )
                return
            try:
                self._lock_file()
                try:
                    self._give_back(slot, ticket)
                finally:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
            except (OSError, JournalError) as err:
                reason = _reason(err) if isinstance(err, OSError) else str(err)
                log.warning(
                    "cannot record the end of an Ecolix call in the call budget %s "
                    "(it counts until its lease of %.0f s ends): %s",
                    self.path,
                    self.lease,
                    reason,
                )

    def counted(self, period: float) -> int:
        """Calls that count against the agreement now, every process together (for reports)."""
        self._follow_fork()
        with self._lock:
            try:
                self._lock_file()
                try:
                    return self._counted(period)
                finally:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
            except OSError as err:
                msg = f"cannot read the Ecolix call budget {self.path}: {_reason(err)}"
                raise JournalError(msg) from err

    def _take(self, calls: int, period: float) -> Grant:
        now = self._clock()
        horizon = now - period
        self._prune(horizon)
        if calls > self._ring()[0]:
            self._grow(calls)
        capacity, head, count = self._ring()
        in_flight = self._in_flight()
        if (in_flight + count >= calls or in_flight == ENTRIES) and self._expire(now, horizon):
            capacity, head, count = self._ring()
            in_flight = self._in_flight()
        if in_flight == ENTRIES:
            return Grant(None, IDLE_POLL)
        if in_flight + count < calls:
            return Grant(slot=self._hold(now))
        if count:
            return Grant(None, max(self._completion(head, 0, capacity) - horizon, _MIN_WAIT))
        return Grant(None, IDLE_POLL)  # every slot in flight: look again soon

    def _counted(self, period: float) -> int:
        capacity, head, count = self._ring()
        horizon = self._clock() - period
        in_window = sum(1 for i in range(count) if self._completion(head, i, capacity) > horizon)
        return self._in_flight() + in_window

    def _give_back(self, slot: int, ticket: int) -> None:
        now = self._clock()
        mine = (
            self._map[_STATES_AT + slot] == _IN_FLIGHT
            and _U64.unpack_from(self._map, _TICKETS_AT + 8 * slot)[0] == ticket
        )
        self._record(now)
        if mine:
            self._map[_STATES_AT + slot] = _FREE
        else:
            log.warning(
                "call budget %s: an Ecolix call outlived its lease of %.0f s; it counts again "
                "from its end (make the lease longer than the client's longest request)",
                self.path,
                self.lease,
            )

    def _in_flight(self) -> int:
        return self._map[_STATES_AT : _STATES_AT + ENTRIES].count(_IN_FLIGHT)

    def _hold(self, now: float) -> int:
        index = self._map.find(_FREE_BYTE, _STATES_AT, _STATES_AT + ENTRIES) - _STATES_AT
        ticket = _U64.unpack_from(self._map, _TICKET_AT)[0] + 1
        _U64.pack_into(self._map, _TICKET_AT, ticket)
        _I64.pack_into(self._map, _PIDS_AT + 8 * index, self._pid)
        _F64.pack_into(self._map, _STARTS_AT + 8 * index, now)
        _U64.pack_into(self._map, _TICKETS_AT + 8 * index, ticket)
        self._map[_STATES_AT + index] = _IN_FLIGHT
        self._held[index] = ticket
        return index

    def _expire(self, now: float, horizon: float) -> bool:
        """Turn the calls of dead processes, and calls past their lease, into completions."""
        expired = False
        states = self._map[_STATES_AT : _STATES_AT + ENTRIES]
        for index, state in enumerate(states):
            if state != _IN_FLIGHT:
                continue
            started = _F64.unpack_from(self._map, _STARTS_AT + 8 * index)[0]
            pid = _I64.unpack_from(self._map, _PIDS_AT + 8 * index)[0]
            if started + self.lease <= now:
                ended = started + self.lease
            elif pid != self._pid and not pid_alive(pid):
                ended = now
            else:
                continue
            if ended > horizon:
                self._record(ended)
            self._map[_STATES_AT + index] = _FREE
            expired = True
        return expired

    def _prune(self, horizon: float) -> None:
        capacity, head, count = self._ring()
        gone = 0
        while gone < count and self._completion(head, gone, capacity) <= horizon:
            gone += 1
        if gone:
            _HEAD_COUNT.pack_into(self._map, _HEAD_AT, (head + gone) % capacity, count - gone)

    def _record(self, ended: float) -> None:
        """Insert a completion in order: first a copy of the last, so nothing is ever lost."""
        capacity, head, count = self._ring()
        if count == capacity:
            self._grow(capacity)
            capacity, head, count = self._ring()
        place = count
        while place > 0 and self._completion(head, place - 1, capacity) > ended:
            place -= 1
        for at in range(count, place, -1):
            self._set_completion(head, at, capacity, self._completion(head, at - 1, capacity))
            if at == count:
                _HEAD_COUNT.pack_into(self._map, _HEAD_AT, head, count + 1)
        self._set_completion(head, place, capacity, ended)
        if place == count:
            _HEAD_COUNT.pack_into(self._map, _HEAD_AT, head, count + 1)

    def _grow(self, calls: int) -> None:
        """Make room for ``calls`` completions at least; the old ring stays valid until the
        header points at the new one (copied beyond it)."""
        capacity, head, count = self._ring()
        larger = max(calls, 2 * capacity)
        kept = [self._completion(head, i, capacity) for i in range(count)]
        os.ftruncate(self._fd, _ring_offset(larger))
        self._remap(larger)
        struct.pack_into(f"<{count}d", self._map, _ring_offset(capacity), *kept)
        _RING_STATE.pack_into(self._map, _CAPACITY_AT, larger, capacity, count)

    def _ring(self) -> tuple[int, int, int]:
        """Capacity, head and count of the ring, mapping it anew if another process grew it."""
        capacity, head, count = _RING_STATE.unpack_from(self._map, _CAPACITY_AT)
        if capacity != self._mapped:
            if os.fstat(self._fd).st_size < _ring_offset(capacity):
                msg = (
                    f"the Ecolix call budget {self.path} is damaged (shorter than its header says)"
                )
                raise JournalError(msg)
            self._remap(capacity)
        if capacity < 1 or head >= capacity or count > capacity:
            msg = f"the Ecolix call budget {self.path} is damaged (ring {head}+{count}/{capacity})"
            raise JournalError(msg)
        return capacity, head, count

    def _completion(self, head: int, i: int, capacity: int) -> float:
        value: float = _F64.unpack_from(self._map, _RING_AT + 8 * ((head + i) % capacity))[0]
        return value

    def _set_completion(self, head: int, i: int, capacity: int, value: float) -> None:
        _F64.pack_into(self._map, _RING_AT + 8 * ((head + i) % capacity), value)

    def _remap(self, capacity: int) -> None:
        self._map.close()
        self._map = mmap.mmap(self._fd, _ring_offset(capacity))
        self._mapped = capacity

    def _lock_file(self) -> None:
        if self._fd < 0:
            msg = f"the Ecolix call budget {self.path} is closed"
            raise JournalError(msg)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def _follow_fork(self) -> None:
        """A forked child opens the file again: sharing the parent's open file would share
        its lock, which then excludes neither of them."""
        if os.getpid() == self._pid or self._fd < 0:
            return
        self._lock = threading.Lock()
        self._held = {}
        self._pid = os.getpid()
        self._map.close()
        os.close(self._fd)
        self._fd, self._map, self._mapped = _attach(self.path, self._modes, self._boot)


def _attach(path: Path, modes: FileModes, boot: bytes) -> tuple[int, mmap.mmap, int]:
    """Open the file (created when missing), ready it for this boot and map it: the file
    descriptor, the mapping and the ring's capacity."""
    try:
        make_folders(path.parent, modes)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, modes.file)
        except FileExistsError:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        else:
            _set_mode(fd, modes.file)
    except OSError as err:
        msg = f"cannot open the Ecolix call budget {path}: {_reason(err)}"
        raise JournalError(msg) from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            capacity = _ready(fd, path, boot)
            return fd, mmap.mmap(fd, _ring_offset(capacity)), capacity
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError as err:
        os.close(fd)
        msg = f"cannot open the Ecolix call budget {path}: {_reason(err)}"
        raise JournalError(msg) from err
    except BaseException:
        os.close(fd)
        raise


def _set_mode(fd: int, mode: int) -> None:
    """The file's mode, whatever the umask took away (closes the file if that fails)."""
    try:
        os.fchmod(fd, mode)
    except OSError:
        os.close(fd)
        raise


def _ready(fd: int, path: Path, boot: bytes) -> int:
    """Lay out a new file, or clear one written before the last boot; returns the capacity.

    The magic, then the boot id, are written last: a process killed before that leaves a
    file the next one lays out, or clears, again.
    """
    raw = os.pread(fd, _HEADER.size, 0)
    if not raw or (len(raw) == _HEADER.size and raw[:8] == bytes(8)):
        os.ftruncate(fd, _ring_offset(INITIAL_RING))
        header = _HEADER.pack(bytes(8), LAYOUT_VERSION, ENTRIES, boot, INITIAL_RING, 0, 0, 0)
        os.pwrite(fd, header + bytes(_RING_AT - _HEADER.size), 0)
        os.pwrite(fd, MAGIC, 0)
        return INITIAL_RING
    fields = _HEADER.unpack(raw) if len(raw) == _HEADER.size else None
    if fields is None or fields[:3] != (MAGIC, LAYOUT_VERSION, ENTRIES):
        msg = (
            f"{path} is not an Ecolix call budget of this edigw version: "
            "remove it, or name another file, while no edigw process runs"
        )
        raise JournalError(msg)
    written_boot, capacity = fields[3], int(fields[4])
    if os.fstat(fd).st_size < _ring_offset(capacity):
        msg = f"the Ecolix call budget {path} is damaged (shorter than its header says)"
        raise JournalError(msg)
    if written_boot != boot:
        log.info("call budget %s: written before the last boot, cleared", path)
        os.pwrite(fd, bytes(_RING_AT - _STATES_AT), _STATES_AT)
        os.pwrite(fd, _HEAD_COUNT.pack(0, 0), _HEAD_AT)
        os.pwrite(fd, boot, _BOOT_AT)
    return capacity


def _ring_offset(index: int) -> int:
    """Where the ring's ``index``-th place starts; the file's size for a ring of ``index``."""
    return _RING_AT + 8 * index


def _read_boot_id() -> str:
    try:
        return BOOT_ID_PATH.read_text(encoding="ascii").strip()
    except OSError as err:
        msg = f"cannot read the boot id ({BOOT_ID_PATH}): the host's call budget needs Linux"
        raise JournalError(msg) from err


def _reason(err: OSError) -> str:
    return err.strerror or str(err)
