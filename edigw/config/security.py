"""``security:``: who may read what edigw keeps on disk, as the mode of the files it creates
(``"0600"``, ``"0640"``)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from edigw.config.base import _Model
from edigw.filemodes import DEFAULT_FILE_MODE, FileModes, check_file_mode


def parse_file_mode(value: Any) -> int:
    """A mode from ``"0640"``/``"640"``/``"0o640"`` (octal text), or from the number YAML makes
    of an unquoted ``0640``; checked by :func:`edigw.filemodes.check_file_mode`."""
    if isinstance(value, bool):
        msg = "expected a file mode such as '0600' or '0640'"
        raise ValueError(msg)
    if isinstance(value, int):
        mode = value
    elif isinstance(value, str) and re.fullmatch(r"(0o?)?[0-7]{3}", value.strip()):
        mode = int(value.strip().removeprefix("0o"), 8)
    else:
        msg = f"expected a file mode such as '0600' or '0640' (octal), got {value!r}"
        raise ValueError(msg)
    return check_file_mode(mode)


FileMode = Annotated[int, BeforeValidator(parse_file_mode)]


class SecuritySettings(_Model):
    """Who may read what edigw keeps on disk."""

    file_mode: FileMode = Field(
        default=DEFAULT_FILE_MODE,
        description="Mode of the files edigw creates for itself: archive copies (read-only), "
        "the SQLite journal and its -wal/-shm, SFTP staging, error reports in local error "
        "folders, usage.json. '0600' (default): the gateway's user only; '0640': its group "
        "may read too. Folders it creates get the matching 0700/0750. Files delivered to "
        "partners keep what their folder gives.",
    )

    @property
    def modes(self) -> FileModes:
        return FileModes(self.file_mode)
