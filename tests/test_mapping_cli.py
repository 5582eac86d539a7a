"""`edigw mapping check` and `edigw mapping test`: what a consultant sees and the exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from edigw.cli import main
from edigw.mapping import load_mapping
from edigw.mapping.sample import JsonArrayWriter, run_samples

DATA = Path(__file__).parent / "data" / "mapping"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_check_reports_each_good_mapping_with_its_target() -> None:
    code, out, _ = invoke("mapping", "check", str(DATA / "orders-csv.yaml"))
    assert code == 0
    assert out.strip().endswith("orders-csv.yaml -> orders.create")


def test_check_lists_every_problem_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: {format: csv}\ndocuments: {per: row}\ntarget: orders.create\nkey: a\n")
    code, out, err = invoke("mapping", "check", str(tmp_path))
    assert code == 1
    assert 'bad.yaml:2 documents.per: "row" is not one of' in out
    assert 'bad.yaml:1: "fields" is a required property' in out
    assert "Error: 1 of 1 mapping file(s) have problems" in err


def test_test_prints_the_operations_as_json() -> None:
    code, out, err = invoke(
        "mapping", "test", str(DATA / "orders-csv.yaml"), str(DATA / "orders.csv")
    )
    assert code == 0, err
    docs = json.loads(out)
    assert [(d["file"], d["key"], d["operation"]) for d in docs] == [
        ("orders.csv", "W-1001", "orders.create"),
        ("orders.csv", "W-1002", "orders.create"),
    ]
    assert "orders.csv: encoding cp1252 (detected)" in err


def test_explain_shows_where_each_value_came_from() -> None:
    code, _, err = invoke(
        "mapping", "test", "--explain", str(DATA / "orders-csv.yaml"), str(DATA / "orders.csv")
    )
    assert code == 0
    assert (
        "/payment/amount = \"1234.50\"  <-  'Total' at orders.csv:2:8 field Total "
        '(source text "1 234,50")'
    ) in err


def test_expect_passes_on_an_identical_golden_file(tmp_path: Path) -> None:
    _, out, _ = invoke("mapping", "test", str(DATA / "orders-csv.yaml"), str(DATA / "orders.csv"))
    golden = tmp_path / "expected.json"
    golden.write_text(out)
    code, _, err = invoke(
        "mapping",
        "test",
        str(DATA / "orders-csv.yaml"),
        str(DATA / "orders.csv"),
        "--expect",
        str(golden),
    )
    assert code == 0
    assert "output matches" in err


def test_expect_prints_a_diff_and_fails_on_a_difference(tmp_path: Path) -> None:
    _, out, _ = invoke("mapping", "test", str(DATA / "orders-csv.yaml"), str(DATA / "orders.csv"))
    golden = tmp_path / "expected.json"
    golden.write_text(out.replace('"9.90"', '"9.91"', 1))
    code, _, err = invoke(
        "mapping",
        "test",
        str(DATA / "orders-csv.yaml"),
        str(DATA / "orders.csv"),
        "--expect",
        str(golden),
    )
    assert code == 1
    changed = [line[0] + line[1:].strip() for line in err.splitlines() if line[:1] in "+-"]
    assert '-"unit_price": "9.91"' in changed
    assert '+"unit_price": "9.90"' in changed
    assert f"Error: output differs from {golden}" in err


def test_a_folder_of_samples_is_mapped_file_by_file(tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv"):
        shutil.copy(DATA / "orders.csv", tmp_path / name)
    (tmp_path / ".hidden.csv").write_text("ignored")
    code, out, _ = invoke("mapping", "test", str(DATA / "orders-csv.yaml"), str(tmp_path))
    assert code == 0
    assert [d["file"] for d in json.loads(out)] == ["a.csv", "a.csv", "b.csv", "b.csv"]


def test_documents_with_problems_are_printed_and_fail_the_command(tmp_path: Path) -> None:
    sample = tmp_path / "orders.csv"
    text = (DATA / "orders.csv").read_bytes().decode("cp1252").replace("SKU-3", "SKU-X")
    sample.write_text(text)
    code, out, err = invoke("mapping", "test", str(DATA / "orders-csv.yaml"), str(sample))
    assert code == 1
    bad = [d for d in json.loads(out) if "problems" in d]
    assert bad[0]["problems"] == [
        {
            "location": "orders.csv:4:4 field SKU",
            "pointer": "/lines/0/article_code",
            "message": "'SKU-X' not found in lookup table articles.csv (key column 'partner_sku')",
        }
    ]
    assert "some documents have problems" in err


def test_a_malformed_file_becomes_an_error_entry(tmp_path: Path) -> None:
    sample = tmp_path / "orders.csv"
    sample.write_text("Nope;Other\n1;2\n")
    code, out, _ = invoke("mapping", "test", str(DATA / "orders-csv.yaml"), str(sample))
    assert code == 1
    assert json.loads(out) == [
        {
            "file": "orders.csv",
            "error": "orders.csv:1: column 'Status' not found in the header at line 1 "
            "(columns: 'Nope', 'Other')",
        }
    ]


def whole_run_json(sample: Path, *, explain: bool = False) -> str:
    """What ``mapping test`` printed when it held every document before printing them."""
    mapping = load_mapping(DATA / "orders-csv.yaml")
    return run_samples(mapping, sample, explain=explain).to_json()


def test_test_prints_each_document_as_it_is_mapped_exactly_as_the_whole_list(
    tmp_path: Path,
) -> None:
    for name in ("a.csv", "b.csv"):
        shutil.copy(DATA / "orders.csv", tmp_path / name)
    (tmp_path / "c.csv").write_text("Nope;Other\n1;2\n")
    for args, explain in (([], False), (["--explain"], True)):
        _, out, _ = invoke("mapping", "test", *args, str(DATA / "orders-csv.yaml"), str(tmp_path))
        assert out == whole_run_json(tmp_path, explain=explain)


def test_test_of_an_empty_folder_prints_an_empty_list(tmp_path: Path) -> None:
    code, out, err = invoke("mapping", "test", str(DATA / "orders-csv.yaml"), str(tmp_path))
    assert (code, out) == (0, "[]\n")
    assert "mapping test: 0 document(s) from 0 file(s)" in err


def test_test_ends_with_a_summary_on_stderr(tmp_path: Path) -> None:
    shutil.copy(DATA / "orders.csv", tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("Nope;Other\n1;2\n")
    code, _, err = invoke("mapping", "test", str(DATA / "orders-csv.yaml"), str(tmp_path))
    assert code == 1
    assert (
        "mapping test: 2 document(s) from 2 file(s): 2 without problems, 0 with problems; "
        "1 file(s) could not be read"
    ) in err


def test_the_json_array_writer_writes_what_json_dumps_writes() -> None:
    cases: list[list[Any]] = [
        [],
        [{"a": 1}],
        [{"key": "é\nà", "payload": {"lines": [{"q": 1}, {"q": [2, {}]}], "none": None}}, [], 3],
    ]
    for items in cases:
        written: list[str] = []
        writer = JsonArrayWriter(written.append)
        for item in items:
            writer.add(item)
        writer.close()
        assert "".join(written) == json.dumps(items, indent=2, ensure_ascii=False) + "\n"
