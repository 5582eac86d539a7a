"""Edits picked up without a restart: mappings, lookup tables, layouts and templates.

The **reloader** loop of a running gateway looks, every :data:`RELOAD_EVERY` seconds, at
the stamps (modification time and size) of the files each flow was built from and of
their folders (``edigw.mapping.versions``). A stat per file and folder is all a quiet
look costs; polling was chosen over folder notifications (watchdog) because it works the
same on every file system a consultant edits through (network shares, container bind
mounts, where inotify events never come), needs no thread per folder, and an editor's save
(temp file, rename, sometimes in several steps) settles in one look instead of a burst of
events to debounce.

When a flow's files changed, its new version is built completely, off the data path:

* an inbound flow's mapping is compiled with its lookup tables and layout, and checked as
  ``edigw mapping check`` checks it; the new :class:`FlowContext` (with its version, a
  short hash of those files) then replaces the old one in one assignment. A file being
  taken in keeps the context it started with, so each file is mapped by one version, and
  the documents already journalled keep the payloads (and the ``mapping_version``) they
  were mapped with;
* an export's template is compiled (and its settings checked) and pinned for the next run.

A broken edit changes nothing: the previous version keeps running, and the condition
``reload FLOW`` (in ``edigw status`` and health) names the file and the error, until an
edit that passes clears it. :func:`announce_reload_failure` is the one place a failed
reload (here or of ``edigw.yaml``, ``edigw.pipeline.reconfigure``) is told.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import jinja2

from edigw.alerts.events import AlertSink, NoAlerts, reload_failed
from edigw.config import GatewayConfig, InboundFlow, OutboundFlow
from edigw.errors import EdigwError
from edigw.mapping.versions import Stamp, changed, content_version, stamps_of, watched_paths
from edigw.outbound.render import load_template
from edigw.outbound.settings import require_settings
from edigw.pipeline.assembly import InboundRuntime, Parts, channelless_key, flow_context
from edigw.pipeline.health import RELOAD_CONDITION_PREFIX, Conditions

log = logging.getLogger("edigw.reload")

#: Seconds between two looks at the files the flows were built from.
RELOAD_EVERY = 1.0


def reload_condition(flow_id: str) -> str:
    """The name of the condition a flow's failed reload sets (``edigw status`` shows it)."""
    return f"{RELOAD_CONDITION_PREFIX}{flow_id}"


@dataclass(frozen=True, slots=True)
class ReloadFailure:
    """An edit that was not applied: what (``mapping``, ``template``, ``configuration``),
    the flow (``None`` for ``edigw.yaml``), the file, the error, and what keeps running."""

    what: str
    flow: str | None
    file: Path
    error: str
    kept: str

    @property
    def condition(self) -> str:
        return reload_condition(self.flow or "edigw.yaml")

    @property
    def message(self) -> str:
        return f"{self.file}: {self.what} edit not applied, {self.kept}: {self.error}"


def announce_reload_failure(
    failure: ReloadFailure, conditions: Conditions, alerts: AlertSink, *, at: datetime
) -> None:
    """Tell that an edit was refused: a condition in health and ``edigw status`` (logged
    once when it appears or changes), cleared by the next edit that passes; and a
    ``reload_failed`` alert, once per new or changed refusal (the same broken file seen
    again at the next look is not news)."""
    if conditions.set(failure.condition, failure.message, flow=failure.flow):
        alerts.notify(
            reload_failed(
                what=str(failure.file),
                reason=f"{failure.error} ({failure.kept})",
                at=at,
                flow=failure.flow,
            )
        )


@dataclass(slots=True)
class Watched:
    """What the reloader knows of one flow: the object it watches for (replaced when
    ``edigw.yaml`` is reloaded), its files, their stamps at the last build, and the stamps
    of a failed build (not tried again until they change)."""

    owner: object
    files: tuple[Path, ...]
    stamps: dict[Path, Stamp]
    failed: dict[Path, Stamp] | None = None


@dataclass(slots=True)
class PinnedTemplate:
    """An export's template as last compiled successfully, and its version."""

    template: jinja2.Template
    version: str


def mapping_files(runtime: InboundRuntime) -> tuple[Path, ...]:
    """The files an inbound flow's live mapping was compiled from."""
    mapping = runtime.context.mapping
    files: tuple[Path, ...] = getattr(mapping, "files", ()) or (mapping.path,)
    return files


@dataclass
class Reloader:
    """Rebuilds flows whose files changed; see the module docstring.

    ``lock`` is held while flows are rebuilt or swapped: a reload of ``edigw.yaml``
    (another thread) takes it too, so that the two never swap the same flow at once.
    """

    parts: Parts
    conditions: Conditions
    #: where a refused edit is told (the gateway's ``signals.alerts``, read at each use:
    #: alerts start after the reloader is made)
    alerts: Callable[[], AlertSink] = NoAlerts
    lock: threading.RLock = field(default_factory=threading.RLock)
    clock_ns: Callable[[], int] = time.time_ns
    _inbound: dict[str, Watched] = field(default_factory=dict)
    _exports: dict[str, Watched] = field(default_factory=dict)
    _unloaded: dict[str, Watched] = field(default_factory=dict)
    #: each export's template content when first seen: a look that finds the same content
    #: (a stamp that was racy at start) is no edit, so its failure is not a refused edit
    _first_versions: dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """One look at every flow's files; rebuild what changed."""
        with self.lock:
            for flow_id, set_aside in list(self.parts.unloaded.items()):
                self._check_unloaded(flow_id, set_aside)
            inbound = dict(self.parts.inbound)
            for flow_id, runtime in inbound.items():
                self._check_inbound(flow_id, runtime)
            exports = {flow.id: flow for flow in self.parts.config.outbound_flows()}
            for flow_id, flow in exports.items():
                self._check_export(flow_id, flow)
            for watched, live in ((self._inbound, inbound), (self._exports, exports)):
                for gone in [flow_id for flow_id in watched if flow_id not in live]:
                    del watched[gone]
                    self._first_versions.pop(gone, None)
                    self.parts.templates.pop(gone, None)
                    self.conditions.clear(reload_condition(gone))
            for gone in [f for f in self._unloaded if f not in self.parts.unloaded]:
                del self._unloaded[gone]

    def take_flows(self, config: GatewayConfig) -> None:
        """Follow a reloaded ``edigw.yaml`` without channels (the sending process, told by
        the intake process that applied it): removed flows are dropped; added and changed
        ones are set aside for the next look to build, as a flow whose mapping did not
        compile; ``config`` becomes the parts' own."""
        wanted = {flow.id: flow for flow in config.inbound_flows()}
        with self.lock:
            for flow_id in [f for f in self.parts.inbound if f not in wanted]:
                del self.parts.inbound[flow_id]
            for flow_id in [f for f in self.parts.unloaded if f not in wanted]:
                del self.parts.unloaded[flow_id]
            for flow_id, flow in wanted.items():
                live = self.parts.inbound.get(flow_id)
                unchanged = live.config if live is not None else self.parts.unloaded.get(flow_id)
                if unchanged != flow:
                    self.parts.inbound.pop(flow_id, None)
                    self.parts.unloaded[flow_id] = flow
            self.parts.config = config

    # ------------------------------------------------------------------ inbound

    def _check_inbound(self, flow_id: str, runtime: InboundRuntime) -> None:
        watched = self._inbound.get(flow_id)
        if watched is None or watched.owner is not runtime:
            files = mapping_files(runtime)
            watched = self._inbound[flow_id] = self._watch(runtime, files)
            self.conditions.clear(reload_condition(flow_id))
            # the stamps are those of now, not of its build: an edit made in between (a
            # slow start, a flow a reload added) shows in its content, and is built now
            if content_version(files) == runtime.context.mapping_version:
                return
        elif not self._due(watched):
            return
        started = self.clock_ns()
        old = runtime.context
        try:
            context = flow_context(runtime.config, old.channel, ecolix=old.ecolix, checked=True)
        except Exception as exc:  # whatever the edit broke, the running version stays
            self._failed(watched, started, exc)
            failure = ReloadFailure(
                what="mapping",
                flow=flow_id,
                file=Path(runtime.config.mapping),
                error=_reason(exc, f"flow {flow_id}: "),
                kept=f"still running version {old.mapping_version}",
            )
            self._announce(failure)
            return
        files = mapping_files(InboundRuntime(runtime.config, context, None))
        self._rebuilt(watched, files, started)
        if context.mapping_version != old.mapping_version:
            runtime.context = context  # one assignment: a file in hand keeps the old one
            log.info(
                "flow %s: mapping %s reloaded: version %s -> %s",
                flow_id,
                Path(runtime.config.mapping).name,
                old.mapping_version,
                context.mapping_version,
                extra={"flow": flow_id},
            )
        self.conditions.clear(reload_condition(flow_id))

    def _check_unloaded(self, flow_id: str, flow: InboundFlow) -> None:
        """A flow set aside because its mapping did not compile (``Parts.unloaded``): built
        at the first look, then after each edit, and added to the live flows once it
        compiles. Its failures are not announced: the process that runs the flow's channel
        tells the broken edit, with the version it keeps running."""
        watched = self._unloaded.get(flow_id)
        if watched is None or watched.owner is not flow:
            watched = self._unloaded[flow_id] = self._watch(flow, (Path(flow.mapping),))
        elif not self._due(watched):
            return
        started = self.clock_ns()
        try:
            context = flow_context(
                flow,
                channelless_key(flow),
                ecolix=self.parts.config.ecolix.base_url,
                checked=True,
            )
        except Exception as exc:
            self._failed(watched, started, exc)
            return
        self.parts.unloaded.pop(flow_id, None)
        self.parts.inbound[flow_id] = InboundRuntime(flow, context, None)
        log.info(
            "flow %s: mapping %s loaded: version %s",
            flow_id,
            Path(flow.mapping).name,
            context.mapping_version,
            extra={"flow": flow_id},
        )

    # ------------------------------------------------------------------ exports

    def _check_export(self, flow_id: str, flow: OutboundFlow) -> None:
        path = Path(flow.template)
        watched = self._exports.get(flow_id)
        first = watched is None or watched.owner is not flow
        if watched is None or first:
            # a new export (or one ``edigw.yaml`` changed): nothing of the old one is kept
            watched = self._exports[flow_id] = self._watch(flow, (path,))
            self._first_versions[flow_id] = content_version([path])
            self.parts.templates.pop(flow_id, None)
        elif not self._due(watched):
            return
        started = self.clock_ns()
        pinned = self.parts.templates.get(flow_id)
        try:
            template = load_template(path, timezone=flow.timezone)
            require_settings(path, flow.template_settings)
        except Exception as exc:  # the template in use stays
            self._failed(watched, started, exc)
            unedited = content_version([path]) == self._first_versions.get(flow_id)
            if first or unedited:  # not an edit: its runs fail and say why, as without reloads
                return
            kept = (
                f"the next runs use version {pinned.version}"
                if pinned is not None
                else "the next runs fail until it is fixed"
            )
            failure = ReloadFailure("template", flow_id, path, _reason(exc, ""), kept)
            self._announce(failure)
            return
        version = content_version([path])
        self._rebuilt(watched, (path,), started)
        if pinned is None or pinned.version != version:
            self.parts.templates[flow_id] = PinnedTemplate(template, version)
            if pinned is not None:
                log.info(
                    "export %s: template %s reloaded: version %s -> %s",
                    flow_id,
                    path.name,
                    pinned.version,
                    version,
                    extra={"flow": flow_id},
                )
        self.conditions.clear(reload_condition(flow_id))

    def _announce(self, failure: ReloadFailure) -> None:
        now = datetime.fromtimestamp(self.clock_ns() / 1e9, UTC)
        announce_reload_failure(failure, self.conditions, self.alerts(), at=now)

    # ------------------------------------------------------------------ stamps

    def _watch(self, owner: object, files: tuple[Path, ...]) -> Watched:
        stamps = stamps_of(watched_paths(files), compiled_from_ns=self.clock_ns())
        return Watched(owner, files, stamps)

    @staticmethod
    def _due(watched: Watched) -> bool:
        """Whether the flow's files changed since its last build (or failed build)."""
        if watched.failed is not None:
            return changed(watched.failed)
        return changed(watched.stamps)

    @staticmethod
    def _failed(watched: Watched, started: int, exc: BaseException) -> None:
        if not isinstance(exc, EdigwError):
            log.error("reloading %s failed unexpectedly", watched.files[0], exc_info=exc)
        watched.failed = stamps_of(watched_paths(watched.files), compiled_from_ns=started)

    @staticmethod
    def _rebuilt(watched: Watched, files: tuple[Path, ...], started: int) -> None:
        watched.files = files
        watched.stamps = stamps_of(watched_paths(files), compiled_from_ns=started)
        watched.failed = None


def _reason(exc: BaseException, prefix: str) -> str:
    """The error in one line (``N problem(s): the first``), without the flow prefix."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.removeprefix(prefix)


def reloader_loop(
    reloader: Reloader, stop: threading.Event, *, every: float = RELOAD_EVERY
) -> None:
    """Look for edits every ``every`` seconds until the gateway stops (first look at once:
    it takes the stamps, and pins the export templates)."""
    reloader.check()
    while not stop.wait(every):
        reloader.check()


__all__ = [
    "RELOAD_EVERY",
    "PinnedTemplate",
    "ReloadFailure",
    "Reloader",
    "announce_reload_failure",
    "reload_condition",
    "reloader_loop",
]
