"""End to end: supplier e-invoices through a running gateway, then their lifecycle statuses
back to the platform's SFTP folder (the real sshd of the tests) by the shipped flow
``supplier/einvoice-statuses``: a refusal in Ecolix becomes one CDAR file that the schema and
the French rules accept, an approval another, and no status is ever sent twice.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from edigw.pipeline.assembly import Parts, open_parts
from edigw.pipeline.exports import export_scheduler_loop
from edigw.pipeline.runtime import Gateway
from tests.fixtures.gateway import (
    ROOT,
    Workspace,
    files_final,
    inbound_flow,
    wait_until,
    write_workspace,
)
from tests.fixtures.sandbox_data import key
from tests.support.cdar import rule_failures, value, xsd_errors

pytestmark = pytest.mark.sftp

CORPUS = ROOT / "samples" / "einvoices"
REFUSED = ("factur-x/ubl-21-en16931.xml", "F124212")
APPROVED = ("facturex/facture_cii.xml", "FA-2026-0001")
REFERENCED = "//rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument"


def shipped_statuses_flow(remote: Path) -> dict[str, Any]:
    """The starter's flow as shipped, its paths made absolute and its channel the platform's."""
    starter = yaml.safe_load((ROOT / "edigw" / "starter.yaml").read_text(encoding="utf-8"))
    flow = dict(starter["partners"]["supplier"]["flows"]["einvoice-statuses"])
    flow["template"] = str(ROOT / flow["template"])
    flow["xsd"] = str(ROOT / flow["xsd"])
    flow["channel"] = {"type": "sftp", "endpoint": "platform", "path": str(remote)}
    flow["schedule"] = {"every": 0.3}
    flow["settings"] = {"company_name": "Outillage Durand SAS", "company_siren": "552081317"}
    return flow


@contextmanager
def running_with_exporter(workspace: Workspace) -> Iterator[Parts]:
    """The gateway as ``edigw run`` starts it: its loops and the exporter."""
    with open_parts(workspace.load()) as parts:
        gateway = Gateway(parts, senders=2)
        gateway.add_loop(
            "exporter",
            functools.partial(export_scheduler_loop, parts, gateway.signals),
            kind="exporter",
        )
        gateway.start()
        try:
            yield parts
        finally:
            gateway.stop()
            gateway.join(timeout=30)


def invoice_id(http: httpx.Client, number: str) -> str:
    page = http.get("/supplier-invoices", params={"limit": 1000}).json()
    (found,) = [i["id"] for i in page["items"] if i["number"] == number]
    return str(found)


def set_status(http: httpx.Client, number: str, status: str, **extra: Any) -> None:
    ident = invoice_id(http, number)
    answer = http.post(
        f"/supplier-invoices/{ident}/status",
        json={"id": ident, "status": status, **extra},
        headers={"Idempotency-Key": key()},
    )
    assert answer.status_code == 200, answer.text


def statuses_of(remote: Path, number: str) -> list[Path]:
    return sorted(p for p in remote.iterdir() if f"_{number}_" in p.name)


def test_a_refused_invoice_makes_one_cdar_file_on_the_platforms_sftp_server(
    tmp_path: Path, sandbox_factory: Any, sshd: Any
) -> None:
    ecolix = sandbox_factory()
    remote = tmp_path / "platform" / "statuses"
    remote.mkdir(parents=True)
    workspace = write_workspace(
        tmp_path / "gw",
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={
            "supplier": {
                "einvoices": inbound_flow("supplier-einvoices.yaml", "supplier", "einvoices"),
                "einvoice-statuses": shipped_statuses_flow(remote),
            }
        },
    )
    known_hosts = workspace.root / "known_hosts"
    known_hosts.write_text(sshd.known_hosts_line, encoding="utf-8")
    config = yaml.safe_load(workspace.config_path.read_text(encoding="utf-8"))
    config["sftp_endpoints"] = {
        "platform": {
            "host": sshd.host,
            "port": sshd.port,
            "username": sshd.user,
            "key_file": str(sshd.client_key),
            "known_hosts": str(known_hosts),
        }
    }
    workspace.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    inbox = workspace.inbox("supplier", "einvoices")
    for name, _ in (REFUSED, APPROVED):
        shutil.copyfile(CORPUS / name, inbox / Path(name).name)

    with running_with_exporter(workspace) as parts, ecolix.client() as http:
        wait_until(files_final(parts, 2), timeout=60, what="both invoices created")
        assert {f.state for f in parts.journal.files(limit=10)} == {"done"}
        reason = {"code": "TX_TVA_ERR", "text": "Taux de TVA erroné sur la ligne 1"}
        set_status(http, REFUSED[1], "refused", reason=reason)
        set_status(http, APPROVED[1], "approved")
        wait_until(
            lambda: statuses_of(remote, REFUSED[1]) and statuses_of(remote, APPROVED[1]),
            timeout=60,
            what="both statuses on the platform's SFTP server",
        )
        runs_then = len(parts.journal.export_runs(partner="supplier", limit=1000))
        runs: list[Any] = []

        def three_more_runs_none_under_way() -> bool:
            runs[:] = parts.journal.export_runs(partner="supplier", limit=1000)
            return len(runs) >= runs_then + 3 and all(r.state != "running" for r in runs)

        wait_until(
            three_more_runs_none_under_way,
            timeout=60,
            what="three more runs of the statuses flow, none of them under way",
        )

    (refused,) = statuses_of(remote, REFUSED[1])
    (approved,) = statuses_of(remote, APPROVED[1])  # once each, however many runs
    assert refused.name.startswith("CDV_") and refused.name.endswith(".xml")
    for message in (refused, approved):
        assert xsd_errors(message) == []
        assert rule_failures(message) == []
    assert value(refused, f"{REFERENCED}/ram:IssuerAssignedID/text()") == [REFUSED[1]]
    assert value(refused, f"{REFERENCED}/ram:ProcessConditionCode/text()") == ["210"]
    assert value(refused, f"{REFERENCED}/ram:SpecifiedDocumentStatus/ram:ReasonCode/text()") == [
        "TX_TVA_ERR"
    ]
    assert value(refused, f"{REFERENCED}/ram:SpecifiedDocumentStatus/ram:Reason/text()") == [
        reason["text"]
    ]
    assert value(approved, f"{REFERENCED}/ram:ProcessConditionCode/text()") == ["205"]
    delivered = [r for r in runs if r.state == "delivered"]
    assert sorted(r.file_name for r in delivered) == sorted(p.name for p in remote.iterdir())
    assert {r.state for r in runs} <= {"delivered", "empty"}
