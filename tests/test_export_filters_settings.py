"""Export filters with several values and exclusions, and the settings templates need.

Filters are checked against the contract when the configuration loads; several values and
exclusions are applied by edigw to each record (Ecolix's list parameters take one value). A
template reading ``settings.NAME`` the configuration lacks stops ``template test``, ``config
check`` and the export, naming the setting: no placeholder reaches a partner's file.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from edigw.cli import main
from edigw.errors import ConfigError
from edigw.outbound.query import plan_query
from edigw.outbound.settings import needed_settings

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "templates"
GOLDEN = Path(__file__).parent / "golden" / "outbound"


# --------------------------------------------------------------------------- the plan (pure)


def test_one_value_is_left_to_ecolix() -> None:
    for written in ("open", ["open"]):
        plan = plan_query("purchase_orders.list", {"status": written})
        assert (plan.params, plan.filters) == ({"status": "open"}, ())


def test_several_values_keep_any_of_them() -> None:
    plan = plan_query("orders.list", {"status": ["confirmed", "prepared"]})
    kept = list(plan.keep([{"status": s} for s in ("received", "confirmed", "prepared")]))
    assert plan.params == {}
    assert kept == [{"status": "confirmed"}, {"status": "prepared"}]
    assert plan.left_out == 1


def test_an_exclusion_keeps_none_of_them_on_the_field_the_parameter_filters() -> None:
    plan = plan_query("orders.list", {"customer": {"not": ["CUS-0001", "CUS-0002"]}})
    records = [{"customer_code": c} for c in ("CUS-0001", "CUS-0003", "CUS-0002")]
    assert list(plan.keep(records)) == [{"customer_code": "CUS-0003"}]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        pytest.param(
            {"statut": "open"},
            "statut: purchase_orders.list takes no filter 'statut'; did you mean 'status'? "
            "(filters: 'status', 'supplier')",
            id="unknown-filter",
        ),
        pytest.param(
            {"status": {"not": ["cancelled", "closed"]}},
            "status: 'closed' is not a value of purchase_orders.list's 'status' "
            "(one of: open, confirmed, rejected, received, cancelled)",
            id="unknown-status",
        ),
        pytest.param(
            {"status": {"except": ["cancelled"]}},
            "status: an exclusion is written {not: [a, b]}, not with 'except'",
            id="not-an-exclusion",
        ),
        pytest.param({"status": []}, "status: give at least one value", id="empty-list"),
    ],
)
def test_a_filter_the_list_cannot_take_is_refused_naming_it(
    filters: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        plan_query("purchase_orders.list", filters)
    assert refused.value.problems == [message]


# --------------------------------------------------------------------------- exports


@pytest.fixture
def workspace(sandbox_factory, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    sandbox = sandbox_factory()
    monkeypatch.setenv("ECOLIX_TOKEN", sandbox.token)
    config = tmp_path / "edigw.yaml"
    config.write_text(
        f"""
ecolix:
  base_url: {sandbox.base_url}
  token: ${{ECOLIX_TOKEN}}
data_dir: ./data
settings:
  company_name: Outillage Durand SAS
partners:
  supplier:
    flows:
      purchase-orders-csv:
        direction: outbound
        query: {{resource: purchase_orders.list, filters: {{status: {{not: [cancelled, received, rejected]}}}}}}
        template: {TEMPLATES / "supplier-purchase-orders.csv.j2"}
        filename: "{{flow}}_{{seq:03d}}.csv"
        channel: {{type: local, path: outbox}}
      purchase-orders:
        direction: outbound
        query: {{resource: purchase_orders.list, filters: {{status: [confirmed]}}}}
        template: {TEMPLATES / "supplier-purchase-orders.xml.j2"}
        filename: "{{flow}}_{{seq:03d}}.xml"
        channel: {{type: local, path: outbox}}
  carrier:
    flows:
      orders:
        direction: outbound
        query: {{resource: orders.list, filters: {{status: {{not: [cancelled, delivered, invoiced]}}}}}}
        template: {TEMPLATES / "carrier-orders.csv.j2"}
        filename: "{{flow}}_{{seq:03d}}.csv"
        channel: {{type: local, path: outbox}}
""",
        encoding="utf-8",
    )
    return tmp_path, config


def export(config: Path, flow: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["export", flow, "-c", str(config)])


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")), delimiter=";"))


def test_purchase_orders_leave_cancelled_and_received_ones_out(workspace) -> None:  # type: ignore[no-untyped-def]
    folder, config = workspace
    result = export(config, "supplier/purchase-orders-csv")
    assert result.exit_code == 0, result.output
    statuses = {
        row["po_number"]: row["status"]
        for row in rows(folder / "outbox" / "purchase-orders-csv_001.csv")
    }
    assert set(statuses.values()) == {"open", "confirmed"}
    assert len(statuses) == 15  # the seed's 19, less 2 received and 2 cancelled
    assert "4 left out by the flow's filters" in result.stdout


def test_carrier_orders_leave_cancelled_and_closed_ones_out(workspace) -> None:  # type: ignore[no-untyped-def]
    folder, config = workspace
    result = export(config, "carrier/orders")
    assert result.exit_code == 0, result.output
    statuses = {row["status"] for row in rows(folder / "outbox" / "orders_001.csv")}
    assert statuses == {"received", "confirmed", "prepared", "shipped"}


def test_the_buyer_on_a_purchase_order_is_the_configured_company(workspace) -> None:  # type: ignore[no-untyped-def]
    folder, config = workspace
    result = export(config, "supplier/purchase-orders")
    assert result.exit_code == 0, result.output
    text = (folder / "outbox" / "purchase-orders_001.xml").read_text(encoding="utf-8")
    assert text.count("<cbc:Name>Outillage Durand SAS</cbc:Name>") == 3  # the 3 confirmed POs
    assert "Ecolix customer" not in text


def test_an_export_without_a_setting_its_template_needs_delivers_nothing(workspace) -> None:  # type: ignore[no-untyped-def]
    folder, config = workspace
    config.write_text(
        config.read_text(encoding="utf-8")
        .replace("  company_name: Outillage Durand SAS\n", "  {}\n")
        .replace("settings:\n  {}\n", ""),
        encoding="utf-8",
    )
    result = export(config, "supplier/purchase-orders")
    assert result.exit_code == 1
    assert "supplier-purchase-orders.xml.j2:27: the template needs setting 'company_name'" in (
        result.output
    )
    assert not (folder / "outbox").exists() or not list((folder / "outbox").iterdir())


# --------------------------------------------------------------------------- settings


def test_the_purchase_order_template_needs_the_company_name() -> None:
    needed = needed_settings(TEMPLATES / "supplier-purchase-orders.xml.j2")
    assert [(n.name, n.line) for n in needed] == [("company_name", 27)]


def test_a_setting_with_a_default_is_not_needed(tmp_path: Path) -> None:
    template = tmp_path / "t.csv.j2"
    template.write_text("{{ settings.sender | default('x') }};{{ settings['account'] }}\n")
    assert [n.name for n in needed_settings(template)] == ["account"]


def test_template_test_names_the_setting_it_lacks_and_takes_it_with_set(tmp_path: Path) -> None:
    data = tmp_path / "pos.json"
    sample = (GOLDEN / "supplier-purchase-orders.xml.json").read_text(encoding="utf-8")
    data.write_text(sample.replace('"company_name": "Outillage Durand SAS"', '"other": "x"'))
    template = str(TEMPLATES / "supplier-purchase-orders.xml.j2")
    runner = CliRunner()
    refused = runner.invoke(main, ["template", "test", template, "--data", str(data)])
    given = runner.invoke(
        main, ["template", "test", template, "--data", str(data), "--set", "company_name=Martin"]
    )
    assert refused.exit_code == 1
    assert (
        "supplier-purchase-orders.xml.j2:27: the template needs setting 'company_name'"
        in refused.stderr
    )
    assert given.exit_code == 0, given.stderr
    assert "<cbc:Name>Martin</cbc:Name>" in given.stdout


@pytest.fixture
def starter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    CliRunner().invoke(main, ["init", str(tmp_path)])
    monkeypatch.setenv("ECOLIX_TOKEN", "T")
    monkeypatch.delenv("EDIGW_COMPANY_NAME", raising=False)
    monkeypatch.setenv("EDIGW_COMPANY_SIREN", "552081317")
    return tmp_path / "edigw.yaml"


def test_config_check_of_the_starter_asks_for_the_company_name(starter: Path) -> None:
    result = CliRunner().invoke(main, ["config", "check", "-c", str(starter)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: {starter} supplier/einvoice-statuses: supplier-invoice-status.cdar.xml.j2:53: "
        "the template needs setting 'company_name', which the configuration does not give: add "
        "it under `settings:` in edigw.yaml (or the flow's own `settings:`)",
        f"{starter} supplier/purchase-orders: supplier-purchase-orders.xml.j2:27: the "
        "template needs setting 'company_name', which the configuration does not give: add it "
        "under `settings:` in edigw.yaml (or the flow's own `settings:`)",
    ]


def test_config_check_of_the_starter_asks_for_the_siren_the_statuses_are_signed_with(
    starter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDIGW_COMPANY_NAME", "Outillage Durand SAS")
    monkeypatch.delenv("EDIGW_COMPANY_SIREN")
    result = CliRunner().invoke(main, ["config", "check", "-c", str(starter)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: {starter} supplier/einvoice-statuses: supplier-invoice-status.cdar.xml.j2:52: "
        "the template needs setting 'company_siren', which the configuration does not give: add "
        "it under `settings:` in edigw.yaml (or the flow's own `settings:`)"
    ]


def test_the_starter_has_every_export_of_the_five_packages(
    starter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edigw.config import load_config

    config = load_config(starter, environ={"ECOLIX_TOKEN": "T", "EDIGW_COMPANY_NAME": "D"})
    exports = {(f.partner, f.query.resource) for f in config.outbound_flows()}
    assert exports >= {
        ("webshop", "articles.list"),
        ("webshop", "stock.list"),
        ("webshop-plus", "quotes.list"),
        ("webshop-plus", "orders.list"),  # customer order history
        ("webshop-plus", "order_states.list"),
        ("crm", "customers.list"),
        ("crm", "quotes.list"),
        ("crm", "orders.list"),
        ("carrier", "customers.list"),
        ("carrier", "orders.list"),
        ("carrier", "articles.list"),
        ("carrier", "stock.list"),
        ("supplier", "purchase_orders.list"),
    }
    for flow in config.outbound_flows():
        if flow.id.startswith(("carrier/orders", "supplier/purchase-orders")):
            excluded = flow.query.filters["status"]["not"]
            assert "cancelled" in excluded, flow.id
