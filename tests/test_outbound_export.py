"""Export runs against the real sandbox: every shipped template, deltas, failures, guards.

Each export is parsed back (csv module, lxml) and compared with the sandbox's own records,
read independently with plain HTTP.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from lxml import etree

from edigw.channels.base import UploadSettings
from edigw.channels.local import LocalOutboundChannel, LocalOutboundSettings
from edigw.ecolix.client import EcolixClient
from edigw.errors import ChannelError, SourceDataError
from edigw.journal.archive_folder import FolderArchive
from edigw.journal.store import Journal
from edigw.outbound.delivery import replay_export_run
from edigw.outbound.export import run_export
from edigw.outbound.flow import ExportFlow, ExportResult
from tests.fixtures.sandbox_data import customer_body, unique

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "templates"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
UBL = {
    "ubl": "urn:oasis:names:specification:ubl:schema:xsd:Order-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}


def fr(value: Any, places: int) -> str:
    """The expected French decimal text, computed independently of the filters."""
    q = Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{q:f}".replace(".", ",")


@dataclass
class Gateway:
    sandbox: Any
    client: EcolixClient
    journal: Journal
    archive: FolderArchive
    outbox: Path
    work: Path

    def channel(self) -> LocalOutboundChannel:
        return LocalOutboundChannel(
            LocalOutboundSettings(self.outbox, UploadSettings(if_exists="fail"))
        )

    def flow(self, template: str, resource: str, **kwargs: Any) -> ExportFlow:
        return ExportFlow(
            partner=kwargs.pop("partner", "p"),
            flow=kwargs.pop("flow", template.split(".")[0]),
            resource=resource,
            template=TEMPLATES / template,
            filename=kwargs.pop("filename", "{flow}_{seq:04d}" + Path(template).suffixes[0]),
            timezone="Europe/Paris",
            **kwargs,
        )

    def run(self, flow: ExportFlow, **kwargs: Any) -> ExportResult:
        kwargs.setdefault("channel", self.channel())
        kwargs.setdefault("now", NOW)
        return run_export(
            flow,
            client=self.client,
            journal=self.journal,
            archive=self.archive,
            work_dir=self.work,
            **kwargs,
        )

    def listing(self, path: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        with self.sandbox.client() as http:
            while True:
                query = {"limit": 1000, **params}
                if cursor:
                    query["cursor"] = cursor
                body = http.get(path, params=query).raise_for_status().json()
                items += body["items"]
                cursor = body["next_cursor"]
                if not cursor:
                    return items


def _gateway(sandbox: Any, tmp_path: Path, journal_url: str | None = None) -> Iterator[Gateway]:
    """The export parts on ``journal_url`` (default: a SQLite journal in ``tmp_path``)."""
    client = EcolixClient(sandbox.base_url, sandbox.token)
    journal = Journal.open(journal_url or f"sqlite:///{tmp_path / 'journal.sqlite'}")
    try:
        yield Gateway(
            sandbox,
            client,
            journal,
            FolderArchive(tmp_path / "archive"),
            tmp_path / "out",
            tmp_path / "work",
        )
    finally:
        journal.close()
        client.close()


@pytest.fixture
def gw(sandbox, tmp_path) -> Iterator[Gateway]:
    """The shared session sandbox (read-only use)."""
    yield from _gateway(sandbox, tmp_path)


@pytest.fixture
def fresh(sandbox_factory, tmp_path) -> Iterator[Gateway]:
    """A sandbox of this test's own (for tests that change data)."""
    yield from _gateway(sandbox_factory(), tmp_path)


def read_csv(path: Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    text = path.read_bytes().decode(encoding)
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


def delivered(result: ExportResult) -> Path:
    assert result.state == "delivered", result
    assert result.delivered is not None
    return Path(result.delivered.path)


# --------------------------------------------------------------------------- every template


def test_webshop_articles_csv_holds_every_article_with_its_prices(gw):
    articles = gw.listing("/articles")
    result = gw.run(gw.flow("webshop-articles.csv.j2", "articles.list"))
    rows = read_csv(delivered(result))
    assert [r["code"] for r in rows] == [a["code"] for a in articles]
    for row, art in zip(rows, articles, strict=True):
        assert row["label"] == art["label"]
        assert row["ean13"] == (art["ean13"] or "")
        assert row["price_excl_vat"] == fr(art["sale_price"], 2)
        gross = Decimal(art["sale_price"]) * (100 + Decimal(art["vat_rate"])) / 100
        assert row["price_incl_vat"] == fr(gross, 2)
        assert row["weight_kg"] == fr(art["weight_kg"], 3)
        assert row["active"] == ("1" if art["active"] else "0")
    assert result.records == len(articles)
    assert result.calls == 1  # 300 articles, one page of 1000


def test_stock_csv_holds_every_level(gw):
    levels = gw.listing("/stock")
    rows = read_csv(delivered(gw.run(gw.flow("webshop-stock.csv.j2", "stock.list"))))
    got = {(r["article"], r["warehouse"]): r for r in rows}
    assert len(got) == len(rows) == len(levels)
    for level in levels:
        row = got[(level["article_code"], level["warehouse"])]
        assert row["available"] == fr(level["available"], 3)
        assert row["on_hand"] == fr(level["on_hand"], 3)
        nxt = level["next_receipt_date"]
        assert row["next_receipt_date"] == (
            "" if nxt is None else datetime.fromisoformat(nxt).strftime("%d/%m/%Y")
        )


def test_order_states_csv_holds_every_state_change_in_paris_time(gw):
    changes = gw.listing("/order-states")
    rows = read_csv(
        delivered(gw.run(gw.flow("ecommerce-order-states.csv.j2", "order_states.list")))
    )
    assert [(r["order_number"], r["status"]) for r in rows] == [
        (c["order_number"], c["status"]) for c in changes
    ]
    first = datetime.fromisoformat(changes[0]["updated_at"].replace("Z", "+00:00"))
    shown = datetime.strptime(rows[0]["changed_at"], "%Y-%m-%dT%H:%M:%S%z")
    assert shown == first.replace(microsecond=0)
    assert shown.utcoffset() == ZoneInfo("Europe/Paris").utcoffset(first.replace(tzinfo=None))


def test_quotes_xml_holds_every_quote_with_lines_and_totals(gw):
    quotes = gw.listing("/quotes")
    root = etree.parse(str(delivered(gw.run(gw.flow("quotes.xml.j2", "quotes.list"))))).getroot()
    ns = {"q": "urn:edigw:quotes:1"}
    elements = root.findall("q:Quote", ns)
    assert [e.get("number") for e in elements] == [q["number"] for q in quotes]
    for element, quote in zip(elements, quotes, strict=True):
        assert element.find("q:Customer", ns).get("code") == quote["customer_code"]
        lines = element.findall("q:Lines/q:Line", ns)
        assert [line.findtext("q:Article", namespaces=ns) for line in lines] == [
            line["article_code"] for line in quote["lines"]
        ]
        assert (
            element.find("q:Totals", ns).get("gross") == f"{Decimal(quote['totals']['gross']):.2f}"
        )


def spreadsheet_safe(text: str) -> str:
    """What a partner's CSV holds for a text: a would-be formula gets a leading apostrophe.

    The sandbox is shared by the session, and other tests create customers whose names are
    formula injections (``=cmd|...``); those must reach the file neutralised, the rest as is.
    """
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def test_crm_customers_csv_holds_every_customer_and_address(gw):
    customers = gw.listing("/customers")
    rows = read_csv(delivered(gw.run(gw.flow("crm-customers.csv.j2", "customers.list"))))
    assert [r["code"] for r in rows] == [c["code"] for c in customers]
    for row, cust in zip(rows, customers, strict=True):
        assert row["name"] == spreadsheet_safe(cust["name"])
        assert row["billing_city"] == spreadsheet_safe(cust["billing_address"]["city"])
        assert row["siret"] == (cust["siret"] or "")
        first = cust["delivery_addresses"][0] if cust["delivery_addresses"] else {}
        assert row["delivery_city"] == first.get("city", "")


def test_order_history_and_crm_orders_hold_every_order(gw):
    orders = gw.listing("/orders")
    history = read_csv(delivered(gw.run(gw.flow("ecommerce-order-history.csv.j2", "orders.list"))))
    expected = [(o["number"], str(line["line_number"])) for o in orders for line in o["lines"]]
    assert [(r["order_number"], r["line"]) for r in history] == expected
    crm = read_csv(delivered(gw.run(gw.flow("crm-orders.csv.j2", "orders.list"))))
    assert [(r["number"], r["gross"]) for r in crm] == [
        (o["number"], fr(o["totals"]["gross"], 2)) for o in orders
    ]


def _expected_shipments(gw: Gateway) -> list[tuple[dict[str, Any], dict[str, Any], Decimal]]:
    weights = {a["code"]: Decimal(a["weight_kg"]) for a in gw.listing("/articles")}
    customers = {c["code"]: c for c in gw.listing("/customers")}
    out = []
    for order in gw.listing("/orders"):
        address = order["delivery_address"]
        if address is None:
            cust = customers[order["customer_code"]]
            address = (cust["delivery_addresses"] or [cust["billing_address"]])[0]
        total = sum(
            (Decimal(line["quantity"]) * weights[line["article_code"]] for line in order["lines"]),
            Decimal(0),
        )
        out.append((order, address, total))
    return out


def test_carrier_orders_csv_has_addresses_weights_and_lines(gw):
    expected = _expected_shipments(gw)
    result = gw.run(gw.flow("carrier-orders.csv.j2", "orders.list"))
    rows = read_csv(delivered(result))
    by_order: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_order.setdefault(row["order_number"], []).append(row)
    assert list(by_order) == [order["number"] for order, _, _ in expected]
    for order, address, total in expected:
        got = by_order[order["number"]]
        assert [r["article"] for r in got] == [line["article_code"] for line in order["lines"]]
        assert {r["ship_to_city"] for r in got} == {address["city"]}
        assert {r["ship_to_postal_code"] for r in got} == {address["postal_code"]}
        assert {r["order_weight_kg"] for r in got} == {fr(total, 3)}
    # orders + articles + customers lists, one page each: never one call per order or line
    assert result.calls <= 3


def test_carrier_orders_xml_is_valid_against_its_xsd_and_holds_every_shipment(gw):
    expected = _expected_shipments(gw)
    flow = gw.flow("carrier-orders.xml.j2", "orders.list", xsd=TEMPLATES / "carrier-orders.xsd")
    root = etree.parse(str(delivered(gw.run(flow)))).getroot()
    ns = {"c": "urn:edigw:carrier-orders:1"}
    shipments = root.findall("c:Shipment", ns)
    assert [s.get("orderNumber") for s in shipments] == [o["number"] for o, _, _ in expected]
    for element, (order, address, total) in zip(shipments, expected, strict=True):
        assert element.findtext("c:DeliveryAddress/c:City", namespaces=ns) == address["city"]
        assert Decimal(element.findtext("c:GrossWeightKg", namespaces=ns)) == total.quantize(
            Decimal("0.001"), rounding=ROUND_HALF_UP
        )
        assert len(element.findall("c:Lines/c:Line", ns)) == len(order["lines"])


def test_supplier_purchase_orders_xml_is_ubl_like_and_complete(gw):
    pos = gw.listing("/purchase-orders")
    suppliers = {s["code"]: s for s in gw.listing("/suppliers")}
    flow = gw.flow(
        "supplier-purchase-orders.xml.j2",
        "purchase_orders.list",
        settings={"company_name": "Outillage Durand SAS"},  # the buyer: us (edigw.yaml settings)
    )
    path = delivered(gw.run(flow))
    orders = etree.parse(str(path)).getroot().findall("ubl:Order", UBL)
    assert [o.findtext("cbc:ID", namespaces=UBL) for o in orders] == [p["number"] for p in pos]
    for element, po in zip(orders, pos, strict=True):
        buyer = element.findtext(
            "cac:BuyerCustomerParty/cac:Party/cac:PartyName/cbc:Name", namespaces=UBL
        )
        assert buyer == "Outillage Durand SAS"
        seller = element.find("cac:SellerSupplierParty/cac:Party", UBL)
        assert (
            seller.findtext("cac:PartyName/cbc:Name", namespaces=UBL)
            == suppliers[po["supplier_code"]]["name"]
        )
        lines = element.findall("cac:OrderLine/cac:LineItem", UBL)
        assert [
            line.findtext("cac:Item/cac:BuyersItemIdentification/cbc:ID", namespaces=UBL)
            for line in lines
        ] == [line["article_code"] for line in po["lines"]]
        payable = element.findtext("cac:AnticipatedMonetaryTotal/cbc:PayableAmount", namespaces=UBL)
        assert Decimal(payable) == Decimal(po["totals"]["gross"])


def test_supplier_purchase_orders_csv_has_one_line_per_po_line(gw):
    pos = gw.listing("/purchase-orders")
    rows = read_csv(
        delivered(gw.run(gw.flow("supplier-purchase-orders.csv.j2", "purchase_orders.list")))
    )
    assert [(r["po_number"], r["article"], r["quantity"]) for r in rows] == [
        (p["number"], line["article_code"], fr(line["quantity"], 3))
        for p in pos
        for line in p["lines"]
    ]


def test_carrier_stock_fixed_width_file_has_every_level_in_its_columns(gw):
    levels = gw.listing("/stock")
    lines = (
        delivered(gw.run(gw.flow("carrier-stock.txt.j2", "stock.list"))).read_text().splitlines()
    )
    assert {len(line) for line in lines} == {62}
    got = [
        (
            line[0:20].rstrip(),
            line[20:30].rstrip(),
            Decimal(line[30:42]),
            Decimal(line[42:54]),
            line[54:62].strip(),
        )
        for line in lines
    ]
    assert got == [
        (
            s["article_code"],
            s["warehouse"],
            Decimal(s["available"]),
            Decimal(s["on_hand"]),
            (s["next_receipt_date"] or "").replace("-", ""),
        )
        for s in levels
    ]


# --------------------------------------------------------------------------- delta, full, journal


def test_second_delta_run_exports_exactly_the_changed_records(fresh):
    flow = fresh.flow("webshop-articles.csv.j2", "articles.list")
    first = fresh.run(flow)
    assert first.records == 300
    touched = fresh.sandbox.touch("articles", keys=["ART-0007", "ART-0123", "ART-0250"])
    second = fresh.run(flow)
    assert [r["code"] for r in read_csv(delivered(second))] == touched
    assert second.window_from == first.window_to
    assert fresh.journal.cursor("p", flow.flow) == second.window_to


def test_a_node_with_an_empty_disk_carries_on_without_sending_the_boundary_again(fresh, tmp_path):
    flow = fresh.flow("webshop-articles.csv.j2", "articles.list")
    fresh.run(flow)
    touched = fresh.sandbox.touch("articles", keys=["ART-0007", "ART-0123"])
    fresh.work = tmp_path / "another-node" / "work"  # the mark is in the journal only
    second = fresh.run(flow)
    assert [r["code"] for r in read_csv(delivered(second))] == touched
    assert not (tmp_path / "another-node" / "export-marks").exists()


def test_empty_delta_writes_no_file_unless_the_flow_says_so(fresh):
    flow = fresh.flow("webshop-stock.csv.j2", "stock.list")
    fresh.run(flow)
    empty = fresh.run(flow)
    assert empty.state == "empty"
    assert empty.file_name is None
    assert len(list(fresh.outbox.iterdir())) == 1
    assert fresh.journal.export_run(empty.run_id).state == "empty"
    forced = fresh.run(fresh.flow("webshop-stock.csv.j2", "stock.list", write_empty=True))
    assert read_csv(delivered(forced)) == []


def test_full_mode_exports_everything_after_a_delta(fresh):
    flow = fresh.flow("crm-customers.csv.j2", "customers.list")
    fresh.run(flow)
    full = fresh.run(flow, full=True)
    assert full.mode == "full"
    assert len(read_csv(delivered(full))) == len(fresh.listing("/customers"))


def test_a_failed_delivery_keeps_the_mark_and_the_next_run_sends_those_records(fresh):
    flow = fresh.flow("webshop-articles.csv.j2", "articles.list")
    first = fresh.run(flow)
    touched = fresh.sandbox.touch("articles", keys=["ART-0002", "ART-0003"])
    # the partner has not picked up a file of the same name: if_exists=fail refuses
    (fresh.outbox / "webshop-articles_0002.csv").write_text("left by the partner")
    with pytest.raises(ChannelError, match="already exists"):
        fresh.run(flow)
    failed = fresh.journal.export_runs(partner="p", flow=flow.flow, limit=1)[0]
    assert failed.state == "failed"
    assert fresh.journal.cursor("p", flow.flow) == first.window_to
    again = fresh.run(flow)
    assert [r["code"] for r in read_csv(delivered(again))] == touched


class NodeDied(BaseException):
    """SIGKILL: the process ends where it stands and writes nothing more."""


def test_a_node_killed_between_delivering_a_file_and_moving_the_mark_sends_no_record_twice(
    fresh, monkeypatch
):
    flow = fresh.flow("webshop-articles.csv.j2", "articles.list")
    fresh.run(flow)
    touched = fresh.sandbox.touch("articles", keys=["ART-0004", "ART-0005"])

    def killed(*args: Any, **kwargs: Any) -> None:
        raise NodeDied

    with monkeypatch.context() as dying:
        dying.setattr(fresh.journal, "finish_export_run", killed)
        with pytest.raises(NodeDied):
            fresh.run(flow)  # the file is at the partner's, the journal never learns it
    fresh.run(flow)  # the next leader's run
    _full, *later = sorted(fresh.outbox.iterdir())
    sent = [r["code"] for path in later for r in read_csv(path)]
    assert sorted(sent) == sorted(touched)


def _killed_between_delivering_and_journalling(fresh: Gateway, flow: ExportFlow) -> None:
    def killed(*args: Any, **kwargs: Any) -> None:
        raise NodeDied

    with pytest.MonkeyPatch.context() as dying:
        dying.setattr(fresh.journal, "finish_export_run", killed)
        with pytest.raises(NodeDied):
            fresh.run(flow)


def test_a_file_found_at_the_partner_after_a_kill_is_only_journalled_and_the_mark_moved(fresh):
    flow = fresh.flow("webshop-articles.csv.j2", "articles.list")
    first = fresh.run(flow)
    fresh.sandbox.touch("articles", keys=["ART-0004"])
    _killed_between_delivering_and_journalling(fresh, flow)
    [pending] = fresh.journal.pending_export_deliveries("p", flow.flow)
    assert fresh.journal.export_run(pending.run_id).state == "running"
    sent = (fresh.outbox / pending.file_name).read_bytes()

    after = fresh.run(flow)

    assert after.state == "empty"
    assert sorted(p.name for p in fresh.outbox.iterdir()) == [first.file_name, pending.file_name]
    assert (fresh.outbox / pending.file_name).read_bytes() == sent
    run = fresh.journal.export_run(pending.run_id)
    assert (run.state, run.file_name, run.records) == ("delivered", pending.file_name, 1)
    assert fresh.journal.cursor("p", flow.flow) == run.window_to == pending.mark_at
    assert fresh.journal.pending_export_deliveries("p", flow.flow) == []


def test_a_file_that_never_reached_the_partner_is_delivered_again_byte_for_byte(fresh):
    flow = fresh.flow("webshop-articles.csv.j2", "articles.list")
    first = fresh.run(flow)
    touched = fresh.sandbox.touch("articles", keys=["ART-0004", "ART-0005"])

    def killed_while_sending(self: Any, local_file: Path, name: str) -> None:
        raise NodeDied

    with pytest.MonkeyPatch.context() as dying:
        dying.setattr(LocalOutboundChannel, "deliver", killed_while_sending)
        with pytest.raises(NodeDied):
            fresh.run(flow)
    [pending] = fresh.journal.pending_export_deliveries("p", flow.flow)
    assert not (fresh.outbox / pending.file_name).exists()

    fresh.run(flow)

    assert sorted(p.name for p in fresh.outbox.iterdir()) == [first.file_name, pending.file_name]
    resent = fresh.outbox / pending.file_name
    with fresh.archive.open(pending.sha256) as archived:
        assert resent.read_bytes() == archived.read()
    assert [r["code"] for r in read_csv(resent)] == touched
    assert fresh.journal.export_run(pending.run_id).state == "delivered"
    assert fresh.journal.cursor("p", flow.flow) == pending.mark_at


def test_each_run_is_journaled_with_window_records_calls_file_and_archive(fresh):
    flow = fresh.flow("quotes.xml.j2", "quotes.list")
    result = fresh.run(flow)
    run = fresh.journal.export_run(result.run_id)
    assert (run.state, run.mode, run.records, run.calls) == ("delivered", "delta", 30, 1)
    assert run.window_from is None
    assert run.window_to == max(
        datetime.fromisoformat(q["updated_at"].replace("Z", "+00:00"))
        for q in fresh.listing("/quotes")
    )
    assert run.file_name == result.file_name == "quotes_0001.xml"
    with fresh.archive.open(run.sha256) as archived:
        assert archived.read() == delivered(result).read_bytes()


def test_dry_run_renders_without_journal_delivery_or_mark(fresh):
    flow = fresh.flow("webshop-stock.csv.j2", "stock.list")
    result = fresh.run(flow, dry_run=True, channel=None)
    assert result.state == "dry-run"
    assert result.path is not None and len(read_csv(result.path)) == 600
    result.path.unlink()
    assert fresh.journal.export_runs() == []
    assert fresh.journal.cursor("p", flow.flow) is None
    assert not fresh.outbox.exists()


def test_to_dir_writes_there_and_leaves_the_mark(fresh, tmp_path):
    flow = fresh.flow("webshop-stock.csv.j2", "stock.list")
    result = fresh.run(flow, to_dir=tmp_path / "manual", channel=None)
    assert result.path == tmp_path / "manual" / "webshop-stock_0001.csv"
    assert len(read_csv(result.path)) == 600
    assert fresh.journal.cursor("p", flow.flow) is None


def test_replay_delivers_the_archived_file_again(fresh, tmp_path):
    result = fresh.run(fresh.flow("webshop-stock.csv.j2", "stock.list"))
    other = LocalOutboundChannel(LocalOutboundSettings(tmp_path / "again"))
    again = replay_export_run(
        result.run_id, journal=fresh.journal, archive=fresh.archive, channel=other, now=NOW
    )
    assert again.name == result.file_name
    assert Path(again.path).read_bytes() == delivered(result).read_bytes()
    assert fresh.journal.export_runs(limit=1)[0].mode == "replay"


# --------------------------------------------------------------------------- guards


def test_a_formula_in_ecolix_data_is_neutralised_in_csv(fresh):
    code = unique("EVIL")
    name = '=HYPERLINK("http://evil.example","Click")'
    fresh.client.upsert_customer(customer_body(code, name=name), idempotency_key=unique("k"))
    rows = read_csv(delivered(fresh.run(fresh.flow("crm-customers.csv.j2", "customers.list"))))
    row = next(r for r in rows if r["code"] == code)
    assert row["name"] == "'" + name
    assert row["phone"] == "'+33 4 78 00 00 00"


def test_a_character_cp1252_cannot_hold_fails_the_run_naming_the_record(fresh):
    flow = fresh.flow("crm-customers.csv.j2", "customers.list", encoding="cp1252")
    fresh.run(flow)
    code = unique("HU")
    fresh.client.upsert_customer(
        customer_body(code, name="Gőzfürdő Kft"), idempotency_key=unique("k")
    )
    mark = fresh.journal.cursor("p", flow.flow)
    with pytest.raises(SourceDataError) as info:
        fresh.run(flow)
    assert f"record 1 (code={code}): character 'ő' (U+0151) cannot be encoded in cp1252" in str(
        info.value
    )
    run = fresh.journal.export_runs(limit=1)[0]
    assert run.state == "failed" and code in (run.error or "")
    assert fresh.journal.cursor("p", flow.flow) == mark


# --------------------------------------------------------------------------- over SFTP


@contextmanager
def _sftp_carrier(
    sshd: Any, tmp_path: Path, upload: UploadSettings | None = None
) -> Iterator[tuple[Any, Path]]:
    """An SFTP outbound channel to the suite's sshd (endpoint ``carrier``), delivering into a
    fresh ``remote`` folder (with ``upload`` settings, or the defaults); its connections are
    closed afterwards."""
    from edigw.channels.sftp.connection import SftpConnections
    from edigw.channels.sftp.outbound import SftpOutboundChannel
    from edigw.channels.sftp.settings import SftpEndpointSettings, SftpOutboundSettings

    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sshd.known_hosts_line)
    endpoint = SftpEndpointSettings(
        name="carrier",
        host=sshd.host,
        port=sshd.port,
        username=sshd.user,
        key_file=sshd.client_key,
        known_hosts=known_hosts,
    )
    remote = tmp_path / "remote"
    remote.mkdir()
    connections = SftpConnections({"carrier": endpoint})
    try:
        settings = SftpOutboundSettings("carrier", str(remote), upload or UploadSettings())
        channel = SftpOutboundChannel(settings, connections)
        yield channel, remote
    finally:
        connections.close()


@pytest.mark.sftp
def test_an_export_is_delivered_over_sftp_and_a_later_delta_too(fresh, sshd, tmp_path):
    with _sftp_carrier(sshd, tmp_path) as (channel, remote):
        flow = fresh.flow(
            "carrier-orders.xml.j2", "orders.list", xsd=TEMPLATES / "carrier-orders.xsd"
        )
        first = fresh.run(flow, channel=channel)
        assert first.delivered is not None
        assert first.delivered.path == f"{remote}/carrier-orders_0001.xml"
        shipped = etree.parse(str(remote / "carrier-orders_0001.xml")).getroot()
        assert len(shipped) == len(fresh.listing("/orders"))
        fresh.sandbox.set_order_status("CMD-100001", "confirmed")
        second = fresh.run(flow, channel=channel)
        root = etree.parse(str(remote / "carrier-orders_0002.xml")).getroot()
        assert [(s.get("orderNumber"), s.get("status")) for s in root] == [
            ("CMD-100001", "confirmed")
        ]
        assert second.records == 1
        assert sorted(p.name for p in remote.iterdir()) == [
            "carrier-orders_0001.xml",
            "carrier-orders_0002.xml",
        ]


@pytest.mark.sftp
def test_after_a_kill_a_file_on_the_sftp_server_is_read_back_not_sent_again(fresh, sshd, tmp_path):
    with _sftp_carrier(sshd, tmp_path) as (channel, remote):
        flow = fresh.flow("webshop-articles.csv.j2", "articles.list")
        fresh.run(flow, channel=channel)
        fresh.sandbox.touch("articles", keys=["ART-0009"])

        def killed(*args: Any, **kwargs: Any) -> None:
            raise NodeDied

        with pytest.MonkeyPatch.context() as dying:
            dying.setattr(fresh.journal, "finish_export_run", killed)
            with pytest.raises(NodeDied):
                fresh.run(flow, channel=channel)
        [pending] = fresh.journal.pending_export_deliveries("p", flow.flow)
        assert channel.holds(pending.file_name, size=pending.size, sha256=pending.sha256)
        assert not channel.holds(pending.file_name, size=pending.size, sha256="0" * 64)
        assert not channel.holds("nothing-here.csv", size=pending.size, sha256=pending.sha256)

        assert fresh.run(flow, channel=channel).state == "empty"
        assert sorted(p.name for p in remote.iterdir()) == [
            "webshop-articles_0001.csv",
            "webshop-articles_0002.csv",
        ]
        assert fresh.journal.export_run(pending.run_id).state == "delivered"
        assert fresh.journal.cursor("p", flow.flow) == pending.mark_at
