"""``edigw status`` when ``edigw.yaml`` does not load: what can still be shown.

An operator needs the status most when things are broken. A configuration that fails to
validate still names, most of the time, where the data lives: ``data_dir`` and ``journal``
are read from the raw YAML (``${NAME}`` from the environment), or their defaults are taken
(``./edigw-data`` beside the file). From there come the health the running gateway last
published (``health.json``) and the journal's counts, opened read-only (never created or
migrated). The journal's flows are listed as it knows them (none marked unconfigured:
which ones the file configures is unknown).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edigw.config import (
    DEFAULT_CALLS_PER_MINUTE,
    DEFAULT_DATA_DIR,
    DEFAULT_JOURNAL_FILE,
    interpolated,
)
from edigw.errors import EdigwError
from edigw.journal.store import Journal
from edigw.pipeline.gateway_status import GatewayStatus, journal_status
from edigw.pipeline.health import PublishedHealth, read_health
from edigw.pipeline.signals import utc_now


@dataclass(slots=True)
class UnloadedStatus:
    """What is known without a valid configuration: where the data was looked for, the
    published health, and the journal's status (``None`` with ``journal_note`` saying why)."""

    data_dir: Path
    journal_url: str
    health: PublishedHealth
    status: GatewayStatus | None
    journal_note: str = ""


def status_without_config(config_path: Path, environ: dict[str, str]) -> UnloadedStatus:
    """Health and journal status found from a configuration file that does not load."""
    raw = _raw_settings(config_path)
    base = config_path.resolve().parent
    data_dir = Path(DEFAULT_DATA_DIR)
    given = _text(raw.get("data_dir"), environ)
    if given:
        data_dir = Path(given).expanduser()
    if not data_dir.is_absolute():
        data_dir = base / data_dir
    data_dir = Path(os.path.normpath(data_dir))
    url = _text(raw.get("journal"), environ) or f"sqlite:///{data_dir / DEFAULT_JOURNAL_FILE}"
    published = read_health(data_dir, now=utc_now())
    health = published.by_flow()
    try:
        journal = Journal.open(url, create=False)
    except EdigwError as exc:
        return UnloadedStatus(data_dir, url, published, None, journal_note=str(exc))
    try:
        status = journal_status(
            journal,
            # which flows edigw.yaml configures is unknown: none is called unconfigured
            inbound=[(row.partner, row.flow) for row in journal.status_counts()],
            outbound=list(journal.latest_export_runs()),
            data_dir=data_dir,
            calls_per_minute=_calls_per_minute(raw),
            shared_calls=None,
            health=health,
            health_problems=published.problems(),
        )
    except EdigwError as exc:
        return UnloadedStatus(data_dir, url, published, None, journal_note=str(exc))
    finally:
        journal.close()
    return UnloadedStatus(data_dir, url, published, status)


def _calls_per_minute(raw: dict[str, Any]) -> int:
    ecolix = raw.get("ecolix")
    value = ecolix.get("calls_per_minute") if isinstance(ecolix, dict) else None
    return value if isinstance(value, int) and value > 0 else DEFAULT_CALLS_PER_MINUTE


def _raw_settings(path: Path) -> dict[str, Any]:
    """The file's top-level mapping as plain YAML, or nothing if even that cannot be read."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _text(value: object, environ: dict[str, str]) -> str | None:
    """A string setting with its ``${NAME}`` references filled in as the loader would;
    ``None`` if not a string or a reference is unset (the default is then the best guess)."""
    if not isinstance(value, str):
        return None
    return interpolated(value, environ) or None
