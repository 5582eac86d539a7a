"""``edigw template test`` (golden files) and ``edigw export`` against the real sandbox.

Golden files: ``tests/golden/outbound/NAME.json`` is the sample, ``NAME`` the expected
output. After a deliberate template change, rewrite them with
``EDIGW_UPDATE_GOLDEN=1 pytest tests/test_cli_export.py`` and review the diff.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from edigw.cli import main

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "templates"
GOLDEN = Path(__file__).parent / "golden" / "outbound"
NOW = "2026-11-28T12:00:00Z"
CDAR_XSD = TEMPLATES / "schemas" / "cdar" / "CrossDomainAcknowledgementAndResponse_100pD22B.xsd"
SAMPLES = sorted(p.name[: -len(".json")] for p in GOLDEN.glob("*.json"))


def template_test(*args: str) -> tuple[int, bytes, str]:
    runner = CliRunner()
    result = runner.invoke(main, ["template", "test", *args])
    return result.exit_code, result.stdout_bytes, result.stderr


@pytest.mark.parametrize("name", SAMPLES)
def test_template_test_renders_the_golden_output(name):
    args = [str(TEMPLATES / f"{name}.j2"), "--data", str(GOLDEN / f"{name}.json"), "--now", NOW]
    if name == "carrier-orders.xml":
        args += ["--xsd", str(TEMPLATES / "carrier-orders.xsd")]
    if name == "supplier-invoice-status.cdar.xml":
        args += ["--xsd", str(CDAR_XSD)]
    code, out, err = template_test(*args)
    assert code == 0, err
    golden = GOLDEN / name
    if os.environ.get("EDIGW_UPDATE_GOLDEN"):
        golden.write_bytes(out)
    assert out == golden.read_bytes()


def test_golden_articles_csv_guards_the_formula_and_keeps_quotes_and_separators():
    rows = list(
        csv.reader(io.StringIO((GOLDEN / "webshop-articles.csv").read_text()), delimiter=";")
    )
    assert rows[2][2] == '\'=HYPERLINK("http://evil.example";"x")'
    assert rows[3][2] == 'Vis "inox"; 6 mm'


def test_golden_stock_csv_keeps_a_negative_availability_as_a_number():
    rows = list(
        csv.DictReader(io.StringIO((GOLDEN / "webshop-stock.csv").read_text()), delimiter=";")
    )
    assert rows[0]["available"] == "-3,000"


def test_template_test_names_the_record_a_cp1252_file_cannot_hold():
    code, _, err = template_test(
        str(TEMPLATES / "crm-customers.csv.j2"),
        "--data",
        str(GOLDEN / "crm-customers.csv.json"),
        "--encoding",
        "cp1252",
    )
    assert code == 1
    assert "record 2 (code=CUS-0002): character 'ő' (U+0151) cannot be encoded in cp1252" in err


def test_template_test_reports_a_template_syntax_error_with_its_line(tmp_path):
    bad = tmp_path / "bad.csv.j2"
    bad.write_text("a;b\n{% for r in records %}\n{{ r.a }\n{% endfor %}\n")
    data = tmp_path / "d.json"
    data.write_text("[]")
    code, _, err = template_test(str(bad), "--data", str(data))
    assert code == 1
    assert f"Error: {bad}:3: template syntax error" in err


def test_template_test_refuses_sample_data_that_is_not_records(tmp_path):
    data = tmp_path / "d.json"
    data.write_text('{"items": []}')
    code, _, err = template_test(str(TEMPLATES / "webshop-stock.csv.j2"), "--data", str(data))
    assert code == 1
    assert 'sample data must be a list of records or {"records": [...]' in err


# --------------------------------------------------------------------------- edigw export


@pytest.fixture
def workspace(sandbox_factory, tmp_path, monkeypatch):
    sandbox = sandbox_factory()
    monkeypatch.setenv("ECOLIX_TOKEN", sandbox.token)
    config = tmp_path / "edigw.yaml"
    config.write_text(
        f"""
ecolix:
  base_url: {sandbox.base_url}
  token: ${{ECOLIX_TOKEN}}
data_dir: ./data
partners:
  webshop:
    flows:
      stock:
        direction: outbound
        query: {{resource: stock.list}}
        template: {TEMPLATES / "webshop-stock.csv.j2"}
        filename: "{{partner}}_{{flow}}_{{seq:03d}}.csv"
        channel: {{type: local, path: outbox}}
      orders:
        direction: inbound
        channel: {{type: local, path: inbox}}
        mapping: {ROOT / "mappings" / "ecommerce-orders-csv.yaml"}
""",
        encoding="utf-8",
    )
    return tmp_path, config


def export(config: Path, *args: str):
    return CliRunner().invoke(main, ["export", *args, "-c", str(config)])


def test_export_delivers_the_file_and_says_where(workspace):
    folder, config = workspace
    result = export(config, "webshop/stock")
    assert result.exit_code == 0, result.output
    target = folder / "outbox" / "webshop_stock_001.csv"
    assert result.stdout.startswith("R-1 delivered: webshop_stock_001.csv → ")
    assert "(delta, 600 records, 1 Ecolix calls)" in result.stdout
    assert len(target.read_text().splitlines()) == 601


def test_second_export_without_changes_writes_nothing(workspace):
    folder, config = workspace
    export(config, "webshop/stock")
    again = export(config, "webshop/stock")
    assert again.exit_code == 0
    assert "R-2 nothing changed since" in again.stdout
    assert [p.name for p in (folder / "outbox").iterdir()] == ["webshop_stock_001.csv"]


def test_dry_run_prints_the_file_and_changes_nothing(workspace):
    folder, config = workspace
    result = export(config, "webshop/stock", "--dry-run", "--full")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == (
        "article;warehouse;on_hand;reserved;available;next_receipt_date"
    )
    assert len(result.stdout.splitlines()) == 601
    assert "dry run: 600 records, 1 calls, would be webshop_stock_000.csv" in result.stderr
    assert not (folder / "outbox").exists()


def test_export_to_a_folder_leaves_the_partner_channel_alone(workspace):
    folder, config = workspace
    result = export(config, "webshop/stock", "--to", str(folder / "manual"))
    assert result.exit_code == 0, result.output
    assert (folder / "manual" / "webshop_stock_001.csv").is_file()
    assert not (folder / "outbox").exists()


def test_export_of_an_inbound_flow_is_refused(workspace):
    _, config = workspace
    result = export(config, "webshop/orders")
    assert result.exit_code == 1
    assert (
        "Error: webshop/orders is an inbound flow; edigw export runs outbound flows"
        in result.stderr
    )


def test_export_of_an_unknown_flow_names_the_known_ones(workspace):
    _, config = workspace
    result = export(config, "webshop/nope")
    assert result.exit_code == 1
    assert "unknown flow 'webshop/nope' (flows: webshop/stock, webshop/orders)" in result.stderr


def test_export_json_tells_the_run_in_one_object(workspace):
    folder, config = workspace
    result = export(config, "webshop/stock", "--json")
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    target = folder / "outbox" / "webshop_stock_001.csv"
    assert {k: run[k] for k in ("id", "flow", "dry_run", "state", "mode", "records", "calls")} == {
        "id": "R-1",
        "flow": "webshop/stock",
        "dry_run": False,
        "state": "delivered",
        "mode": "delta",
        "records": 600,
        "calls": 1,
    }
    assert (run["file_name"], run["path"]) == ("webshop_stock_001.csv", str(target.resolve()))
    assert sorted(run) == [
        "calls",
        "dry_run",
        "file_name",
        "files",
        "flow",
        "id",
        "left_out",
        "mode",
        "path",
        "records",
        "state",
        "window_from",
        "window_to",
    ]


def test_export_json_of_a_dry_run_prints_no_file(workspace):
    _, config = workspace
    result = export(config, "webshop/stock", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert (run["id"], run["dry_run"], run["records"], run["path"]) == (None, True, 600, None)


# --------------------------------------------------------------------------- the sandbox

ATTACKS = [
    pytest.param(
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "access to attribute '__init__' of a 'function' object is not allowed",
        id="os-popen",
    ),
    pytest.param(
        "{{ lipsum.__globals__['os'].environ['ECOLIX_TOKEN'] }}",
        "access to attribute '__globals__' of a 'StrictUndefined' object is not allowed",
        id="environ",
    ),
    pytest.param(
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "access to attribute '__class__' of a 'str' object is not allowed",
        id="subclasses",
    ),
    pytest.param(
        "{% include '/etc/passwd' %}",
        "template '/etc/passwd' refused: a template may include or import only the templates",
        id="include-file",
    ),
    pytest.param(
        "{{ 'x' * 10**9 }}",
        "a string of 1,000,000,000 characters is over the limit of 1,000,000 characters",
        id="huge-string",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ATTACKS)
def test_template_test_fails_with_a_one_line_sandbox_error(tmp_path, text, expected):
    template = tmp_path / "evil.csv.j2"
    template.write_text(text, encoding="utf-8")
    data = tmp_path / "d.json"
    data.write_text('[{"code": "A1"}]')
    code, out, err = template_test(str(template), "--data", str(data))
    assert code == 1
    assert out == b""
    [line] = err.splitlines()
    assert line.startswith(f"Error: {template}:1: the file header (before the first record): ")
    assert expected in line
    assert "Traceback" not in err


@pytest.fixture
def evil_workspace(sandbox_factory, tmp_path, monkeypatch):
    """A workspace whose stock flow's template tries to write the Ecolix token into the file."""
    sandbox = sandbox_factory()
    monkeypatch.setenv("ECOLIX_TOKEN", sandbox.token)
    template = tmp_path / "templates" / "stock.csv.j2"
    template.parent.mkdir()
    template.write_text(
        "article;token\n{% for s in records %}"
        "{{ s.article_code }};{{ lipsum.__globals__['os'].environ['ECOLIX_TOKEN'] }}\n"
        "{% endfor %}",
        encoding="utf-8",
    )
    config = tmp_path / "edigw.yaml"
    config.write_text(
        f"""
ecolix:
  base_url: {sandbox.base_url}
  token: ${{ECOLIX_TOKEN}}
data_dir: ./data
partners:
  webshop:
    flows:
      stock:
        direction: outbound
        query: {{resource: stock.list}}
        template: {template}
        filename: "{{partner}}_{{flow}}_{{seq:03d}}.csv"
        channel: {{type: local, path: outbox}}
""",
        encoding="utf-8",
    )
    return tmp_path, config, sandbox.token


def test_an_export_whose_template_reaches_for_the_token_fails_and_writes_nothing(evil_workspace):
    folder, config, token = evil_workspace
    result = export(config, "webshop/stock")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: ")
    assert "record 1 (" in line
    assert "access to attribute '__globals__' of a 'StrictUndefined' object is not allowed" in line
    assert token not in result.output
    assert not (folder / "outbox").exists()
    leftovers = [p for p in (folder / "data").rglob("*") if p.is_file() and "journal" not in p.name]
    assert [p for p in leftovers if token.encode() in p.read_bytes()] == []
    shown = CliRunner().invoke(main, ["show", "R-1", "-c", str(config)])
    words = " ".join(shown.stdout.split())  # show wraps the reason at the terminal's width
    assert "failed" in words
    assert "is not allowed (templates and expressions run in a sandbox)" in words
