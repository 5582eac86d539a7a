"""The shipped deployment files agree with the gateway they run (docs/deploy.md).

``deploy/edigw.service`` is checked by ``systemd-analyze verify`` where systemd is installed,
and always read here key by key: the command it starts is a real ``edigw`` command with real
options, its restart rule follows ``edigw run``'s exit statuses, it stops with a signal the
gateway handles and waits longer than the gateway's own stop grace, and it lets the gateway
write exactly the folders the starter configuration names. ``deploy/Containerfile`` is read
the same way: every ``edigw`` command it runs exists, it runs as a non-root user, keeps the
data folder on a volume and checks health on the port it serves.
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path, PurePosixPath

import click
import pytest

from edigw.cli import EXIT_GAVE_UP, EXIT_STOP_TIMEOUT, main
from edigw.config import (
    DEFAULT_STOP_TIMEOUT,
    GatewayConfig,
    LocalChannel,
    load_config,
    write_starter,
)

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "edigw.service"
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
#: What systemd waits beyond the gateway's stop grace: closing the journal, a last report.
STOP_MARGIN = 10.0


# --------------------------------------------------------------------------- helpers


def read_unit() -> configparser.ConfigParser:
    """The unit as sections of case-kept keys (systemd's syntax is ini with no interpolation)."""
    parser = configparser.ConfigParser(interpolation=None, strict=True, empty_lines_in_values=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def resolve_edigw(argv: list[str]) -> tuple[click.Command, click.Context, list[str]]:
    """The click command ``argv`` (after ``edigw``) names, its context and its arguments.

    Fails the test naming the command when edigw has no such command.
    """
    command: click.Command = main
    ctx = click.Context(main, info_name="edigw")
    args = list(argv)
    while isinstance(command, click.Group):
        name, sub, args = command.resolve_command(ctx, args)
        assert sub is not None, f"edigw has no command {name!r}"
        command = sub
        ctx = click.Context(command, info_name=name, parent=ctx)
    return command, ctx, args


def parse_edigw(argv: list[str]) -> tuple[click.Command, dict[str, object]]:
    """The click command ``argv`` (after ``edigw``) names, and its parsed parameters.

    Raises a click error when an option does not exist or a value is refused.
    """
    command, ctx, args = resolve_edigw(argv)
    parsed = command.make_context(command.name, args, parent=ctx.parent)
    return command, dict(parsed.params)


def seconds(value: str) -> float:
    """A systemd time span such as ``45s``, ``1min 30s`` or ``90`` in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


def handled_by_run(sig: signal.Signals) -> bool:
    """Whether ``edigw run`` installs a handler for ``sig`` (its default would kill it)."""
    from edigw.pipeline import service

    with service._stop_on_signals(lambda: None):
        return signal.getsignal(sig) not in (signal.SIG_DFL, signal.SIG_IGN, None)


def run_has_option(name: str) -> bool:
    command = main.commands["run"]
    return any(name in param.opts for param in command.params)


@pytest.fixture(scope="module")
def starter(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GatewayConfig]:
    """The starter configuration ``edigw init`` writes, loaded as ``edigw run`` loads it."""
    folder = tmp_path_factory.mktemp("gateway")
    write_starter(folder)
    return folder, load_config(folder / "edigw.yaml", environ={"ECOLIX_TOKEN": "T"})


# --------------------------------------------------------------------------- systemd unit


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_finds_nothing_to_say_about_the_unit(tmp_path: Path) -> None:
    # verify also checks that ExecStart is executable: point it at this environment's edigw.
    edigw = Path(sys.executable).with_name("edigw")
    if not edigw.exists():
        pytest.skip(f"no edigw script beside {sys.executable}")
    unit = tmp_path / "edigw.service"
    unit.write_text(
        UNIT.read_text(encoding="utf-8").replace("/opt/edigw/venv/bin/edigw", str(edigw)),
        encoding="utf-8",
    )

    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    said = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, said
    # A value systemd cannot parse is only a warning ("ignoring"): none is allowed either.
    assert "edigw.service" not in said, said


def test_the_unit_starts_edigw_run_with_options_the_cli_knows() -> None:
    service = read_unit()["Service"]
    argv = shlex.split(service["ExecStart"])

    command, params = parse_edigw(argv[1:])

    assert PurePosixPath(argv[0]).name == "edigw"
    assert command.name == "run"
    assert params["log_format"] == "json"
    assert service["Type"] == "simple"  # edigw does not speak sd_notify


def test_the_unit_reads_the_configuration_of_its_working_directory() -> None:
    service = read_unit()["Service"]
    _, params = parse_edigw(shlex.split(service["ExecStart"])[1:])

    config = PurePosixPath(str(params["config_path"]))

    assert config.parent == PurePosixPath(service["WorkingDirectory"])
    assert config.name == "edigw.yaml"


def test_the_unit_restarts_edigw_when_a_loop_keeps_crashing_and_not_after_a_usage_error() -> None:
    service = read_unit()["Service"]
    prevented = {int(code) for code in service.get("RestartPreventExitStatus", "").split()}
    success = {int(code) for code in service.get("SuccessExitStatus", "").split()}

    assert service["Restart"] == "on-failure"
    assert EXIT_GAVE_UP not in prevented | success
    assert click.UsageError.exit_code in prevented
    # A stop that outran the grace stays visible as a failed stop.
    assert EXIT_STOP_TIMEOUT not in success


def test_the_unit_gives_up_after_repeated_failed_starts() -> None:
    unit = read_unit()["Unit"]

    assert int(unit["StartLimitBurst"]) >= 1
    assert seconds(unit["StartLimitIntervalSec"]) > 0


def test_the_unit_stops_edigw_with_a_signal_it_handles_and_waits_longer_than_its_grace(
    starter: tuple[Path, GatewayConfig],
) -> None:
    service = read_unit()["Service"]
    kill = signal.Signals[service["KillSignal"]]
    _, config = starter

    assert handled_by_run(kill)
    waited = seconds(service["TimeoutStopSec"])
    assert waited >= DEFAULT_STOP_TIMEOUT + STOP_MARGIN
    assert waited >= config.supervisor.stop_timeout + STOP_MARGIN


def test_the_unit_reloads_with_sighup() -> None:
    service = read_unit()["Service"]

    assert shlex.split(service["ExecReload"]) == ["/bin/kill", "-HUP", "$MAINPID"]


def test_the_gateway_reloads_on_sighup_instead_of_dying() -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "edigw").rglob("*.py"))
    if "SIGHUP" not in source:
        pytest.skip("edigw.yaml reload on SIGHUP (issue 13, point 4) is not in this tree yet")
    assert handled_by_run(signal.SIGHUP)


def test_the_unit_reads_the_token_the_starter_configuration_asks_for() -> None:
    service = read_unit()["Service"]
    starter_text = (ROOT / "edigw" / "starter.yaml").read_text(encoding="utf-8")

    assert service["EnvironmentFile"].startswith("/etc/")
    assert "${ECOLIX_TOKEN}" in starter_text


def test_the_unit_may_write_the_data_and_exchange_folders_of_the_starter_configuration(
    starter: tuple[Path, GatewayConfig],
) -> None:
    service = read_unit()["Service"]
    folder, config = starter
    work = PurePosixPath(service["WorkingDirectory"])
    writable = {PurePosixPath(p) for p in service["ReadWritePaths"].split()}

    def in_unit(path: Path) -> PurePosixPath:
        return work / path.resolve().relative_to(folder.resolve()).parts[0]

    needed = {in_unit(config.data_dir)}
    channels = [f.channel for f in config.inbound_flows()]
    channels += [f.channel for f in config.outbound_flows()]
    needed |= {in_unit(c.path) for c in channels if isinstance(c, LocalChannel)}

    assert needed == writable


def test_the_unit_is_hardened() -> None:
    service = read_unit()["Service"]

    assert service["User"] not in ("", "root")
    assert service["UMask"] == "0027"
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "PrivateDevices"):
        assert service[key] == "yes", key
    assert service["ProtectSystem"] == "strict"
    assert service["CapabilityBoundingSet"] == ""


# --------------------------------------------------------------------------- Containerfile


def instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of the Containerfile, continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in CONTAINERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Containerfile ends inside a continued line"
    result = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def only(keyword: str) -> str:
    found = [rest for key, rest in instructions() if key == keyword]
    assert len(found) == 1, f"{keyword}: {found}"
    return found[0]


def container_command() -> list[str]:
    cmd = json.loads(only("CMD"))
    assert isinstance(cmd, list), "CMD in exec form, so that edigw is PID 1 and gets SIGTERM"
    return [str(arg) for arg in cmd]


def edigw_calls_in_runs() -> list[list[str]]:
    """The arguments of every ``edigw ...`` a RUN instruction makes."""
    calls = []
    for key, rest in instructions():
        if key != "RUN":
            continue
        for part in re.split(r"&&|\|\||;", rest):
            words = shlex.split(part)
            if words and words[0] == "edigw":
                calls.append(words[1:])
    return calls


def test_the_container_is_python_3_11_slim() -> None:
    assert only("FROM") == "python:3.11-slim"


def test_every_edigw_command_the_containerfile_runs_exists() -> None:
    calls = [*edigw_calls_in_runs(), container_command()[1:]]

    commands = [resolve_edigw(argv)[0].name for argv in calls]

    assert commands == ["init", "run"]


def test_the_edigw_init_of_the_image_parses_with_the_cli() -> None:
    (init,) = edigw_calls_in_runs()

    command, params = parse_edigw(init)

    assert command.name == "init"
    assert PurePosixPath(str(params["directory"])) == PurePosixPath(only("WORKDIR"))


def test_the_container_runs_edigw_run_on_the_configuration_init_wrote() -> None:
    argv = container_command()
    if not run_has_option("--http"):
        pytest.skip("edigw run --http (issue 13, point 5) is not in this tree yet")

    command, params = parse_edigw(argv[1:])

    assert argv[0] == "edigw"
    assert command.name == "run"
    assert (
        PurePosixPath(str(params["config_path"])) == PurePosixPath(only("WORKDIR")) / "edigw.yaml"
    )
    assert params["log_format"] == "json"


def test_the_container_runs_as_a_user_of_its_own() -> None:
    users = [rest for key, rest in instructions() if key == "USER"]

    assert users, "no USER instruction: the gateway would run as root"
    assert users[-1] not in ("root", "0")


def test_the_data_folder_of_the_configuration_is_a_volume(
    starter: tuple[Path, GatewayConfig],
) -> None:
    folder, config = starter
    data_dir = PurePosixPath(only("WORKDIR")) / config.data_dir.resolve().relative_to(
        folder.resolve()
    )

    volumes = {PurePosixPath(v) for v in json.loads(only("VOLUME"))}

    assert data_dir in volumes


def test_the_container_stops_edigw_with_a_signal_it_handles() -> None:
    assert handled_by_run(signal.Signals[only("STOPSIGNAL")])


def test_the_health_check_asks_healthz_on_the_port_edigw_serves() -> None:
    check = only("HEALTHCHECK")
    argv = container_command()
    served = argv[argv.index("--http") + 1]

    urls = re.findall(r"http://([\d.]+):(\d+)(/\w+)", check)

    assert urls == [("127.0.0.1", served.rpartition(":")[2], "/healthz")]
    assert served.rpartition(":")[2] in only("EXPOSE").split()
