"""The shipped mappings: every sample maps to its golden output, and Ecolix accepts it.

Layout (see ``samples/README.md``)::

    mappings/<name>.yaml
    samples/<package>/<name>/<file>        good samples of that mapping
    tests/golden/<name>/<file>.json        what ``edigw mapping test`` prints for them

A golden file is the JSON of ``edigw mapping test MAPPING SAMPLE``, so a consultant can check
a change by hand with ``--expect tests/golden/<name>/<file>.json``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from edigw.mapping import load_mapping
from edigw.mapping.sample import check_mappings, diff_expected, run_samples

ROOT = Path(__file__).resolve().parent.parent
MAPPINGS = ROOT / "mappings"
SAMPLES = ROOT / "samples"
GOLDEN = ROOT / "tests" / "golden"

#: The OASIS UBL 2.1 examples, copied byte for byte (samples/README.md gives provenance).
UBL_EXAMPLES = {
    "supplier/supplier-invoices-ubl/UBL-Invoice-2.1-Example.xml": (
        "2a3c9303ec7f3a8d944eea29d023db87a5116975f6abb14bb75c022b5d0c8c8f"
    ),
    "supplier/supplier-credit-notes-ubl/UBL-CreditNote-2.1-Example.xml": (
        "5aff8d60535b846920b78efc37bd76163c4ac095fd773702b50a61d81386398e"
    ),
    "supplier/supplier-confirmations-ubl/UBL-OrderResponse-2.1-Example.xml": (
        "a5f109d4d7ce3fe836d4ad4bcddb58b11d93e713e6b8222ff4840d4a08d0fe33"
    ),
}


#: Samples Ecolix cannot accept yet, and why (``"<mapping>/<sample>": reason``). Their golden
#: files hold the intended payloads; the marks are strict, so closing a gap fails the test until
#: the entry is removed. (The OASIS UBL Invoice and CreditNote examples were here until the
#: contract took negative return lines and keyed supplier documents on their type too.)
KNOWN_GAPS: dict[str, str] = {}


def gap_marks(sample: Path) -> list[pytest.MarkDecorator]:
    reason = KNOWN_GAPS.get(f"{sample.parent.name}/{sample.name}")
    return [pytest.mark.xfail(reason=reason, strict=True)] if reason else []


def shipped_mappings() -> list[Path]:
    return sorted(MAPPINGS.glob("*.yaml"))


def good_samples(mapping: Path) -> list[Path]:
    return sorted(
        p
        for p in SAMPLES.glob(f"*/{mapping.stem}/*")
        if p.is_file() and p.relative_to(SAMPLES).parts[0] != "bad"
    )


def golden_for(sample: Path) -> Path:
    return GOLDEN / sample.parent.name / f"{sample.name}.json"


CASES = [
    pytest.param(mapping, sample, id=f"{mapping.stem}/{sample.name}", marks=gap_marks(sample))
    for mapping in shipped_mappings()
    for sample in good_samples(mapping)
]


def mapped(mapping: Path, sample: Path) -> list[dict[str, Any]]:
    run = run_samples(load_mapping(mapping), sample)
    problems = [d for d in run.documents if "problems" in d or "error" in d]
    assert problems == [], json.dumps(problems, indent=2, ensure_ascii=False)
    return run.documents


@pytest.mark.parametrize(("mapping", "sample"), CASES)
def test_sample_maps_to_its_golden_output(mapping: Path, sample: Path) -> None:
    run = run_samples(load_mapping(mapping), sample)

    assert run.ok, json.dumps(run.documents, indent=2, ensure_ascii=False)
    assert diff_expected(run, golden_for(sample)) == []


def test_every_shipped_mapping_has_a_sample_and_a_golden() -> None:
    assert len(shipped_mappings()) >= 11
    for mapping in shipped_mappings():
        samples = good_samples(mapping)
        assert samples, f"{mapping.name} has no sample in samples/*/{mapping.stem}/"
        for sample in samples:
            assert golden_for(sample).is_file(), f"{sample} has no golden {golden_for(sample)}"


def test_every_golden_file_belongs_to_a_sample() -> None:
    expected = {golden_for(c.values[1]) for c in CASES}  # type: ignore[arg-type]
    inbound = {p for p in GOLDEN.rglob("*.json") if p.parent.name != "outbound"}  # exports' own
    assert inbound == expected


def test_every_sample_folder_names_a_shipped_mapping() -> None:
    names = {m.stem for m in shipped_mappings()}
    folders = {
        p.name for p in SAMPLES.glob("*/*") if p.is_dir() and p.parent.name not in ("bad", "tools")
    }
    assert folders <= names


def test_shipped_mappings_and_their_lookup_tables_pass_mapping_check() -> None:
    results = check_mappings([MAPPINGS])
    assert {r.path.name: r.problems for r in results if r.problems} == {}
    assert len(results) == len(shipped_mappings())


@pytest.mark.parametrize(("relative", "sha256"), list(UBL_EXAMPLES.items()))
def test_ubl_samples_are_the_unchanged_oasis_examples(relative: str, sha256: str) -> None:
    assert hashlib.sha256((SAMPLES / relative).read_bytes()).hexdigest() == sha256


def test_ubl_credit_note_is_posted_as_a_credit_note_of_a_registered_invoice() -> None:
    golden = GOLDEN / "supplier-credit-notes-ubl" / "UBL-CreditNote-2.1-Example.xml.json"
    (document,) = json.loads(golden.read_text(encoding="utf-8"))
    assert document["payload"]["document_type"] == "credit_note"
    assert document["payload"]["credited_invoice"] == "F2026-701"


def test_ubl_return_lines_keep_their_sign() -> None:
    golden = GOLDEN / "supplier-invoices-ubl" / "UBL-Invoice-2.1-Example.xml.json"
    (document,) = json.loads(golden.read_text(encoding="utf-8"))
    lines = document["payload"]["lines"]
    assert [(line["quantity"], line["net_amount"]) for line in lines] == [
        ("1", "1273.00"),
        ("-1", "-3.96"),
        ("2", "4.96"),
        ("-1", "-25.00"),
        ("250", "187.50"),
    ]
    assert document["payload"]["totals"] == {"net": "1436.50", "vat": "292.20", "gross": "1728.70"}


def test_every_target_operation_is_covered() -> None:
    targets = {load_mapping(m).target for m in shipped_mappings()}
    assert targets == {
        "customers.upsert",
        "orders.create",
        "quotes.validate",
        "delivery_notes.create",
        "purchase_orders.confirm",
        "supplier_invoices.create",
    }


# --- End to end: the real sandbox accepts every good sample's payloads ----------------------


@pytest.fixture(scope="module")
def ecolix(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One real sandbox (uvicorn on loopback, shipped seed) shared by every sample, as in the
    demo: the samples must not step on each other either."""
    from edigw.ecolix.client import EcolixClient
    from edigw.sandbox.server import run_in_thread

    db = tmp_path_factory.mktemp("sandbox") / "sandbox.sqlite"
    with (
        run_in_thread(
            db, token="T", rate_limit="100000/minute", seed=SAMPLES / "sandbox-seed.json"
        ) as base_url,
        EcolixClient(base_url, "T") as client,
    ):
        yield client


@pytest.mark.parametrize(("mapping", "sample"), CASES)
def test_sample_payloads_are_accepted_by_the_sandbox(
    ecolix: Any, mapping: Path, sample: Path
) -> None:
    from edigw.errors import EcolixError

    refused = []
    for document in mapped(mapping, sample):
        key = f"shipped-{mapping.stem}-{sample.name}-{document['key']}"
        try:
            answer = ecolix.write(document["operation"], document["payload"], idempotency_key=key)
        except EcolixError as exc:
            refused.append(f"{document['key']}: {exc}")
            continue
        assert answer.status in (200, 201)
        assert answer.object_id, answer.body
        assert not answer.replayed
    assert refused == []
