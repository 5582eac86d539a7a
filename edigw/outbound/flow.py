"""An export flow as a run sees it: what the run is given (:class:`ExportFlow`, read from the
flow's configuration, and the collaborators it calls: the Ecolix client, the channel, the
archive) and what it gives back (:class:`ExportResult`).

Apart from the run (``edigw.outbound.export``) so that what the run hands work to (the
lookups, the delivery, the per-record runs, the pending deliveries) can name them without
importing the run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from edigw.channels.base import Delivered

PAGE_SIZE = 1000
"""Items per list call: the contract's maximum, so a run makes the fewest calls."""

Mode = Literal["delta", "full"]
State = Literal["delivered", "empty", "failed", "dry-run"]
Split = Literal["file", "record"]


# --------------------------------------------------------------------------- collaborators


class Client(Protocol):
    def iter_list(
        self,
        operation: str,
        *,
        updated_since: datetime | None = None,
        page_size: int = ...,
        **filters: Any,
    ) -> Iterator[dict[str, Any]]: ...


class Channel(Protocol):
    def deliver(self, local_file: Path, name: str) -> Delivered: ...


class Archived(Protocol):
    sha256: str
    path: Path


class ArchiveLike(Protocol):
    def store(self, path: Path) -> Any: ...

    def open(self, sha256: str) -> Any: ...


# --------------------------------------------------------------------------- the flow


@dataclass(frozen=True, slots=True)
class ExportFlow:
    """What an export run needs from a flow's configuration (paths already absolute)."""

    partner: str
    flow: str
    resource: str
    template: Path
    filename: str
    filters: Mapping[str, Any] = field(default_factory=dict)
    timezone: str | None = None
    mode: Mode = "delta"
    write_empty: bool = False
    encoding: str = "utf-8"
    xsd: Path | None = None
    settings: Mapping[str, str] = field(default_factory=dict)
    split: Split = "file"
    """``record``: one file per record (see :mod:`edigw.outbound.per_record`)."""

    @classmethod
    def of(cls, config: Any, *, partner: str | None = None, flow: str | None = None) -> ExportFlow:
        """Build from the ``edigw.yaml`` outbound flow model (or return an ExportFlow as is)."""
        if isinstance(config, ExportFlow):
            return config
        query = config.query
        resource = query["resource"] if isinstance(query, Mapping) else query.resource
        filters = query.get("filters") if isinstance(query, Mapping) else query.filters
        xsd = getattr(config, "xsd", None)
        return cls(
            partner=partner or config.partner,
            flow=flow or getattr(config, "flow", None) or config.name,
            resource=resource,
            template=Path(config.template),
            filename=config.filename,
            filters=dict(filters or {}),
            timezone=getattr(config, "timezone", None),
            mode=getattr(config, "mode", "delta") or "delta",
            write_empty=bool(getattr(config, "write_empty", False)),
            encoding=getattr(config, "encoding", "utf-8") or "utf-8",
            xsd=Path(xsd) if xsd else None,
            settings=dict(getattr(config, "template_settings", None) or {}),
            split=getattr(config, "split", "file") or "file",
        )


@dataclass(frozen=True, slots=True)
class ExportResult:
    """How one run ended. ``path`` is the rendered file for dry runs and ``--to`` runs."""

    state: State
    mode: Mode
    records: int
    calls: int
    run_id: int | None = None
    file_name: str | None = None
    path: Path | None = None
    sha256: str | None = None
    archive_path: Path | None = None
    delivered: Delivered | None = None
    window_from: datetime | None = None
    window_to: datetime | None = None
    skipped: int = 0
    left_out: int = 0
    """Records the flow's filters left out (several values or exclusions, applied by edigw)."""
    files: tuple[str, ...] = ()
    """``split: record``: the name of every file the run wrote, in order (``file_name`` is
    the last); each has its own journal run (``run_id`` is the last)."""

    @property
    def show_id(self) -> str | None:
        return f"R-{self.run_id}" if self.run_id is not None else None
