"""The sandbox's simulated latency: every answer takes at least the latency asked for.

Only lower bounds are asserted: that an answer is *not faster* than the latency is the
behaviour; how much slower it may be on a busy machine is not a property of the sandbox.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from edigw.cli import main
from edigw.errors import ConfigError
from edigw.sandbox.latency import Latency, parse_latency
from edigw.sandbox.server import main as sandbox_main
from edigw.sandbox.server import run_in_thread
from tests.fixtures.sandbox import SEED, SandboxProcess


def timed_get(client: httpx.Client, path: str) -> tuple[int, float]:
    started = time.perf_counter()
    response = client.get(path)
    return response.status_code, time.perf_counter() - started


@pytest.mark.parametrize(
    ("text", "seconds", "jitter"),
    [
        pytest.param("50ms", 0.05, 0.0, id="milliseconds"),
        pytest.param("0.05s", 0.05, 0.0, id="seconds"),
        pytest.param("2s", 2.0, 0.0, id="whole-seconds"),
        pytest.param("50ms±10ms", 0.05, 0.01, id="plus-minus-sign"),
        pytest.param("50ms+-10ms", 0.05, 0.01, id="plus-minus-ascii"),
        pytest.param(" 50 ms ± 10 ms ", 0.05, 0.01, id="spaces"),
        pytest.param("0.05s±5ms", 0.05, 0.005, id="mixed-units"),
        pytest.param("0ms", 0.0, 0.0, id="none"),
    ],
)
def test_a_latency_is_a_duration_with_its_unit_and_an_optional_jitter(
    text: str, seconds: float, jitter: float
) -> None:
    latency = parse_latency(text)
    assert latency.seconds == pytest.approx(seconds)
    assert latency.jitter == pytest.approx(jitter)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("50", id="no-unit"),
        pytest.param("fast", id="not-a-number"),
        pytest.param("50min", id="unknown-unit"),
        pytest.param("-50ms", id="negative"),
        pytest.param("50ms±", id="jitter-without-amount"),
        pytest.param("50ms±10", id="jitter-without-unit"),
        pytest.param("", id="empty"),
    ],
)
def test_a_malformed_latency_is_a_clear_error(text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_latency(text)
    assert str(raised.value) == (
        f"{text!r} is not a latency: write a duration with its unit (ms or s), "
        "optionally ± a jitter: 50ms, 0.05s, 50ms±10ms or 50ms+-10ms"
    )


def test_a_jitter_larger_than_the_latency_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"the jitter \(20ms\) cannot be larger than the latency"):
        parse_latency("10ms±20ms")


def test_jittered_delays_stay_within_the_jitter_and_repeat_for_the_same_seed() -> None:
    latency = Latency(0.05, 0.01)
    first = list(itertools.islice(latency.delays(seed=3), 200))
    again = list(itertools.islice(latency.delays(seed=3), 200))
    other = list(itertools.islice(latency.delays(seed=4), 200))
    assert first == again
    assert first != other
    assert all(0.04 <= d <= 0.06 for d in first)
    assert len(set(first)) > 100  # really drawn, not one value repeated


def test_a_latency_is_written_back_as_it_is_read() -> None:
    assert str(parse_latency("0.05s+-10ms")) == "50ms±10ms"
    assert str(parse_latency("250ms")) == "250ms"


def test_every_answer_of_a_sandbox_in_a_thread_takes_at_least_the_latency(tmp_path: Path) -> None:
    with (
        run_in_thread(tmp_path / "s.sqlite", token="T", seed=SEED, latency="200ms±50ms") as url,
        httpx.Client(base_url=url, headers={"Authorization": "Bearer T"}, timeout=30) as client,
    ):
        answers = [timed_get(client, "/customers/CUS-0001") for _ in range(5)]
        answers.append(timed_get(client, "/customers/NOBODY"))
    assert [status for status, _ in answers] == [200] * 5 + [404]
    assert all(elapsed >= 0.15 for _, elapsed in answers), answers


def test_the_sandbox_process_delays_its_answers_with_the_latency_option(tmp_path: Path) -> None:
    server = SandboxProcess(tmp_path / "s.sqlite", seed=SEED, latency="300ms").start()
    try:
        with server.client() as client:
            answers = [timed_get(client, "/customers/CUS-0001"), timed_get(client, "/articles")]
    finally:
        server.stop()
    assert [status for status, _ in answers] == [200, 200]
    assert all(elapsed >= 0.3 for _, elapsed in answers), answers


def test_the_sandbox_command_refuses_a_malformed_latency_with_one_line() -> None:
    result = CliRunner().invoke(main, ["sandbox", "--token", "T", "--latency", "50"])
    assert result.exit_code == 2
    assert (
        "Invalid value for '--latency': '50' is not a latency: write a duration with its unit"
        in result.output
    )


def test_the_sandbox_command_documents_the_latency_option() -> None:
    result = CliRunner().invoke(main, ["sandbox", "--help"])
    assert result.exit_code == 0
    assert "--latency" in result.output
    assert "50ms±10ms" in result.output


def test_python_m_edigw_sandbox_refuses_a_malformed_latency(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        sandbox_main(["--token", "T", "--latency", "soon"])
    assert exited.value.code == 2
    assert "argument --latency: 'soon' is not a latency" in capsys.readouterr().err
