"""Outbound templates run in a sandbox: no way to the process, the environment or files, and
bounded in size, work and time. Every attack fails the render with a located sandbox error,
leaves no file, leaks nothing and stays small in memory."""

from __future__ import annotations

import os
import tracemalloc
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edigw.errors import MappingError, SourceDataError
from edigw.jinja_sandbox import Limits
from edigw.outbound.lookups import StaticLookups
from edigw.outbound.render import load_template, render_to_file

TOKEN = "ecolix-token-that-must-never-leak"
RECORDS = [{"code": "A1", "label": "Vis", "lines": [{"q": "1"}]}, {"code": "A2", "label": "Écrou"}]
NOT_ALLOWED = "is not allowed (templates and expressions run in a sandbox)"
MB = 1024 * 1024


@pytest.fixture(autouse=True)
def _token_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECOLIX_TOKEN", TOKEN)


def render(folder: Path, text: str, *, limits: Limits | None = None, records=RECORDS) -> Path:
    """Render ``text`` as ``folder/t.csv.j2`` into ``folder/out.csv`` (as an export would)."""
    path = folder / "t.csv.j2"
    path.write_text(text, encoding="utf-8")
    kwargs = {"limits": limits} if limits else {}
    template = load_template(path, timezone="Europe/Paris", **kwargs)
    out = folder / "out.csv"
    context = {"lookup": StaticLookups({"articles.list": [{"code": "A1"}]}), "partner": "p"}
    render_to_file(template, iter(records), out, context=context, out_name="p/f")
    return out


def refused(folder: Path, text: str, *, limits: Limits | None = None) -> str:
    """The one-line error of a render that must fail; checks it left nothing and leaked nothing."""
    with pytest.raises(SourceDataError) as info:
        render(folder, text, limits=limits)
    message = str(info.value)
    assert "\n" not in message
    assert TOKEN not in message
    assert not (folder / "out.csv").exists()
    return message


# --------------------------------------------------------------------------- no way out

ESCAPES = [
    pytest.param(
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "'__init__' of a 'function'",
        id="cycler-globals-os-popen",
    ),
    pytest.param(
        "{{ lipsum.__globals__['os'].environ }}",
        "'__globals__' of a 'StrictUndefined'",
        id="lipsum-globals-environ",
    ),
    pytest.param(
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "'__class__' of a 'str'",
        id="str-mro-subclasses",
    ),
    pytest.param(
        "{{ self.__init__.__globals__ }}", "'__init__' of a 'TemplateReference'", id="self-globals"
    ),
    pytest.param(
        "{{ self._TemplateReference__context }}",
        "'_TemplateReference__context' of a 'TemplateReference'",
        id="self-context",
    ),
    pytest.param(
        "{{ namespace.__init__.__globals__ }}", "'__init__' of a 'function'", id="namespace"
    ),
    pytest.param("{{ joiner.__init__.__globals__ }}", "'__init__' of a 'function'", id="joiner"),
    pytest.param("{{ range.__globals__ }}", "'__globals__' of a 'function'", id="range"),
    pytest.param("{{ dict.__class__ }}", "'__class__' of a 'function'", id="dict"),
    pytest.param(
        "{% for r in records %}{{ r.__dict__ }}{% endfor %}",
        "'__dict__' of a 'dict'",
        id="record-dict",
    ),
    pytest.param(
        "{% for r in records %}{{ r.__class__.__subclasses__() }}{% endfor %}",
        "'__class__' of a 'dict'",
        id="record-class",
    ),
    pytest.param("{{ records._source }}", "'_source' of a 'RecordTracker'", id="records-source"),
    pytest.param("{{ lookup._tables }}", "'_tables' of a 'StaticLookups'", id="lookup-private"),
    pytest.param("{{ lookup.calls }}", "'calls' of a 'StaticLookups'", id="lookup-not-data"),
    pytest.param("{{ ''|attr('__class__') }}", "'__class__' of a 'str'", id="attr-filter"),
    pytest.param(
        "{{ '{0.__class__.__base__}'.format('') }}", "'__class__' of a 'str'", id="format-fields"
    ),
    pytest.param(
        "{{ 'x' if cycler.__init__ is defined }}",
        "'__init__' of a 'function'",
        id="hidden-behind-is-defined",
    ),
    pytest.param(
        "{{ cycler.__init__|default('') }}",
        "'__init__' of a 'function'",
        id="hidden-behind-default",
    ),
    pytest.param("{{ now.tzinfo.key }}", "'key' of a 'ZoneInfo'", id="object-that-is-not-data"),
    pytest.param(
        "{{ (records|map('string')).gi_frame }}", "'gi_frame' of a 'generator'", id="generator"
    ),
    # A field of a plain dict is read inline by the generated code; anything else still goes
    # through the sandbox's checks.
    pytest.param(
        "{% set d = dict() %}{{ d.__class__ }}", "'__class__' of a 'dict'", id="dict-without-key"
    ),
    pytest.param(
        "{% set s = 'x' %}{{ s.__class__ }}", "'__class__' of a 'str'", id="variable-not-a-dict"
    ),
    pytest.param(
        "{% for r in records %}{{ r.code.__class__ }}{% endfor %}",
        "'__class__' of a 'str'",
        id="field-of-a-field",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ESCAPES)
def test_a_template_cannot_reach_python_internals(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "t.csv.j2"
    path.write_text(text, encoding="utf-8")
    template = load_template(path, timezone="Europe/Paris")
    context = {"lookup": StaticLookups({}), "now": datetime.now(ZoneInfo("UTC"))}
    with pytest.raises(SourceDataError) as info:
        render_to_file(template, iter(RECORDS), tmp_path / "out.csv", context=context)
    message = str(info.value)
    assert f"access to attribute {expected} object {NOT_ALLOWED}" in message
    assert message.startswith(f"{path}:1: ")
    assert TOKEN not in message
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    "name", ["lipsum", "config", "request", "os", "environ", "self_", "__builtins__"]
)
def test_names_a_template_does_not_get(tmp_path: Path, name: str) -> None:
    message = refused(tmp_path, "{{ " + name + " }}")
    assert f"'{name}' is undefined" in message


def test_what_a_template_gets_is_data_and_plain_factories(tmp_path: Path) -> None:
    out = render(
        tmp_path,
        "{% set ns = namespace(n=0) %}{% set j = joiner(',') %}{% set c = cycler('a', 'b') %}"
        "{% for r in records %}{% set ns.n = ns.n + 1 %}{{ j() }}{{ c.next() }}{{ r.code }}"
        "{% endfor %};{{ ns.n }};{{ range(3)|list }};{{ dict(a=1) }};{{ lookup('articles.list') }}",
    )
    assert out.read_text() == "aA1,bA2;2;[0, 1, 2];{'a': 1};{'A1': {'code': 'A1'}}"


# --------------------------------------------------------------------------- files


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A template folder inside a workspace that holds a configuration and a secret."""
    (tmp_path / "edigw.yaml").write_text(f"ecolix: {{token: {TOKEN}}}\n", encoding="utf-8")
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "settings.yaml").write_text(f"token: {TOKEN}\n", encoding="utf-8")
    (folder / "header.j2").write_text("code;label\n", encoding="utf-8")
    (folder / "macros.j2").write_text(
        "{% macro line(r) %}{{ r.code }};{{ r.label }}{% endmacro %}", encoding="utf-8"
    )
    (folder / "outside.j2").symlink_to(tmp_path / "edigw.yaml")
    return folder


@pytest.mark.parametrize(
    ("text", "why"),
    [
        pytest.param("{% include '/etc/passwd' %}", "an absolute path", id="absolute"),
        pytest.param("{% include '../edigw.yaml' %}", "'..' leads out", id="dot-dot"),
        pytest.param("{% include 'sub/../../edigw.yaml' %}", "'..' leads out", id="dot-dot-deep"),
        pytest.param("{% import '../edigw.yaml' as m %}", "'..' leads out", id="import"),
        pytest.param("{% from '/etc/passwd' import x %}", "an absolute path", id="from-import"),
        pytest.param("{% extends '/etc/passwd' %}", "an absolute path", id="extends"),
        pytest.param("{% include 'settings.yaml' %}", "only templates", id="not-a-template"),
        pytest.param("{% include 'outside.j2' %}", "a link to a file outside", id="symlink"),
    ],
)
def test_a_template_reads_only_the_templates_of_its_own_folder(
    templates: Path, text: str, why: str
) -> None:
    message = refused(templates, text)
    assert "a template may include or import only the templates of its own folder" in message
    assert why in message


def test_including_and_importing_templates_of_the_same_folder_works(templates: Path) -> None:
    out = render(
        templates,
        "{% include 'header.j2' %}{% import 'macros.j2' as m %}"
        "{% for r in records %}{{ m.line(r) }}\n{% endfor %}",
    )
    assert out.read_text() == "code;label\nA1;Vis\nA2;Écrou\n"


def test_a_template_rendered_outside_the_sandbox_is_refused(tmp_path: Path) -> None:
    import jinja2

    template = jinja2.Environment().from_string("{{ 1 }}")
    with pytest.raises(MappingError, match="templates render only in the sandbox"):
        render_to_file(template, [], tmp_path / "out.csv")


# --------------------------------------------------------------------------- bounded

OVER_LIMITS = [
    pytest.param(
        "{{ 'x' * 10**9 }}",
        "a string of 1,000,000,000 characters is over the limit of 1,000,000 characters",
        id="string-times-huge",
    ),
    pytest.param(
        "{{ range(10**9)|list }}",
        "range(1000000000,) is over the limit of 100,000 items",
        id="range-list",
    ),
    pytest.param(
        "{{ [0] * 10**8 }}",
        "a list of 100,000,000 items is over the limit of 1,000,000 items",
        id="list-times-huge",
    ),
    pytest.param(
        "{{ '%s'|format('x' * 1000000 ~ 'y') }}",
        "a string of 1,000,001 characters is over the limit",
        id="format-filter",
    ),
    pytest.param(
        "{{ '%999999999d'|format(1) }}",
        "a field width of 999,999,999 characters is over the limit",
        id="format-width",
    ),
    pytest.param(
        "{{ '{:>999999999}'.format(1) }}",
        "a field width of 999,999,999 characters is over the limit",
        id="str-format-width",
    ),
    pytest.param(
        "{{ '{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}'.format('x' * 100000) }}",
        "a formatted string is over the limit of 1,000,000 characters",
        id="str-format-repeats",
    ),
    pytest.param(
        "{{ '%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s' % {'a': 'x' * 100000} }}",
        "a formatted string of 1,000,055 characters is over the limit",
        id="percent-repeats",
    ),
    pytest.param(
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
        "{% set ns.s = ns.s * 2 %}{% endfor %}",
        "a string of 1,048,576 characters is over the limit",
        id="string-doubled-in-a-loop",
    ),
    pytest.param(
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}",
        "a string of 1,048,576 characters is over the limit",
        id="string-plus-in-a-loop",
    ),
    pytest.param(
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "a string of 1,048,576 characters is over the limit",
        id="string-tilde-in-a-loop",
    ),
    pytest.param(
        "{% set ns = namespace(s=[0]) %}{% for i in range(64) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}",
        "a list of 1,048,576 items is over the limit of 1,000,000 items",
        id="list-plus-in-a-loop",
    ),
    pytest.param(
        "{{ range(100000)|join('x' * 100) }}",
        "a joined string of at least 9,999,900 characters is over the limit",
        id="join-huge-range",
    ),
    pytest.param(
        "{{ ('x' * 100).join(range(100000)|map('string')) }}",
        "a joined string of at least 9,999,900 characters is over the limit",
        id="str-join-huge-range",
    ),
    pytest.param(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "over the work budget of 1,000,000 steps",
        id="nested-loops",
    ),
    pytest.param(
        "{% set s = 'x' * 1000000 %}{{ [s, s, s, s, s, s, s, s, s, s] }}",
        "the text of this value would be over the limit of 1,000,000 characters",
        id="printing-a-list-of-big-strings",
    ),
    pytest.param(
        "{% set s = 'x' * 100000 %}{{ ([s] * 20)|csvrow }}",
        "a CSV line of 2,000,020 characters is over the limit",
        id="csvrow-long-row",
    ),
    pytest.param(
        "{{ range(100000)|map('center', 100000)|list|length }}",
        "over the building budget of 10,000,000 characters or items",
        id="map-keeps-big-strings",
    ),
    pytest.param(
        "{{ ([[0] * 1000] * 1000)|sum(start=[])|length }}",
        "over the building budget of 10,000,000 characters or items",
        id="sum-of-lists",
    ),
    pytest.param(
        "{% macro m(s) %}{{ m(s ~ 'x') }}{% endmacro %}{{ m('') }}",
        "macros or recursive loops nested over the limit of 50 calls",
        id="macro-recursion",
    ),
    pytest.param(
        "{% macro m() %}{% for i in range(100000) %}{{ 'x' * 1000000 }}{% endfor %}"
        "{% endmacro %}{{ m()|length }}",
        "the output of a macro or block is over the limit of 1,000,000 characters",
        id="macro-output",
    ),
    pytest.param(
        "{% set x %}{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}{% endset %}",
        "the output of a macro or block is over the limit of 1,000,000 characters",
        id="set-block-output",
    ),
    pytest.param(
        "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}",
        "macros or recursive loops nested over the limit of 50 calls",
        id="recursive-loop",
    ),
    pytest.param(
        "{{ [1]|batch(10**9, 'x')|list }}",
        "a batch of 1,000,000,000 items is over the limit of 1,000,000 items",
        id="batch-fill",
    ),
    pytest.param(
        "{{ [1]|slice(10**9)|list }}",
        "a number of slices of 1,000,000,000 items is over the limit",
        id="slice-count",
    ),
    pytest.param("{{ 'x'|center(10**9) }}", "over the limit of 1,000,000", id="center"),
    pytest.param("{{ 'x'.ljust(10**9) }}", "over the limit of 1,000,000", id="str-ljust"),
    pytest.param(
        "{{ ('x' * 1000000).replace('x', 'yy') }}", "over the limit of 1,000,000", id="replace"
    ),
    pytest.param(
        "{{ ('\\t' * 100000).expandtabs(1000) }}", "over the limit of 1,000,000", id="expandtabs"
    ),
    pytest.param(
        "{{ ('x' * 100000).translate({120: 'y' * 1000}) }}",
        "over the limit of 1,000,000",
        id="translate",
    ),
    pytest.param(
        "{{ ('x\\n' * 100000)|indent(1000) }}", "over the limit of 1,000,000", id="indent"
    ),
    pytest.param(
        "{{ ('x' * 100000)|wordwrap(1, wrapstring='y' * 1000) }}",
        "over the limit of 1,000,000",
        id="wordwrap",
    ),
    pytest.param(
        "{{ range(1000)|list|tojson(indent=100000) }}",
        "a JSON text of",
        id="tojson-indent",
    ),
    pytest.param(
        "{{ (1).to_bytes(10**9, 'big') }}",
        "a byte string of 1,000,000,000 bytes is over the limit",
        id="to-bytes",
    ),
    pytest.param(
        "{{ 2 ** 100000 }}",
        "an integer of 30,102 digits is over the limit of 4,300 digits",
        id="power",
    ),
    pytest.param(
        "{% set ns = namespace(n=10) %}{% for i in range(40) %}"
        "{% set ns.n = ns.n * ns.n %}{% endfor %}",
        "digits is over the limit of 4,300 digits",
        id="integer-squared-in-a-loop",
    ),
    pytest.param(
        "{{ '{:f}'.format('1e999999999'|dec) }}",
        "number '1e999999999' is out of range",
        id="decimal-exponent",
    ),
    pytest.param("{{ 1|pad(10**9) }}", "a padded field of 1,000,000,000", id="pad-width"),
    pytest.param("{{ 1|decimal(10**9) }}", "precision 1000000000 is over the limit", id="decimal"),
]


@pytest.mark.parametrize(("text", "expected"), OVER_LIMITS)
def test_a_template_over_a_limit_fails_small_and_says_which(
    tmp_path: Path, text: str, expected: str
) -> None:
    tracemalloc.start()
    try:
        message = refused(tmp_path, text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert expected in message
    assert message.startswith(f"{tmp_path / 't.csv.j2'}:")
    assert peak < 100 * MB


def test_output_counts_as_work(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        "{% set s = 'x' * 1000000 %}{% for i in range(100000) %}{{ s }}{% endfor %}",
        limits=Limits(steps=10_000),
    )
    assert "over the work budget of 10,000 steps" in message
    assert "64 characters written" in message


def test_a_template_over_its_time_limit_stops(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        "{% for i in range(100000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
        limits=Limits(seconds=0.0, steps=10**12),
    )
    assert "over the time limit of 0 s" in message


def test_each_record_earns_the_template_more_work(tmp_path: Path) -> None:
    limits = Limits(steps=1_000, steps_per_record=200)
    per_record = "{% for r in records %}{% for i in range(150) %}{% endfor %}{% endfor %}"
    records = [{"code": str(i)} for i in range(100)]  # 100 x 150 steps: far over the start's 1,000
    render(tmp_path, per_record, limits=limits, records=records)
    (tmp_path / "out.csv").unlink()
    message = refused(tmp_path, "{% for i in range(2000) %}{% endfor %}", limits=limits)
    assert "the file header (before the first record): over the work budget" in message


def test_a_failing_record_is_named(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        "{% for r in records %}{% if r.code == 'A2' %}{{ 'x' * 10**9 }}{% endif %}{% endfor %}",
    )
    assert "record 2 (code=A2): a string of 1,000,000,000 characters" in message


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("{{ 'ab' * ('1000000000'|dec) }}", id="text-times-a-decimal"),
        pytest.param("{{ ('1000000000'|dec) * [1] }}", id="a-decimal-times-a-list"),
        pytest.param("{{ 'ab' + ('1'|dec) }}", id="text-plus-a-decimal"),
    ],
)
def test_arithmetic_on_a_decimal_is_plain_but_never_builds_text_or_lists(
    tmp_path: Path, text: str
) -> None:
    message = refused(tmp_path, text)

    assert any(
        why in message
        for why in ("unsupported operand", "can't multiply sequence", "can only concatenate")
    )


def test_arithmetic_on_decimals_gives_numbers(tmp_path: Path) -> None:
    records = [{"price": "105.67", "vat": "20.00"}]
    text = "{% for r in records %}{{ (r.price|dec * (100 + r.vat|dec) / 100)|decimal(2, ',') }}"
    text += "{% endfor %}"

    assert render(tmp_path, text, records=records).read_text() == "126,80"


def test_the_usual_template_constructs_still_work(tmp_path: Path) -> None:
    out = render(
        tmp_path,
        "{% for r in records %}{{ r.code ~ '-' ~ r.label|upper }};{{ '%05d'|format(loop.index) }};"
        "{{ '{:>4}'.format(r.code) }};{{ r.get('lines', [])|length }};{{ (r.code * 2)[:3] }};"
        "{{ [r.code, 'x']|join('/') }};{{ 3 * 4 + 2 ** 3 }};{{ ('%s=%s' % (r.code, 1)) }}\n"
        "{% endfor %}",
    )
    assert out.read_text().splitlines() == [
        "A1-VIS;00001;  A1;1;A1A;A1/x;20;A1=1",
        "A2-ÉCROU;00002;  A2;0;A2A;A2/x;20;A2=1",
    ]


def test_nothing_is_written_when_the_limit_is_hit_late(tmp_path: Path) -> None:
    records = [{"code": str(i)} for i in range(5000)]
    text = "{% for r in records %}{{ r.code }}\n{% if loop.last %}{{ 'x' * 10**9 }}{% endif %}"
    text += "{% endfor %}"
    path = tmp_path / "t.csv.j2"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SourceDataError, match="record 5000"):
        render_to_file(load_template(path), iter(records), tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
    assert os.listdir(tmp_path) == ["t.csv.j2"]
