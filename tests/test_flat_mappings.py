"""The shipped flat-file mappings: broken samples give pinned errors; layouts are checked at load.

Good samples and their golden payloads (and the sandbox accepting them) are covered with every
shipped mapping in ``tests/test_shipped_mappings.py``; the broken ones live in
``samples/bad/flat/<mapping>/`` and are pinned here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edigw.errors import MappingError
from edigw.mapping import load_mapping
from edigw.mapping.sample import check_mappings, run_samples

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "samples" / "bad" / "flat"

PINNED = [
    pytest.param(
        "flat-webshop-orders-csv/webshop-orders-unknown-record.csv",
        "webshop-orders-unknown-record.csv:3 record PROMO: "
        "unknown record type 'PROMO' (known: HEADER, LINE)",
        id="unknown-record-type",
    ),
    pytest.param(
        "flat-supplier-confirmations-ent-lig/AR_detail_before_header.txt",
        "AR_detail_before_header.txt:1 record LIG: LIG record before any ENT header: expected ENT",
        id="detail-before-header",
    ),
    pytest.param(
        "flat-supplier-confirmations-ent-lig/AR_trailer_count_mismatch.txt",
        "AR_trailer_count_mismatch.txt:4:3 record FIN field line_count: "
        "the trailer announces 3 LIG records, the file has 2",
        id="trailer-count-mismatch",
    ),
    pytest.param(
        "flat-carrier-appointments-fixed/KN_RDV_overflow.txt",
        "KN_RDV_overflow.txt:2 record 02 field unit_kind (columns 56-60): "
        "the line overflows its last field: 2 more character(s) past column 60 ('TE')",
        id="fixed-width-field-overflow",
    ),
    pytest.param(
        "flat-carrier-appointments-fixed/KN_RDV_bad_quantity.txt",
        "KN_RDV_bad_quantity.txt:2 record 02 field quantity (columns 39-47): "
        "'00000A000' is not a number with 3 implied decimals",
        id="non-numeric-implied-decimal",
    ),
]


@pytest.mark.parametrize(("relative", "expected"), PINNED)
def test_broken_flat_sample_fails_whole_with_a_pinned_error(relative: str, expected: str) -> None:
    sample = BAD / relative
    mapping = load_mapping(ROOT / "mappings" / f"{sample.parent.name}.yaml")

    run = run_samples(mapping, sample)

    assert [d.get("error") for d in run.documents] == [expected]


def test_every_broken_flat_sample_is_pinned() -> None:
    on_disk = {str(p.relative_to(BAD)) for p in BAD.rglob("*") if p.is_file()}
    assert on_disk == {p.values[0] for p in PINNED}


def write_mapping(folder: Path, layout: str) -> Path:
    (folder / "layout.yaml").write_text(layout, encoding="utf-8")
    mapping = folder / "carrier.yaml"
    mapping.write_text(
        "version: 1\n"
        "source: {format: flat-fixed, layout: layout.yaml}\n"
        "target: delivery_notes.create\n"
        "documents: {per: record}\n"
        "key: ref\n"
        "fields:\n"
        "  booking_reference: ref\n"
        "  order_number: {value: CMD-1}\n"
        "  carrier_code: {value: KUEHNE}\n"
        "  appointment_date: {value: '2026-12-03', type: date}\n"
        "  slot_start: {value: '08:00'}\n"
        "  slot_end: {value: '10:00'}\n",
        encoding="utf-8",
    )
    return mapping


LAYOUT = """\
kind: fixed
record_type: {{start: 1, length: 2}}
records:
  "01":
    fields:
      - {{name: type, start: 1, length: 2}}
      - {{name: ref, start: 3, length: 10}}
      - {second}
structure: {{header: "01"}}
"""


@pytest.mark.parametrize(
    ("second", "problem"),
    [
        pytest.param(
            "{name: date, start: 10, length: 8}",
            "layout.yaml: records.01.fields.2: record 01: field 'date' (positions 10-17) "
            "overlaps 'ref' (positions 3-12)",
            id="overlap",
        ),
        pytest.param(
            "{name: date, start: 1, length: 2}",
            "layout.yaml: records.01.fields.2: record 01: field 'date' (positions 1-2) "
            "comes before the previous field 'ref' (positions 3-12); list fields in order",
            id="out-of-order",
        ),
    ],
)
def test_mapping_check_refuses_a_layout_naming_record_type_and_positions(
    tmp_path: Path, second: str, problem: str
) -> None:
    mapping = write_mapping(tmp_path, LAYOUT.format(second=second))

    (result,) = check_mappings([mapping])

    assert result.problems == [f"carrier.yaml:2 source: 1 problem(s) in layout: {problem}"]


def test_a_layout_file_is_resolved_beside_the_mapping(tmp_path: Path) -> None:
    mapping = write_mapping(tmp_path, LAYOUT.format(second="{name: date, start: 13, length: 8}"))

    assert load_mapping(mapping).target == "delivery_notes.create"


def test_a_field_missing_from_the_layout_is_refused_at_load(tmp_path: Path) -> None:
    mapping = write_mapping(tmp_path, LAYOUT.format(second="{name: date, start: 13, length: 8}"))
    mapping.write_text(
        mapping.read_text().replace("booking_reference: ref", "booking_reference: refx")
    )

    with pytest.raises(MappingError) as caught:
        load_mapping(mapping)

    assert caught.value.problems == [
        "carrier.yaml:7 fields.booking_reference.from: 'refx' is neither a field nor a record "
        "type of layout layout.yaml"
    ]


def test_mapping_check_lists_every_layout_problem_at_once(tmp_path: Path) -> None:
    layout = LAYOUT.format(second="{name: date, start: 5, length: 2}").replace(
        'structure: {header: "01"}', 'structure: {header: "09"}'
    )
    mapping = write_mapping(tmp_path, layout)

    (result,) = check_mappings([mapping])

    assert result.problems == [
        "carrier.yaml:2 source: 2 problem(s) in layout: layout.yaml: records.01.fields.2: "
        "record 01: field 'date' (positions 5-6) overlaps 'ref' (positions 3-12); "
        "layout.yaml: structure.header: unknown record type '09'"
    ]


def test_a_bad_value_fails_only_its_document_and_names_the_columns(tmp_path: Path) -> None:
    good = (ROOT / "samples/flat/flat-carrier-appointments-fixed/KN_RDV_20261128.txt").read_bytes()
    sample = tmp_path / "KN.txt"
    sample.write_bytes(good.replace(b"20261203", b"20261340", 1))
    mapping = load_mapping(ROOT / "mappings" / "flat-carrier-appointments-fixed.yaml")

    run = run_samples(mapping, sample)

    assert [(d["key"], d.get("problems")) for d in run.documents] == [
        (
            "KN-RDV-2611801",
            [
                {
                    "location": "KN.txt:1 record 01 field appointment_date (columns 43-50)",
                    "pointer": "/appointment_date",
                    "message": "'20261340' is not a date in the format %Y%m%d",
                }
            ],
        ),
        ("KN-RDV-2611802", None),
    ]
