"""What SFTP failures mean and how they read.

Which paramiko and socket exceptions say the connection is gone (``_CONNECTION_FAILURES``:
its session is dropped, never reused out of step), which a remote operation may raise
(``_REMOTE_FAILURES``), and the short reason a ``ChannelError`` gives for them. Every
paramiko or socket exception is translated into ``ChannelError``/``HostKeyError`` in this
package and never leaks further.
"""

from __future__ import annotations

import socket

import paramiko

from edigw.errors import ChannelError

_CONNECTION_FAILURES = (EOFError, paramiko.SSHException, TimeoutError, ConnectionError)
_REMOTE_FAILURES = (OSError, EOFError, paramiko.SSHException, paramiko.SFTPError)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, EOFError):
        return "connection closed by the server"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _remote_error(what: str, exc: BaseException) -> ChannelError:
    return ChannelError(f"{what}: {_describe(exc)}")
