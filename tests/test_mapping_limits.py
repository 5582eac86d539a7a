"""Documents too large to build fail alone, before they are built; a file that takes too
long fails, located; the flow's limits reach the readers from edigw.yaml."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from edigw.config import FlowLimits
from edigw.errors import MalformedFileError
from edigw.formats.limits import DEFAULT_LIMITS, ReaderLimits
from edigw.mapping import load_mapping

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data" / "mapping"
HEADER = "Order;Date;Customer;SKU;Qty;Price;Payment;Total;Transaction;Payé le;Status\n"


def line(order: str, sku: str = "SKU-1") -> str:
    return f"{order};03/11/2026;C0001;{sku};2;12,50;CB;30,00;TX-1;03/11/2026 10:15;OK\n"


def orders_file(tmp_path: Path, sizes: dict[str, int]) -> Path:
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + "".join(line(o) * n for o, n in sizes.items()), encoding="utf-8")
    return path


def test_an_order_over_the_line_limit_fails_alone_before_it_is_built(tmp_path: Path) -> None:
    """Before: one order of 200,000 lines took 908 MB and a 13 MB error message."""
    mapping = load_mapping(DATA / "orders-csv.yaml")
    path = orders_file(tmp_path, {"W-1": 2, "4711": 150, "W-3": 1})
    docs = list(
        mapping.map_file(
            path, source_name="orders.csv", limits=ReaderLimits(max_lines_per_document=100)
        )
    )
    assert [(d.key, d.ok) for d in docs] == [("W-1", True), ("4711", False), ("W-3", True)]
    assert [str(p) for p in docs[1].problems] == [
        "orders.csv:4: the document of Order 4711 has more than 100 records, over the limit "
        "of 100 (limits.max_lines_per_document); it is refused before it is built"
    ]
    assert docs[1].payload is None
    assert str(docs[1].location) == "orders.csv:4"


def test_an_order_at_the_line_limit_is_built(tmp_path: Path) -> None:
    mapping = load_mapping(DATA / "orders-csv.yaml")
    path = orders_file(tmp_path, {"W-1": 100})
    [doc] = mapping.map_file(
        path, source_name="orders.csv", limits=ReaderLimits(max_lines_per_document=100)
    )
    assert doc.ok
    assert doc.payload is not None
    assert len(doc.payload["lines"]) == 100


def test_the_default_line_limit_is_ten_times_what_ecolix_accepts() -> None:
    assert DEFAULT_LIMITS.max_lines_per_document == 10_000


def test_a_whole_file_document_over_the_limit_fails_before_it_is_built(tmp_path: Path) -> None:
    mapping_path = tmp_path / "m.yaml"
    mapping_path.write_text(
        (DATA / "orders-csv.yaml")
        .read_text()
        .replace("documents:\n  per: group\n  by: Order\n", "documents: {per: file}\n")
    )
    (tmp_path / "articles.csv").write_text((DATA / "articles.csv").read_text())
    mapping = load_mapping(mapping_path)
    path = orders_file(tmp_path, {"W-1": 30})
    [doc] = mapping.map_file(
        path, source_name="orders.csv", limits=ReaderLimits(max_lines_per_document=10)
    )
    assert [str(p) for p in doc.problems] == [
        "orders.csv:2: the document of the file has more than 10 records, over the limit of "
        "10 (limits.max_lines_per_document); it is refused before it is built"
    ]


def test_an_xml_order_with_too_many_lines_fails_alone(tmp_path: Path) -> None:
    text = (DATA / "orders.xml").read_text()
    many = '<Line><Sku>SKU-1</Sku><Qty>1</Qty><Price currency="EUR">1.00</Price></Line>\n' * 60
    text = text.replace("<Lines>\n      <Line><Sku>SKU-3", "<Lines>\n" + many + "<Line><Sku>SKU-3")
    path = tmp_path / "orders.xml"
    path.write_text(text)
    mapping = load_mapping(DATA / "orders-xml.yaml")
    docs = list(
        mapping.map_file(
            path, source_name="orders.xml", limits=ReaderLimits(max_lines_per_document=50)
        )
    )
    assert [(d.key, d.ok) for d in docs] == [("W-2001", True), ("W-2002", False)]
    assert [str(p) for p in docs[1].problems] == [
        "orders.xml:13 /o:Orders/o:Order[2] [/lines]: the list 'o:Lines/o:Line' has 61 items, "
        "over the limit of 50 (limits.max_lines_per_document); the document is refused"
    ]


def test_a_flat_file_document_too_large_to_hold_fails_alone(tmp_path: Path) -> None:
    mapping = load_mapping(ROOT / "mappings" / "flat-supplier-confirmations-ent-lig.yaml")
    lines = [f"LIG;{i};005-6077;ART-0027;1;120,19;20261222;ACC\n" for i in range(1, 61)]
    path = tmp_path / "AR.txt"
    path.write_text(
        "ENT;PO-2026-0005;AR-1;20261127;SUP-005\n"
        + "".join(lines)
        + "ENT;PO-2026-0010;AR-2;20261127;SUP-002\n"
        + "LIG;1;002-9982;ART-0229;250;30,88;20261228;ACC\n"
        + "FIN;2;61;310\n"
    )
    docs = list(
        mapping.map_file(path, source_name="AR.txt", limits=ReaderLimits(max_lines_per_document=50))
    )
    assert [(d.key, d.ok) for d in docs] == [("PO-2026-0005", False), ("PO-2026-0010", True)]
    assert [str(p) for p in docs[0].problems] == [
        "AR.txt:1 record ENT: the document of the ENT record at line 1 has more than 50 "
        "records, over the limit of 50 (limits.max_lines_per_document)"
    ]


def test_a_file_that_takes_longer_than_its_budget_fails_located(tmp_path: Path) -> None:
    mapping = load_mapping(DATA / "orders-csv.yaml")
    path = orders_file(tmp_path, {f"W-{i}": 1 for i in range(300)})
    # Every look at the clock is half a second later; it is read at the start, then before
    # each document: 0.5 s, 1.0 s, then 1.5 s before the third order (line 4) is over.
    ticks = itertools.count(0.0, 0.5)
    with pytest.raises(MalformedFileError) as caught:
        list(
            mapping.map_file(
                path,
                source_name="orders.csv",
                limits=ReaderLimits(max_seconds=1.0),
                clock=lambda: next(ticks),
            )
        )
    assert str(caught.value) == (
        "orders.csv:4: reading and mapping orders.csv took more than 1 s, over the limit of "
        "1 s (limits.max_seconds); stopped at this record"
    )


def test_a_whole_file_document_is_stopped_by_the_time_budget_too(tmp_path: Path) -> None:
    mapping_path = tmp_path / "m.yaml"
    mapping_path.write_text(
        (DATA / "orders-csv.yaml")
        .read_text()
        .replace("documents:\n  per: group\n  by: Order\n", "documents: {per: file}\n")
    )
    (tmp_path / "articles.csv").write_text((DATA / "articles.csv").read_text())
    path = orders_file(tmp_path, {"W-1": 300})
    ticks = itertools.count(0.0, 0.5)  # looked at every 64 records: over at record 129
    with pytest.raises(MalformedFileError) as caught:
        list(
            load_mapping(mapping_path).map_file(
                path,
                source_name="orders.csv",
                limits=ReaderLimits(max_seconds=1.0),
                clock=lambda: next(ticks),
            )
        )
    assert str(caught.value).startswith("orders.csv:130: reading and mapping orders.csv took")


def test_the_limits_block_of_a_flow_becomes_the_readers_limits() -> None:
    limits = FlowLimits.model_validate(
        {"max_expanded_bytes": "20MB", "max_seconds": "2m", "control_characters": "allow"}
    )
    assert limits.reader_limits() == ReaderLimits(
        max_expanded_bytes=20 * 1024 * 1024, max_seconds=120.0, control_characters="allow"
    )
    assert FlowLimits().reader_limits() == DEFAULT_LIMITS


def test_an_unknown_limit_is_a_configuration_error() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="max_cels"):
        FlowLimits.model_validate({"max_cels": 10})
    with pytest.raises(ValidationError, match="greater than 0"):
        FlowLimits.model_validate({"max_lines_per_document": 0})
