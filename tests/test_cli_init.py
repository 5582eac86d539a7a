"""`edigw init DIR`: a commented starter configuration that loads as written."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from edigw.cli import main
from edigw.config import InboundFlow, OutboundFlow, load_config

ENV = {"ECOLIX_TOKEN": "starter-token"}


def run_init(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["init", *args])
    return result.exit_code, result.output


def test_init_writes_a_starter_that_loads_cleanly(tmp_path: Path) -> None:
    code, output = run_init(str(tmp_path / "gw"))

    assert code == 0, output
    assert f"Wrote {tmp_path / 'gw' / 'edigw.yaml'}" in output
    config = load_config(tmp_path / "gw" / "edigw.yaml", environ=ENV)
    assert config.ecolix.base_url == "http://127.0.0.1:8800/api/v1"
    assert config.ecolix.token.get_secret_value() == "starter-token"


def test_starter_has_one_partner_per_ecolix_package(tmp_path: Path) -> None:
    run_init(str(tmp_path))
    config = load_config(tmp_path / "edigw.yaml", environ=ENV)
    assert list(config.partners) == ["webshop", "webshop-plus", "crm", "carrier", "supplier"]


def test_starter_covers_every_shipped_inbound_mapping(tmp_path: Path) -> None:
    run_init(str(tmp_path))
    config = load_config(tmp_path / "edigw.yaml", environ=ENV)
    shipped = sorted(p.name for p in (Path(__file__).parent.parent / "mappings").glob("*.yaml"))
    used = sorted(flow.mapping.name for flow in config.inbound_flows())
    assert used == shipped


def test_starter_flows_use_local_folders_under_the_config_folder(tmp_path: Path) -> None:
    run_init(str(tmp_path))
    config = load_config(tmp_path / "edigw.yaml", environ=ENV)
    for flow in config.flows():
        assert isinstance(flow, InboundFlow | OutboundFlow)
        assert flow.channel.type == "local"
        assert flow.channel.path.is_relative_to(tmp_path)
    assert config.journal_url == f"sqlite:///{tmp_path}/edigw-data/journal.sqlite"


def test_starter_explains_itself_in_comments(tmp_path: Path) -> None:
    run_init(str(tmp_path))
    text = (tmp_path / "edigw.yaml").read_text(encoding="utf-8")
    assert "${ECOLIX_TOKEN}" in text
    assert "*.tmp, *.part and dotfiles are always skipped" in text
    assert sum(line.lstrip().startswith("#") for line in text.splitlines()) >= 10


def test_init_refuses_to_overwrite_an_existing_configuration(tmp_path: Path) -> None:
    (tmp_path / "edigw.yaml").write_text("# mine\n", encoding="utf-8")

    code, output = run_init(str(tmp_path))

    assert code == 1
    assert output == (
        f"Error: {tmp_path / 'edigw.yaml'} already exists (use --force to overwrite it)\n"
    )
    assert (tmp_path / "edigw.yaml").read_text(encoding="utf-8") == "# mine\n"


def test_init_force_overwrites_the_configuration_but_keeps_edited_mappings(
    tmp_path: Path,
) -> None:
    run_init(str(tmp_path))
    edited = tmp_path / "mappings" / "ecommerce-orders-csv.yaml"
    edited.write_text("# edited by the consultant\n", encoding="utf-8")
    (tmp_path / "edigw.yaml").write_text("# mine\n", encoding="utf-8")

    code, _ = run_init(str(tmp_path), "--force")

    assert code == 0
    assert "partners:" in (tmp_path / "edigw.yaml").read_text(encoding="utf-8")
    assert edited.read_text(encoding="utf-8") == "# edited by the consultant\n"
