"""``edigw sftp trust`` and ``edigw sftp check`` against the private sshd."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from edigw.cli import main
from tests.fixtures.sshd import SshServer, write_ed25519_key

pytestmark = pytest.mark.sftp


def write_config(tmp_path: Path, sshd: SshServer, *, key_file: Path | None = None) -> Path:
    (tmp_path / "mapping.yaml").touch()
    (tmp_path / "articles.csv.j2").touch()
    remote = tmp_path / "remote"
    (remote / "in").mkdir(parents=True, exist_ok=True)
    (remote / "out").mkdir(parents=True, exist_ok=True)
    config = tmp_path / "edigw.yaml"
    config.write_text(
        f"""
ecolix:
  base_url: http://127.0.0.1:8800/api/v1
  token: T
sftp_endpoints:
  acme:
    host: {sshd.host}
    port: {sshd.port}
    username: {sshd.user}
    key_file: {key_file or sshd.client_key}
    known_hosts: known_hosts/acme
partners:
  acme:
    flows:
      invoices:
        direction: inbound
        channel: {{type: sftp, endpoint: acme, path: {remote}/in}}
        mapping: mapping.yaml
      articles:
        direction: outbound
        query: {{resource: articles.list}}
        template: articles.csv.j2
        channel: {{type: sftp, endpoint: acme, path: {remote}/out}}
"""
    )
    return config


def server_fingerprint(sshd: SshServer) -> str:
    import paramiko

    from edigw.channels.known_hosts import fingerprint

    return fingerprint(paramiko.PKey.from_path(sshd.host_key))


def test_trust_with_the_right_fingerprint_pins_the_key(sshd: SshServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, sshd)
    shown = server_fingerprint(sshd)
    result = CliRunner().invoke(
        main, ["sftp", "trust", "acme", "--fingerprint", shown, "-c", str(config)]
    )
    assert result.exit_code == 0, result.output
    assert f"presents ssh-ed25519 {shown}" in result.output
    assert "Pinned" in result.output
    assert (tmp_path / "known_hosts/acme").read_text().startswith(f"[{sshd.host}]:{sshd.port} ")
    again = CliRunner().invoke(main, ["sftp", "trust", "acme", "-c", str(config)])
    assert again.exit_code == 0
    assert "Already trusted" in again.output


def test_trust_with_another_fingerprint_pins_nothing(sshd: SshServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, sshd)
    result = CliRunner().invoke(
        main, ["sftp", "trust", "acme", "--fingerprint", "SHA256:AAAA", "-c", str(config)]
    )
    assert result.exit_code == 1
    assert "not SHA256:AAAA; nothing pinned" in result.output
    assert not (tmp_path / "known_hosts/acme").exists()


def test_trust_asks_for_confirmation_and_refusal_pins_nothing(
    sshd: SshServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path, sshd)
    refused = CliRunner().invoke(main, ["sftp", "trust", "acme", "-c", str(config)], input="n\n")
    assert refused.exit_code == 1
    assert "Pin this key for endpoint acme?" in refused.output
    assert not (tmp_path / "known_hosts/acme").exists()
    accepted = CliRunner().invoke(main, ["sftp", "trust", "acme", "-c", str(config)], input="y\n")
    assert accepted.exit_code == 0
    assert (tmp_path / "known_hosts/acme").exists()


def test_check_reports_each_step(sshd: SshServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, sshd)
    (tmp_path / "known_hosts").mkdir()
    (tmp_path / "known_hosts/acme").write_text(sshd.known_hosts_line)
    result = CliRunner().invoke(main, ["sftp", "check", "acme", "-c", str(config)])
    assert result.exit_code == 0, result.output
    remote = tmp_path / "remote"
    assert result.output.splitlines() == [
        f"ok   connect: {sshd.host}:{sshd.port} answered",
        f"ok   host key: ssh-ed25519 {server_fingerprint(sshd)} pinned",
        f"ok   authenticate: as {sshd.user}",
        f"ok   list {remote}/in: 0 entries",
        f"ok   list {remote}/out: 0 entries",
        f"ok   write {remote}/out: created and removed a test file",
    ]


def test_check_with_an_unknown_host_key_stops_and_shows_the_fingerprint(
    sshd: SshServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path, sshd)
    result = CliRunner().invoke(main, ["sftp", "check", "acme", "-c", str(config)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("ok   connect")
    assert lines[1].startswith("FAIL host key: unknown host key")
    assert server_fingerprint(sshd) in lines[1]
    assert lines[-1] == "Error: 1 of 2 checks failed for endpoint acme"


def test_check_with_a_key_the_server_does_not_know_fails_at_authentication(
    sshd: SshServer, tmp_path: Path
) -> None:
    write_ed25519_key(tmp_path / "stranger")
    config = write_config(tmp_path, sshd, key_file=tmp_path / "stranger")
    (tmp_path / "known_hosts").mkdir()
    (tmp_path / "known_hosts/acme").write_text(sshd.known_hosts_line)
    result = CliRunner().invoke(main, ["sftp", "check", "acme", "-c", str(config)])
    assert result.exit_code == 1
    assert "FAIL authenticate: authentication failed for" in result.output


def test_unknown_endpoint_names_the_known_ones(sshd: SshServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, sshd)
    result = CliRunner().invoke(main, ["sftp", "check", "nope", "-c", str(config)])
    assert result.exit_code == 1
    assert "Error: unknown SFTP endpoint 'nope' (sftp_endpoints: acme)" in result.output
