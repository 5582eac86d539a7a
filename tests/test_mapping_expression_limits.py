"""Mapping expressions are sandboxed and bounded: an expression over a limit fails its document
(naming the expression and the limit), stays small in memory, and the next document maps."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from textwrap import dedent

import pytest

from edigw.jinja_sandbox import Limits
from edigw.mapping import load_mapping
from edigw.mapping.expressions import ExpressionError, compile_expression, make_environment

MB = 1024 * 1024

MAPPING = """\
source: {format: csv, delimiter: ";"}
documents: {per: record}
target: customers.upsert
key: code
fields:
  code: {from: code}
  name: {expr: EXPR}
  billing_address:
    fields:
      line1: {value: "1 rue A"}
      postal_code: {value: "69001"}
      city: {value: Lyon}
      country: {value: FR}
"""


def map_two_customers(tmp_path: Path, expression: str) -> list:
    """Customer c1 is named by ``expression``; c2 by a plain one (it must map regardless)."""
    guarded = f"({expression}) if record.code == 'c1' else 'Plain ' ~ record.code"
    path = tmp_path / "m.yaml"
    path.write_text(dedent(MAPPING).replace("EXPR", json.dumps(guarded)), encoding="utf-8")
    sample = tmp_path / "c.csv"
    sample.write_text("code\nc1\nc2\n", encoding="utf-8")
    return list(load_mapping(path).map_file(sample, source_name="c.csv"))


OVER_LIMITS = [
    pytest.param(
        "'x' * 10**9",
        "a string of 1,000,000,000 characters is over the limit of 1,000,000 characters",
        id="string-times-huge",
    ),
    pytest.param(
        "range(10**9)|list", "range(1000000000,) is over the limit of 100,000 items", id="range"
    ),
    pytest.param(
        "[0] * 10**8",
        "a list of 100,000,000 items is over the limit of 1,000,000 items",
        id="list-times-huge",
    ),
    pytest.param(
        "'%s'|format('x' * 1000000 ~ 'y')",
        "a string of 1,000,001 characters is over the limit",
        id="format-filter",
    ),
    pytest.param(
        "'%999999999d' % 1", "a field width of 999,999,999 characters", id="percent-width"
    ),
    pytest.param(
        "'{:>999999999}'.format(1)", "a field width of 999,999,999 characters", id="format-width"
    ),
    pytest.param(
        "range(100000)|join('x' * 100)",
        "a joined string of at least 9,999,900 characters is over the limit",
        id="join-huge-range",
    ),
    pytest.param(
        "('x' * 1000000 + 'y')",
        "a string of 1,000,001 characters is over the limit",
        id="string-plus",
    ),
    pytest.param(
        "range(100000)|map('center', 100000)|list|length",
        "over the building budget of 10,000,000 characters or items",
        id="map-keeps-big-strings",
    ),
    pytest.param(
        "([['x' * 1000] * 1000] * 1000)|string",
        "the text of a value would be over the limit of 1,000,000 characters",
        id="printing-a-list-of-lists",
    ),
    pytest.param(
        "2 ** 100000", "an integer of 30,102 digits is over the limit of 4,300 digits", id="power"
    ),
]


@pytest.mark.parametrize(("expression", "expected"), OVER_LIMITS)
def test_an_expression_over_a_limit_fails_its_document_only(
    tmp_path: Path, expression: str, expected: str
) -> None:
    tracemalloc.start()
    try:
        docs = map_two_customers(tmp_path, expression)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * MB
    first, second = docs
    assert second.payload is not None and second.payload["name"] == "Plain c2"
    assert first.payload is None
    [problem] = first.problems
    assert str(problem).startswith("c.csv:2 [/name]: expression ")
    assert " stopped: " in str(problem)
    assert expected in str(problem)


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("cycler.__init__.__globals__", id="cycler-globals"),
        pytest.param("lipsum.__globals__['os']", id="lipsum"),
        pytest.param("record.__dict__", id="record-dict"),
        pytest.param("record.__class__", id="record-class"),
        pytest.param("value|attr('__class__')", id="attr-filter"),
        pytest.param("'{0.__class__}'.format(record)", id="format-fields"),
    ],
)
def test_an_expression_reaching_python_internals_fails_its_document(
    tmp_path: Path, expression: str
) -> None:
    first, second = map_two_customers(tmp_path, expression)
    assert first.payload is None
    assert "is not allowed: access to attribute" in str(first.problems[0])
    assert "(templates and expressions run in a sandbox)" in str(first.problems[0])
    assert second.payload is not None


def test_an_expression_over_its_work_budget_stops() -> None:
    env = make_environment(Limits(steps=10_000))
    expression = compile_expression(env, "range(100000)|map('string')|join|length")
    with pytest.raises(ExpressionError, match="over the work budget of 10,000 steps"):
        expression()


def test_an_expression_over_its_time_limit_stops() -> None:
    env = make_environment(Limits(seconds=0.0, steps=10**12))
    expression = compile_expression(env, "range(100000)|map('string')|join|length")
    with pytest.raises(ExpressionError, match="over the time limit of 0 s"):
        expression()


def test_each_evaluation_has_a_budget_of_its_own() -> None:
    env = make_environment(Limits(steps=1_000))
    expression = compile_expression(env, "range(900)|sum")
    assert [expression() for _ in range(5)] == [404550] * 5  # 5 x 900 steps: fine one by one
