"""edigw.yaml's ``limits:`` block of an inbound flow: loaded with its units, checked with
line numbers, and handed to the flow's readers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from edigw.config import InboundFlow, load_config
from edigw.errors import ConfigError, MalformedFileError
from edigw.formats.limits import DEFAULT_LIMITS, ReaderLimits
from edigw.pipeline.assembly import flow_context

CONFIG = """\
ecolix:
  base_url: http://127.0.0.1:8800/api/v1
  token: ${ECOLIX_TOKEN}
partners:
  acme:
    flows:
      orders:
        direction: inbound
        channel: {type: local, path: in}
        mapping: mappings/orders.yaml
"""
MAPPING = """\
source: {format: csv, delimiter: ";"}
documents: {per: record}
target: customers.upsert
key: code
fields:
  code: code
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "orders.yaml").write_text(MAPPING)
    return tmp_path


def load(folder: Path, extra: str = "") -> InboundFlow:
    path = folder / "edigw.yaml"
    path.write_text(CONFIG + textwrap.indent(extra, " " * 8))
    flow = load_config(path, environ={"ECOLIX_TOKEN": "t"}).flow("acme/orders")
    assert isinstance(flow, InboundFlow)
    return flow


def test_a_flow_without_limits_has_the_defaults(workdir: Path) -> None:
    assert load(workdir).limits.reader_limits() == DEFAULT_LIMITS


def test_the_limits_block_takes_sizes_and_durations_with_units(workdir: Path) -> None:
    flow = load(
        workdir,
        "limits:\n"
        "  max_lines_per_document: 50000\n"
        "  max_expanded_bytes: 20MB\n"
        "  max_seconds: 10m\n"
        "  control_characters: allow\n",
    )
    assert flow.limits.reader_limits() == ReaderLimits(
        max_lines_per_document=50_000,
        max_expanded_bytes=20 << 20,
        max_seconds=600.0,
        control_characters="allow",
    )


def test_the_flows_limits_reach_its_readers(workdir: Path) -> None:
    flow = load(workdir, "limits: {max_line_chars: 10}\n")
    context = flow_context(flow, "local:in")
    assert context.limits == ReaderLimits(max_line_chars=10)
    sample = workdir / "c.csv"
    sample.write_text("code\n" + "C" * 20 + "\n")
    with pytest.raises(MalformedFileError, match=r"c\.csv:2: the line has more than 10 characters"):
        list(context.mapping.map_file(sample, source_name="c.csv", limits=context.limits))


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param(
            "limits: {max_cels: 10}\n",
            "edigw.yaml:11 partners.acme.flows.orders.limits.max_cels: unknown key",
            id="unknown-key",
        ),
        pytest.param(
            "limits: {control_characters: keep}\n",
            "edigw.yaml:11 partners.acme.flows.orders.limits.control_characters:",
            id="bad-choice",
        ),
        pytest.param(
            "limits: {max_cells: 0}\n",
            "edigw.yaml:11 partners.acme.flows.orders.limits.max_cells:",
            id="not-positive",
        ),
    ],
)
def test_a_wrong_limit_is_a_configuration_error_with_its_line(
    workdir: Path, extra: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(workdir, extra)
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems
