"""``edigw demo``: the whole gateway on embedded defaults, in one command.

It starts the Ecolix sandbox in-process, writes the starter configuration of ``edigw init``
into a workspace, drops every shipped sample (good and deliberately bad) into the inboxes,
runs the real gateway (channels, journal, mapping, client) until every file has an
outcome, runs every export once, and reports what happened and where to look.
"""

from __future__ import annotations

import shlex
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edigw.config import DEFAULT_CONFIG_NAME, GatewayConfig, load_config, write_starter
from edigw.ecolix.client import EcolixClient
from edigw.errors import EdigwError
from edigw.journal.rows import DocumentRow, FileRow
from edigw.pipeline.assembly import Parts, open_parts
from edigw.pipeline.exports import export_now
from edigw.pipeline.inbound import FINAL_FILE_STATES
from edigw.pipeline.runtime import Gateway
from edigw.pipeline.signals import utc_now
from edigw.shipped import shipped_root

DEMO_TOKEN = "demo-token"
DEMO_RATE_LIMIT = "6000/minute"
DEMO_TIMEOUT = 120.0
DEMO_COMPANY = "Démo edigw (sandbox)"
DEMO_SIREN = "552081317"
"""A SIREN with a valid check digit, for the demo's lifecycle statuses (not a real buyer's)."""
FAST_POLL = 0.2


def project_root() -> Path:
    """The folder holding ``mappings/``, ``samples/`` and ``templates/`` (see edigw.shipped)."""
    return shipped_root()


@dataclass(frozen=True, slots=True)
class FileLine:
    show_id: str
    flow: str
    name: str
    state: str
    done: int
    failed: int
    waiting: int
    reason: str
    #: documents a ``skip_if`` rule skipped (cancelled or unpaid web-shop orders): not failures
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class ExportLine:
    show_id: str
    flow: str
    state: str
    records: int
    calls: int
    file: str


@dataclass(slots=True)
class DemoReport:
    workspace: Path
    config_path: Path
    base_url: str
    files: list[FileLine] = field(default_factory=list)
    objects: Counter[str] = field(default_factory=Counter)
    exports: list[ExportLine] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    calls: int = 0
    seconds: float = 0.0

    @property
    def look_closer(self) -> list[str]:
        """Commands to look closer, as printed: they only read the journal, so they work
        in a fresh shell without ECOLIX_TOKEN (the sandbox is gone by then)."""
        config = shlex.quote(str(self.config_path.resolve()))
        first = next((f.show_id for f in self.files if f.state != "done"), "F-1")
        return [
            f"edigw show {first} -c {config}",
            f"edigw files --state unresolved -c {config}",
            f"edigw status -c {config}",
        ]


def samples_for(mapping: Path, root: Path) -> list[Path]:
    """The shipped samples of a mapping: ``samples/<package>/<mapping name>/*``, good then bad."""
    good = sorted(p for p in root.glob(f"samples/*/{mapping.stem}/*") if p.is_file())
    bad = sorted(p for p in root.glob(f"samples/bad/**/{mapping.stem}/*") if p.is_file())
    good = [p for p in good if "bad" not in p.relative_to(root).parts[:2]]
    return [p for p in good + bad if not p.name.startswith(".") and p.suffix != ".md"]


def tune_for_demo(config_path: Path) -> None:
    """Make the starter configuration react in a blink: demo files are complete when dropped."""
    data: dict[str, Any] = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    data["retry"] = {"max_attempts": 3, "first_delay": 0.5, "max_delay": 2}
    # the company the starter asks for (EDIGW_COMPANY_NAME): the demo's, said as such
    data["settings"] = {
        **(data.get("settings") or {}),
        "company_name": DEMO_COMPANY,
        "company_siren": DEMO_SIREN,
    }
    for partner in data.get("partners", {}).values():
        for flow in partner.get("flows", {}).values():
            if flow.get("direction") == "inbound":
                flow["readiness"] = {"mode": "min_age", "seconds": 0}
                flow["poll_interval"] = FAST_POLL
                flow["include"] = ["*"]
    config_path.write_text(
        "# edigw demo: the starter configuration, tuned to react at once.\n"
        + yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )


def drop_samples(config: GatewayConfig, root: Path) -> int:
    """Copy every flow's samples into its inbox; returns how many files were dropped."""
    count = 0
    for flow in config.inbound_flows():
        if flow.channel.type != "local":
            continue
        inbox = Path(flow.channel.path)
        inbox.mkdir(parents=True, exist_ok=True)
        for sample in samples_for(Path(flow.mapping), root):
            shutil.copyfile(sample, inbox / sample.name)
            count += 1
    return count


def wait_for_outcomes(parts: Parts, expected: int, *, timeout: float) -> None:
    """Until every dropped file is journalled with a final state (or retries are all that is left)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = parts.journal.files(limit=10_000)
        settled = [r for r in rows if r.state in FINAL_FILE_STATES]
        if len(rows) >= expected and len(settled) == len(rows):
            return
        if len(rows) >= expected and parts.journal.next_retry_at() is not None:
            pending = [r for r in rows if r.state not in FINAL_FILE_STATES]
            docs = [d for r in pending for d in parts.journal.documents_of(r.id)]
            if all(
                d.state in ("retry_wait", "failed", "done", "skipped", "unchanged") for d in docs
            ):
                return
        time.sleep(0.1)


def collect(parts: Parts, report: DemoReport) -> None:
    for row in sorted(parts.journal.files(limit=10_000), key=lambda r: r.id):
        docs = parts.journal.documents_of(row.id)
        states = Counter(d.state for d in docs)
        report.files.append(
            FileLine(
                show_id=f"F-{row.id}",
                flow=f"{row.partner}/{row.flow}",
                name=row.original_name,
                state=row.state,
                done=states["done"],
                failed=states["failed"],
                waiting=states["retry_wait"] + states["pending"] + states["sent"],
                reason=reason_of(row, docs),
                skipped=states["skipped"],
            )
        )
        for d in docs:
            if d.state == "done":
                report.objects[d.operation] += 1


def reason_of(row: FileRow, docs: list[DocumentRow]) -> str:
    """Why a file is not done, whole: its first document's first problem (or the file's
    own error), and how many more problems ``edigw show`` tells."""
    reasons = [
        f"{d.ref} {d.business_key}: {d.error}" for d in docs if d.error and d.state != "skipped"
    ]
    if not reasons and row.error:
        reasons = [row.error]
    lines = [line for reason in reasons for line in reason.splitlines() if line.strip()]
    if not lines:
        return ""
    more = len(lines) - 1
    return lines[0] + (f" (and {more} more: edigw show {row.ref})" if more else "")


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


@contextmanager
def sandbox(workspace: Path, root: Path) -> Iterator[str]:
    from edigw.sandbox.server import run_in_thread

    with run_in_thread(
        workspace / "sandbox.sqlite",
        token=DEMO_TOKEN,
        rate_limit=DEMO_RATE_LIMIT,
        seed=root / "samples" / "sandbox-seed.json",
    ) as base_url:
        yield base_url


DEMO_REFUSAL = {"code": "TX_TVA_ERR", "text": "Taux de TVA erroné sur la ligne 1"}


def decide_supplier_invoices(client: EcolixClient) -> list[str]:
    """Refuse one received supplier invoice and approve another, as the accounts team would in
    Ecolix, so that the statuses export has lifecycle changes to send to the platform."""
    registered = [i for i in client.list_supplier_invoices() if i.get("status") == "registered"]
    decided: list[str] = []
    for invoice, status in zip(registered, ("refused", "approved"), strict=False):
        body: dict[str, Any] = {"id": invoice["id"], "status": status}
        if status == "refused":
            body["reason"] = DEMO_REFUSAL
        client.set_supplier_invoice_status(body, idempotency_key=f"demo-{status}-{invoice['id']}")
        decided.append(f"{invoice['number']} {status}")
    return decided


def run_demo(
    workspace: Path,
    *,
    keep_running: bool = False,
    on_ready: Callable[[DemoReport], None] | None = None,
) -> DemoReport:
    """Run the demo in ``workspace`` (created if needed) and return what happened."""
    root = project_root()
    started = time.monotonic()
    workspace.mkdir(parents=True, exist_ok=True)
    if (workspace / DEFAULT_CONFIG_NAME).exists():
        msg = f"{workspace} already holds a demo; give an empty folder with --dir"
        raise EdigwError(msg)
    with sandbox(workspace, root) as base_url:
        write_starter(workspace)
        config_path = workspace / DEFAULT_CONFIG_NAME
        tune_for_demo(config_path)
        environ = {"ECOLIX_URL": base_url, "ECOLIX_TOKEN": DEMO_TOKEN}
        config = load_config(config_path, environ=environ)
        report = DemoReport(workspace, config_path, base_url)
        expected = drop_samples(config, root)
        with open_parts(config) as parts:
            gateway = Gateway(parts)
            gateway.start()
            try:
                wait_for_outcomes(parts, expected, timeout=DEMO_TIMEOUT)
            finally:
                gateway.stop()
                gateway.join(timeout=30)
            collect(parts, report)
            report.decisions = decide_supplier_invoices(parts.client)
            for flow in config.outbound_flows():
                try:
                    result = export_now(parts, flow, now=utc_now())
                except EdigwError as exc:
                    report.exports.append(ExportLine("-", flow.id, f"failed: {exc}", 0, 0, ""))
                    continue
                delivered = result.delivered
                report.exports.append(
                    ExportLine(
                        result.show_id or "-",
                        flow.id,
                        result.state,
                        result.records,
                        result.calls,
                        _relative(Path(flow.channel.path) / delivered.name, workspace)
                        if delivered and flow.channel.type == "local"
                        else (result.file_name or ""),
                    )
                )
            report.calls = parts.client.usage.calls
        report.seconds = time.monotonic() - started
        if keep_running:
            if on_ready is not None:
                on_ready(report)
            from edigw.pipeline.service import serve

            serve(config, senders=4)
    return report
