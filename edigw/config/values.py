"""The kinds of value the keys of ``edigw.yaml`` take, each checked as it loads: names
(``Name``), durations (``30``, ``"15m"``), sizes (``"50MB"``), paths relative to the
configuration file's folder (``ConfigPath``, ``ExistingFile``), encodings, and folders
relative to a channel's path; and the check shared by the doubling delays (retries, restarts).

Relative paths are relative to the folder of the configuration file (handed in as the
``base_dir`` of the validation context), not the current directory, so ``edigw run -c
/etc/edigw/edigw.yaml`` behaves the same from anywhere.
"""

from __future__ import annotations

import codecs
import os.path
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, StringConstraints, ValidationInfo

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"
Name = Annotated[str, StringConstraints(pattern=_NAME_PATTERN)]

# --- Durations and sizes -----------------------------------------------------------------

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_duration(value: Any) -> float:
    """Seconds from ``30``, ``2.5``, ``"500ms"``, ``"2s"``, ``"15m"``, ``"1h"`` or ``"1d"``."""
    if isinstance(value, bool):
        msg = "expected a duration such as 30, '2s', '15m' or '1h'"
        raise ValueError(msg)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION_RE.match(value)):
        unit = (match.group(2) or "s").lower()
        seconds = float(match.group(1)) * _DURATION_UNITS[unit]
    else:
        msg = f"expected a duration such as 30, '2s', '15m' or '1h', got {value!r}"
        raise ValueError(msg)
    if seconds < 0:
        msg = f"a duration cannot be negative, got {value!r}"
        raise ValueError(msg)
    return seconds


def parse_size(value: Any) -> int:
    """Bytes from ``52428800``, ``"512KB"``, ``"50MB"`` or ``"1GB"`` (powers of 1024)."""
    if isinstance(value, bool):
        msg = "expected a size such as 52428800, '512KB' or '50MB'"
        raise ValueError(msg)
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (match := _SIZE_RE.match(value)):
        unit = match.group(2).lower()
        if unit not in _SIZE_UNITS:
            msg = f"unknown size unit {match.group(2)!r} (use B, KB, MB or GB)"
            raise ValueError(msg)
        size = int(float(match.group(1)) * _SIZE_UNITS[unit])
    else:
        msg = f"expected a size such as 52428800, '512KB' or '50MB', got {value!r}"
        raise ValueError(msg)
    if size <= 0:
        msg = f"a size must be positive, got {value!r}"
        raise ValueError(msg)
    return size


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]


def _check_delays_ordered(first_delay: float, max_delay: float) -> None:
    """A doubling delay's cap below its start is a typo, not a policy: refuse it."""
    if max_delay < first_delay:
        msg = "max_delay must not be shorter than first_delay"
        raise ValueError(msg)


# --- Paths -------------------------------------------------------------------------------


def _base_dir(info: ValidationInfo) -> Path | None:
    context = info.context
    if isinstance(context, Mapping):
        base = context.get("base_dir")
        if isinstance(base, Path):
            return base
    return None


def _resolve(value: Path, info: ValidationInfo) -> Path:
    """Relative paths are relative to the configuration file's folder."""
    value = value.expanduser()
    base = _base_dir(info)
    if base is not None and not value.is_absolute():
        value = base / value
    return Path(os.path.normpath(value))


def _existing_file(value: Path, info: ValidationInfo) -> Path:
    path = _resolve(value, info)
    if not path.is_file():
        msg = f"file not found ({path})"
        raise ValueError(msg)
    return path


ConfigPath = Annotated[Path, AfterValidator(_resolve)]
ExistingFile = Annotated[Path, AfterValidator(_existing_file)]


def _encoding(value: str) -> str:
    """Checked, but kept as the operator wrote it (``latin-1`` reads better than ``iso8859-1``)."""
    try:
        codecs.lookup(value)
    except LookupError:
        msg = f"unknown encoding {value!r} (e.g. utf-8, utf-8-sig, cp1252, latin-1)"
        raise ValueError(msg) from None
    return value


def _inbound_encoding(value: str) -> str:
    return value if value == "auto" else _encoding(value)


def _relative_folder(value: str) -> str:
    """A folder under the channel path: no absolute paths, no ``..`` escaping it."""
    parts = PurePosixPath(value.replace("\\", "/")).parts
    if not value.strip() or value.startswith(("/", "\\")) or ".." in parts:
        msg = f"must be a folder name relative to the channel path, got {value!r}"
        raise ValueError(msg)
    return value


Encoding = Annotated[str, AfterValidator(_encoding)]
InboundEncoding = Annotated[str, AfterValidator(_inbound_encoding)]
RelativeFolder = Annotated[str, AfterValidator(_relative_folder)]
