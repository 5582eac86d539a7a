"""Setting a gateway up: ``edigw init`` writes a starter edigw.yaml, ``edigw config`` checks
it and prints its JSON Schema."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from edigw.cli.shared import _load, config_option

if TYPE_CHECKING:
    from edigw.pipeline.folders import Folder


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing edigw.yaml in DIRECTORY.")
def init_command(directory: Path, *, force: bool) -> None:
    """Write a commented starter edigw.yaml, with one partner per Ecolix package.

    Example: edigw init ./gateway && cd gateway && ECOLIX_TOKEN=T edigw run

    The shipped mappings and templates are copied beside it, so the starter is ready
    to run against the sandbox and to adapt.
    """
    from edigw.config import DEFAULT_CONFIG_NAME, write_starter
    from edigw.errors import EdigwError
    from edigw.mapping.editors import write_schemas

    try:
        written = write_starter(directory, force=force)
        schemas = write_schemas(directory)
    except EdigwError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        msg = f"cannot write the editor schemas in {directory}: {exc}"
        raise click.ClickException(msg) from exc
    click.echo(
        f"Wrote {directory / DEFAULT_CONFIG_NAME} ({len(written) - 1} mapping and template files copied)."
    )
    click.echo(
        "Editors: "
        + " and ".join(str(p.relative_to(directory)) for p in schemas)
        + " give completion and checks as you type (docs/mappings.md, editors)."
    )
    click.echo(
        "Next: set ECOLIX_TOKEN, adapt the partners, then run `edigw run -c "
        f"{directory / DEFAULT_CONFIG_NAME}`."
    )


@click.group("config")
def config_group() -> None:
    """Check edigw.yaml before running, or print its JSON Schema for editors.

    Example: ECOLIX_TOKEN=T edigw config check -c edigw.yaml
    """


@config_group.command("check")
@config_option
def config_check_command(config_path: Path) -> None:
    """Load the configuration and every mapping it names; report every problem at once.

    Example: ECOLIX_TOKEN=T edigw config check -c edigw.yaml
    """
    from edigw.mapping.sample import check_mappings
    from edigw.outbound.settings import missing_settings
    from edigw.pipeline.folders import check_folders

    config = _load(config_path)
    mappings = sorted({Path(flow.mapping) for flow in config.inbound_flows()})
    problems = [p for result in check_mappings(mappings) for p in result.problems]
    problems += [
        f"{config_path} {flow.id}: {problem}"
        for flow in config.outbound_flows()
        for problem in missing_settings(Path(flow.template), flow.template_settings)
    ]
    folders = check_folders(config)
    problems += [check.problem for check in folders if check.problem]
    if problems:
        raise click.ClickException("\n".join(problems))
    click.echo(
        f"ok {config_path}: {len(config.partners)} partners, "
        f"{len(config.inbound_flows())} inbound flows ({len(mappings)} mappings), "
        f"{len(config.outbound_flows())} exports"
    )
    _echo_missing_folders([check.folder for check in folders if check.missing], config_path)


def _echo_missing_folders(missing: list[Folder], config_path: Path) -> None:
    """One line per missing folder; an inbox's missing done/error folders ride on its line."""
    if not missing:
        return
    base = config_path.resolve().parent

    def shown(path: Path) -> str:
        return str(path.relative_to(base) if path.is_relative_to(base) else path)

    listed = {folder.path for folder in missing}
    riders: dict[Path, list[str]] = {}
    for folder in missing:
        if folder.moved_from in listed:
            riders.setdefault(folder.moved_from, []).append(f"{folder.path.name}/")
    click.echo(f"note: {len(missing)} folders do not exist yet; `edigw run` creates them:")
    for folder in missing:
        if folder.moved_from in listed:
            continue
        extra = riders.get(folder.path)
        with_ = f", with {' and '.join(extra)} in it" if extra else ""
        click.echo(f"  {shown(folder.path)}{with_}  ({folder.purpose})")


@config_group.command("schema")
def config_schema_command() -> None:
    """Print the JSON Schema of edigw.yaml, for editors' completion and checks.

    Example: edigw config schema > edigw.schema.json
    """
    import json

    from edigw.config import GatewayConfig

    click.echo(json.dumps(GatewayConfig.model_json_schema(), indent=2, ensure_ascii=False))
