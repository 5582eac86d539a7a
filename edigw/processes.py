"""Whether a process of this host still runs: what a dead gateway left (document leases,
staging folders) may be taken over at once instead of after its lease."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True unless no process has this id (one we may not signal still counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_ticks(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, Linux), ``""`` when unknown.

    With the pid, it names one process for good: a pid is reused, a (pid, start) pair is not
    (a gateway in a container is pid 1 after every restart).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return ""
    # Field 22 counted after the command name, which is in parentheses and may hold spaces.
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[19].decode("ascii") if len(fields) > 19 else ""


def process_identity(host: str) -> str:
    """This process as ``host:pid:start``: what the journal records as a file's reader."""
    pid = os.getpid()
    return f"{host}:{pid}:{start_ticks(pid)}"


def identity_alive(identity: str, *, host: str) -> bool | None:
    """Whether the process named ``host:pid:start`` still runs; ``None`` when it ran on
    another host (only a lease can tell then)."""
    name, _, start = identity.rpartition(":")
    holder_host, _, pid = name.rpartition(":")
    if holder_host != host:
        return None
    if not pid.isdigit() or not pid_alive(int(pid)):
        return False
    return not start or start_ticks(int(pid)) in ("", start)
