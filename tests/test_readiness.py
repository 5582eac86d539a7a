"""Readiness: whether Ecolix answers is found out frugally, and `http:` in edigw.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edigw.config import load_config
from edigw.ecolix.client import EcolixClient
from edigw.errors import ConfigError, EcolixError
from edigw.pipeline.health import Conditions
from edigw.pipeline.readiness import ECOLIX_CONDITION, EcolixCheck
from tests.fixtures.sandbox import SandboxProcess

EVERY = 30.0


@pytest.fixture
def client(sandbox: SandboxProcess) -> Iterator[EcolixClient]:
    with EcolixClient(sandbox.base_url, sandbox.token) as made:
        yield made


def test_with_no_call_made_the_check_reads_one_article_itself(client: EcolixClient) -> None:
    check = EcolixCheck(client, Conditions(), every=EVERY)
    assert check.verdict == "not checked yet"
    assert check.check_once() == "ok"
    assert check.probes == 1
    assert client.usage.by_operation == {"articles.list": 1}


def test_calls_the_gateway_made_meanwhile_spare_the_check_its_own(client: EcolixClient) -> None:
    check = EcolixCheck(client, Conditions(), every=EVERY)
    check.check_once()
    with pytest.raises(EcolixError):
        client.get_customer("NO-SUCH-CUSTOMER")  # a 404 is Ecolix answering
    assert check.check_once() == "ok"
    assert check.probes == 1


def test_a_refused_token_is_not_ready_and_a_condition(sandbox: SandboxProcess) -> None:
    conditions = Conditions()
    with EcolixClient(sandbox.base_url, "wrong-token") as wrong:
        verdict = EcolixCheck(wrong, conditions, every=EVERY).check_once()
    assert verdict.startswith("Ecolix refuses the gateway's calls: ")
    condition = conditions.get(ECOLIX_CONDITION)
    assert condition is not None and condition.message == verdict


def test_ecolix_answering_again_clears_the_condition(client: EcolixClient) -> None:
    conditions = Conditions()
    conditions.set(ECOLIX_CONDITION, "Ecolix does not answer: earlier")
    EcolixCheck(client, conditions, every=EVERY).check_once()
    assert conditions.get(ECOLIX_CONDITION) is None


# --------------------------------------------------------------------------- edigw.yaml http:

HEAD = """\
ecolix:
  base_url: http://127.0.0.1:8800/api/v1
  token: ${ECOLIX_TOKEN}
"""


def load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "edigw.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ={"ECOLIX_TOKEN": "T"})


def test_http_is_off_by_default_and_checks_ecolix_every_30_s(tmp_path: Path) -> None:
    config = load(tmp_path, HEAD)
    assert config.http.listen is None
    assert config.http.ecolix_check_every == 30.0


def test_http_listen_and_check_interval_are_read(tmp_path: Path) -> None:
    config = load(tmp_path, HEAD + "http: {listen: '127.0.0.1:9464', ecolix_check_every: 1m}\n")
    assert config.http.listen == "127.0.0.1:9464"
    assert config.http.ecolix_check_every == 60.0


def test_http_listen_without_a_port_is_an_error_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, HEAD + "http:\n  listen: localhost\n")
    assert caught.value.problems == [
        "edigw.yaml:5 http.listen: expected HOST:PORT, e.g. 127.0.0.1:9464, got 'localhost'"
    ]
