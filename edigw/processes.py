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
