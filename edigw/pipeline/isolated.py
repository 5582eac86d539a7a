"""Reading a suspect file in a child process, so that it can kill only that process.

A file is *suspect* when a gateway died while reading it: the journal records the reading
process before a byte is read, so the next start finds the file ``received`` with a dead
reader. The death may be the file's fault (a native reader aborting on a hostile sheet, the
OOM killer) or not (``kill -9``, a power cut, a deploy): reading it again in the gateway could
kill it again, in a loop, while failing it outright would fail an innocent file after every
unrelated crash. So a suspect is read once more, alone, in a child process with a memory
limit and a time limit:

- the child reads it: its documents are journalled as usual (it was innocent);
- the child dies (a signal, the memory limit, the time limit): the file is failed with how,
  and never read in the gateway again.

An e-invoice flow validates a file before mapping it (``validating``), and the rules engine is
native code too (SaxonC): a suspect e-invoice is therefore validated in a child as well
(:func:`validate_isolated`), its verdict journalled by the gateway as if it had validated it,
so that a file that crashes the engine is failed like one that crashes a reader. That child's
memory is capped by its data size (``RLIMIT_DATA``), not its address space: SaxonC's runtime
reserves about 32 GB of address space when it starts, most of it never used.

Only suspects pay for the child (a Python start, about half a second): every other file is
read in the gateway, on the hot path. The child loads the flow's mapping from its file, reads
within the flow's limits (``limits:``, handed over with the request) and sends back the
documents pickled on its stdout; it is this same program, so its output is
trusted like the gateway's own memory.
"""

from __future__ import annotations

import json
import pickle
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edigw.errors import EdigwError
from edigw.formats.limits import ReaderLimits
from edigw.model import MappedDocument

if TYPE_CHECKING:
    from edigw.pipeline.validating import Verdict
    from edigw.validation.policy import ValidationPolicy

#: How long an isolated reading may take before it is stopped (and the file failed).
ISOLATED_TIMEOUT = 600.0
#: The child's address-space limit: a file needing more fails instead of swapping the host.
ISOLATED_MEMORY = 2 * 1024**3
_WAIT_STEP = 0.2


class IsolationUnavailable(EdigwError):
    """No isolated reading could be made (the child could not start or load the mapping,
    or the gateway is stopping): nothing was learnt about the file, try again later."""


@dataclass(frozen=True, slots=True)
class ReaderKilled:
    """The isolated reader did not come back: ``how`` it ended, for people."""

    how: str


def map_isolated(
    mapping: Path,
    archived: Path,
    *,
    source_name: str,
    encoding: str | None,
    limits: ReaderLimits | None = None,
    stop: threading.Event | None = None,
    timeout: float | None = None,
    memory: int = ISOLATED_MEMORY,
) -> list[MappedDocument] | str | ReaderKilled:
    """Map ``archived`` with the mapping file ``mapping`` in a child process, within the
    flow's ``limits`` (the readers' defaults when None).

    Returns the documents, or why the file cannot be read (as
    ``file_documents.read_documents`` would), or how the child died. Raises
    :class:`IsolationUnavailable` when the child could not be started or could not load the
    mapping, and when ``stop`` is set meanwhile (the child is stopped; the file stays
    suspect). ``timeout`` defaults to ``isolated_timeout(limits)``.
    """
    request = {
        "task": "map",
        "mapping": str(mapping),
        "file": str(archived),
        "name": source_name,
        "encoding": encoding,
        "limits": asdict(limits) if limits is not None else None,
        "memory": memory,
    }
    timeout = isolated_timeout(limits) if timeout is None else timeout
    ended = _run_child(request, source_name=source_name, stop=stop, timeout=timeout)
    if isinstance(ended, ReaderKilled):
        return ended
    kind, value = _answer(*ended, source_name)
    if kind == "documents":
        documents: list[MappedDocument] = value
        return documents
    return str(value)  # unreadable


def validate_isolated(
    archived: Path,
    *,
    source_name: str,
    policy: ValidationPolicy,
    stop: threading.Event | None = None,
    timeout: float = ISOLATED_TIMEOUT,
    memory: int = ISOLATED_MEMORY,
) -> Verdict | ReaderKilled | None:
    """Validate ``archived`` per ``policy`` in a child process: what
    ``validating.validate_file`` gives in the gateway (``None`` for no e-invoice), or how the
    child died. Raises :class:`IsolationUnavailable` as :func:`map_isolated` does (and when
    the rule files cannot be compiled: the installation's trouble, not the file's)."""
    request = {
        "task": "validate",
        "file": str(archived),
        "name": source_name,
        "policy": policy.model_dump(mode="json"),
        "memory": memory,
    }
    ended = _run_child(request, source_name=source_name, stop=stop, timeout=timeout)
    if isinstance(ended, ReaderKilled):
        return ended
    _kind, verdict = _answer(*ended, source_name)
    return verdict  # type: ignore[no-any-return]


def _run_child(
    request: dict[str, Any],
    *,
    source_name: str,
    stop: threading.Event | None,
    timeout: float,
) -> tuple[bytes, bytes] | ReaderKilled:
    """Run ``request`` in a child: its stdout and stderr, or how it died."""
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "edigw.pipeline.isolated"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        msg = f"cannot start an isolated reader for {source_name}: {exc.strerror or exc}"
        raise IsolationUnavailable(msg) from exc
    deadline = time.monotonic() + timeout
    pending: bytes | None = json.dumps(request).encode("utf-8")
    while True:
        try:
            out, err = child.communicate(pending, timeout=_WAIT_STEP)
            break
        except subprocess.TimeoutExpired:
            pending = None  # handed over already: communicate() must not send it twice
            if stop is not None and stop.is_set():
                _end(child)
                msg = f"the gateway is stopping: the isolated reading of {source_name} is cut"
                raise IsolationUnavailable(msg) from None
            if time.monotonic() >= deadline:
                _end(child)
                return ReaderKilled(f"did not finish within {timeout:.0f} s and was stopped")
    return _death(child.returncode, out, err) or (out, err)


def isolated_timeout(limits: ReaderLimits | None) -> float:
    """``ISOLATED_TIMEOUT``, or the flow's ``max_seconds`` and a minute to start when that is
    longer: a file its flow allows that long is not stopped sooner in isolation."""
    if limits is None:
        return ISOLATED_TIMEOUT
    return max(ISOLATED_TIMEOUT, limits.max_seconds + 60)


def _end(child: subprocess.Popen[bytes]) -> None:
    child.kill()
    child.communicate()


def _death(returncode: int, out: bytes, err: bytes) -> ReaderKilled | None:
    """How the child died, or None when it answered."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return ReaderKilled(f"was killed by signal {-returncode} ({name})")
    if returncode != 0 or not out:
        last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        return ReaderKilled(f"ended with exit status {returncode} ({last[0][:300]})")
    return None


def _answer(out: bytes, _err: bytes, source_name: str) -> tuple[str, Any]:
    """The child's ``(kind, value)``; an ``error`` answer raises IsolationUnavailable."""
    kind, value = pickle.loads(out)  # our own child: see the module docstring
    if kind == "error":
        msg = f"the isolated reader could not read {source_name}: {value}"
        raise IsolationUnavailable(msg)
    return str(kind), value


def _limit_memory(limit: int, kind: int = resource.RLIMIT_AS) -> None:
    _soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(kind, (limit, hard))


def main() -> None:
    """The child: read one request on stdin, answer ``(kind, value)`` pickled on stdout."""
    request: dict[str, Any] = json.loads(sys.stdin.buffer.read())
    answer = _validate(request) if request.get("task") == "validate" else _map(request)
    sys.stdout.buffer.write(pickle.dumps(answer))
    sys.stdout.buffer.flush()


def _validate(request: dict[str, Any]) -> tuple[str, Any]:
    memory = int(request["memory"])
    _limit_memory(memory, resource.RLIMIT_DATA)  # see the module docstring
    from edigw.errors import DataProblem
    from edigw.model import Location
    from edigw.pipeline.validating import Verdict, validate_file
    from edigw.validation.policy import ValidationPolicy

    name = str(request["name"])
    try:
        policy = ValidationPolicy.model_validate(request["policy"])
        return ("verdict", validate_file(Path(request["file"]), source_name=name, policy=policy))
    except MemoryError:
        problem = DataProblem(
            f"validating it needs more than {memory // 2**20} MB of memory", Location(name)
        )
        return ("verdict", Verdict((), (problem,), "not validated"))
    except EdigwError as exc:  # the rules cannot be compiled: nothing learnt about the file
        return ("error", str(exc))


def _map(request: dict[str, Any]) -> tuple[str, Any]:
    memory = int(request["memory"])
    _limit_memory(memory)
    from edigw.mapping import load_mapping
    from edigw.pipeline.file_documents import read_documents

    name = str(request["name"])
    answer: tuple[str, Any]
    try:
        mapping = load_mapping(Path(request["mapping"]))
        limits = request.get("limits")
        result = read_documents(
            mapping,
            Path(request["file"]),
            source_name=name,
            encoding=request["encoding"],
            limits=ReaderLimits(**limits) if limits is not None else None,
        )
        answer = ("unreadable", result) if isinstance(result, str) else ("documents", result)
    except MemoryError:
        answer = (
            "unreadable",
            f"{name}: reading it needs more than {memory // 2**20} MB of memory",
        )
    except EdigwError as exc:  # the mapping could not be loaded: nothing learnt about the file
        answer = ("error", str(exc))
    return answer


if __name__ == "__main__":
    main()
