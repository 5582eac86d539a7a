"""At most two glibc malloc arenas for a running gateway: its memory peak, not its speed.

glibc gives a thread that finds the malloc arena in use an arena of its own, up to eight per
core. A gateway runs some forty threads (senders, pollers, the mover, the publisher...), and
memory one of them frees stays in its arena, where the others cannot reuse it: the process's
peak grows with the number of arenas, not with what it holds. Two arenas are glibc's own knob
for such services (``M_ARENA_MAX``, also read from ``MALLOC_ARENA_MAX`` when a process
starts). Measured with ``benchmarks/bigfile.py``: see docs/benchmarks.md, twelfth session.

``edigw run`` sets it for itself, and in its environment for the processes it starts (the
sending process, isolated readers). An operator's own ``MALLOC_ARENA_MAX`` is left as it is;
on a C library other than glibc nothing is done.
"""

from __future__ import annotations

import ctypes
from collections.abc import MutableMapping

#: Arenas ``edigw run`` allows.
ARENAS = 2
#: glibc's ``mallopt`` parameter for the most arenas (``malloc.h``).
M_ARENA_MAX = -8
#: The variable glibc reads when a process starts.
VARIABLE = "MALLOC_ARENA_MAX"


def limit_malloc_arenas(environ: MutableMapping[str, str], arenas: int = ARENAS) -> bool:
    """Allow this process at most ``arenas`` malloc arenas from now on, and write the same
    in ``environ`` (``os.environ``: the processes started later inherit it). Call it before
    the threads start. Returns whether it was set: not when ``environ`` already says how
    many, nor where the C library has no ``mallopt`` or refuses it."""
    if VARIABLE in environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if mallopt(M_ARENA_MAX, arenas) != 1:  # glibc's mallopt answers 1 when it took it
        return False
    environ[VARIABLE] = str(arenas)
    return True
