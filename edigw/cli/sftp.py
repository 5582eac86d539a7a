"""``edigw sftp``: partner SFTP endpoints, their host keys pinned and their connections
checked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from edigw.cli.shared import _load, _one_line, config_option
from edigw.errors import EdigwError

if TYPE_CHECKING:
    from edigw.channels.sftp.settings import SftpEndpointSettings
    from edigw.config import GatewayConfig


@click.group("sftp")
def sftp_group() -> None:
    """Partner SFTP servers: pin their host keys and check connections.

    Example: edigw sftp check acme -c edigw.yaml
    """


def _sftp_endpoint(config_path: Path, name: str) -> tuple[GatewayConfig, SftpEndpointSettings]:
    from edigw.channels.sftp.settings import endpoint_settings

    config = _load(config_path)
    endpoint = config.sftp_endpoints.get(name)
    if endpoint is None:
        known = ", ".join(sorted(config.sftp_endpoints)) or "none configured"
        msg = f"unknown SFTP endpoint {name!r} (sftp_endpoints: {known})"
        raise click.ClickException(msg)
    return config, endpoint_settings(name, endpoint)


@sftp_group.command("trust")
@click.argument("endpoint")
@click.option(
    "--fingerprint",
    "expected",
    metavar="SHA256:...",
    help="Pin without asking, only if the server presents exactly this fingerprint.",
)
@config_option
def sftp_trust_command(endpoint: str, expected: str | None, config_path: Path) -> None:
    """Show an SFTP server's host key fingerprint and pin it in the endpoint's known_hosts.

    Example: edigw sftp trust acme --fingerprint SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8

    Compare the fingerprint with the one the partner gives you (by phone, not by e-mail
    from an unknown sender) before confirming.
    """
    from edigw.channels.sftp.host_key import presented_key, trust

    _, settings = _sftp_endpoint(config_path, endpoint)
    try:
        presented = presented_key(settings)
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    click.echo(f"{settings.host}:{settings.port} presents {presented.description}")
    if presented.status == "pinned":
        click.echo(f"Already trusted in {settings.known_hosts}.")
        return
    if presented.status == "changed":
        click.echo(f"WARNING: {presented.detail}", err=True)
    if expected is not None:
        if expected.strip() != presented.fingerprint:
            msg = f"the server presents {presented.fingerprint}, not {expected}; nothing pinned"
            raise click.ClickException(msg)
    elif not click.confirm(f"Pin this key for endpoint {endpoint}?", default=False):
        msg = "not pinned"
        raise click.ClickException(msg)
    path = trust(settings, presented)
    click.echo(f"Pinned {presented.description} for {endpoint} in {path}.")


@sftp_group.command("check")
@click.argument("endpoint")
@config_option
def sftp_check_command(endpoint: str, config_path: Path) -> None:
    """Connect to an SFTP endpoint and report each step: connect, host key, login, folders, write.

    Example: edigw sftp check acme -c edigw.yaml

    The folders listed are those of the flows using the endpoint; write permission is
    tested in outbound folders with a hidden temporary file that is removed at once.
    """
    from edigw.channels.sftp.check import check_endpoint

    config, settings = _sftp_endpoint(config_path, endpoint)
    folders: list[str] = []
    write_folders: list[str] = []
    for flow in config.flows():
        channel = flow.channel
        if channel.type == "sftp" and channel.endpoint == endpoint:
            folders.append(channel.path)
            if flow.direction == "outbound":
                write_folders.append(channel.path)
    steps = check_endpoint(
        settings,
        folders=list(dict.fromkeys(folders)),
        write_folders=list(dict.fromkeys(write_folders)),
    )
    for step in steps:
        mark = "ok  " if step.ok else "FAIL"
        click.echo(f"{mark} {step.step}: {step.detail}")
    failed = [step for step in steps if not step.ok]
    if failed:
        msg = f"{len(failed)} of {len(steps)} checks failed for endpoint {endpoint}"
        raise click.ClickException(msg)
