"""edigw.yaml: the shape, the defaults, ${ENV} interpolation and errors with line numbers."""

from __future__ import annotations

import importlib
import pkgutil
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from edigw import config as config_package
from edigw.config import (
    ALWAYS_EXCLUDED,
    DEFAULT_MAX_SIZE,
    AfterDelete,
    AfterMove,
    CronSchedule,
    DoneFileReadiness,
    EverySchedule,
    GatewayConfig,
    InboundFlow,
    LocalChannel,
    MinAgeReadiness,
    OutboundFlow,
    SftpChannel,
    StableReadiness,
    load_config,
    parse_duration,
    parse_size,
)
from edigw.errors import ConfigError
from edigw.validation import LayerMode, ValidationPolicy

#: The package and each of its modules, where the models of edigw.yaml are defined.
CONFIG_MODULES = [
    config_package,
    *(
        importlib.import_module(f"{config_package.__name__}.{module.name}")
        for module in pkgutil.iter_modules(config_package.__path__)
    ),
]

ENV = {"ECOLIX_TOKEN": "secret-token", "ACME_SFTP_PASSWORD": "pw"}

HEAD = """\
ecolix:
  base_url: http://127.0.0.1:8800/api/v1
  token: ${ECOLIX_TOKEN}
"""

FULL = """\
ecolix:
  base_url: http://127.0.0.1:8800/api/v1/
  token: ${ECOLIX_TOKEN}
  calls_per_minute: 120
  timeouts: {connect: 2s, read: 1m}
data_dir: ./data
retry: {max_attempts: 3, first_delay: 10, max_delay: 15m}
sftp_endpoints:
  acme:
    host: 127.0.0.1
    port: 2222
    username: edi
    password: ${ACME_SFTP_PASSWORD}
partners:
  webshop:
    flows:
      orders:
        direction: inbound
        channel: {type: local, path: inbox/orders}
        mapping: mappings/orders.yaml
        include: ["*.csv"]
        exclude: ["*.bak"]
        readiness: {mode: done_file}
        after: {action: delete}
        duplicates: process
        encoding: cp1252
        max_size: 10MB
      remote:
        direction: inbound
        channel: {type: sftp, endpoint: acme, path: /out, recursive: true, max_depth: 3}
        mapping: mappings/orders.yaml
      articles:
        direction: outbound
        query: {resource: orders.list, filters: {status: [confirmed, prepared]}}
        template: templates/articles.csv.j2
        channel: {type: local, path: outbox}
        schedule: {cron: "*/15 * * * *"}
        mode: full
        encoding: utf-8-sig
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "orders.yaml").write_text("source: {format: csv}\n")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "articles.csv.j2").write_text("{{ x }}\n")
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "edigw.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(folder: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(folder, text), environ=ENV if environ is None else environ)
    return caught.value.problems


# --- The shape and its defaults -----------------------------------------------------------


def test_full_example_loads_with_every_option(workdir: Path) -> None:
    config = load_config(write(workdir, FULL), environ=ENV)

    assert config.ecolix.base_url == "http://127.0.0.1:8800/api/v1"
    assert config.ecolix.token.get_secret_value() == "secret-token"
    assert config.ecolix.calls_per_minute == 120
    assert (config.ecolix.timeouts.connect, config.ecolix.timeouts.read) == (2.0, 60.0)
    assert (config.retry.max_attempts, config.retry.first_delay, config.retry.max_delay) == (
        3,
        10.0,
        900.0,
    )
    orders = config.flow("webshop/orders")
    assert isinstance(orders, InboundFlow)
    assert orders.readiness == DoneFileReadiness(mode="done_file", suffix=".ok")
    assert orders.after == AfterDelete(action="delete")
    assert (orders.duplicates, orders.encoding, orders.max_size) == ("process", "cp1252", 10 << 20)
    remote = config.flow("webshop/remote")
    assert isinstance(remote, InboundFlow)
    assert remote.channel == SftpChannel(
        type="sftp", endpoint="acme", path="/out", recursive=True, max_depth=3
    )
    articles = config.flow("webshop/articles")
    assert isinstance(articles, OutboundFlow)
    assert articles.query.filters == {"status": ["confirmed", "prepared"]}
    assert articles.schedule == CronSchedule(cron="*/15 * * * *")
    assert (articles.mode, articles.encoding) == ("full", "utf-8-sig")


def test_inbound_flow_defaults_are_the_documented_ones(workdir: Path) -> None:
    config = load_config(
        write(
            workdir,
            HEAD
            + """\
partners:
  p:
    flows:
      f:
        direction: inbound
        channel: {type: local, path: in}
        mapping: mappings/orders.yaml
""",
        ),
        environ=ENV,
    )
    flow = config.inbound_flows()[0]
    assert flow.include == ["*"]
    assert flow.exclude == []
    assert flow.readiness == StableReadiness(mode="stable", interval=2.0)
    assert flow.after == AfterMove(action="move", to="done")
    assert (flow.error_folder, flow.duplicates, flow.encoding) == ("error", "skip", "auto")
    assert flow.max_size == DEFAULT_MAX_SIZE == 52428800
    assert (flow.poll_interval, flow.max_files_per_poll) == (5.0, 100)
    assert flow.ordered is False  # documents of distinct business keys go concurrently


def test_temporary_and_hidden_files_are_always_skipped(workdir: Path) -> None:
    config = load_config(write(workdir, FULL), environ=ENV)
    flow = config.flow("webshop/orders")
    assert isinstance(flow, InboundFlow)
    assert ALWAYS_EXCLUDED == ("*.tmp", "*.part", ".*")
    assert flow.skipped_patterns == ("*.tmp", "*.part", ".*", "*.bak")


def test_outbound_flow_defaults_are_the_documented_ones(workdir: Path) -> None:
    config = load_config(
        write(
            workdir,
            HEAD
            + """\
partners:
  p:
    flows:
      f:
        direction: outbound
        query: {resource: stock.list}
        template: templates/articles.csv.j2
        channel: {type: local, path: out}
""",
        ),
        environ=ENV,
    )
    flow = config.outbound_flows()[0]
    assert flow.filename == "{partner}_{flow}_{now:%Y%m%d-%H%M%S}_{seq:05d}.csv"
    assert flow.timezone == "Europe/Paris"
    assert flow.schedule == EverySchedule(every=900.0)
    assert (flow.mode, flow.write_empty, flow.encoding, flow.xsd) == ("delta", False, "utf-8", None)
    assert flow.upload.model_dump() == {
        "temp_prefix": ".",
        "temp_suffix": ".part",
        "if_exists": "fail",
        "done_file": None,
    }


def test_gateway_defaults_when_only_ecolix_is_given(workdir: Path) -> None:
    config = load_config(write(workdir, HEAD), environ=ENV)
    assert config.ecolix.calls_per_minute == 600
    assert (config.ecolix.timeouts.connect, config.ecolix.timeouts.read) == (5.0, 30.0)
    assert (config.retry.max_attempts, config.retry.first_delay, config.retry.max_delay) == (
        8,
        30.0,
        3600.0,
    )
    assert config.data_dir == workdir / "edigw-data"
    assert config.partners == {}


def test_relative_paths_are_resolved_against_the_config_folder(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    config = load_config(write(workdir, FULL), environ=ENV)
    orders = config.flow("webshop/orders")
    assert isinstance(orders, InboundFlow)
    assert config.data_dir == workdir / "data"
    assert orders.mapping == workdir / "mappings" / "orders.yaml"
    assert orders.channel == LocalChannel(type="local", path=workdir / "inbox" / "orders")


def test_sftp_channel_path_is_remote_and_left_as_written(workdir: Path) -> None:
    config = load_config(write(workdir, FULL), environ=ENV)
    remote = config.flow("webshop/remote")
    assert isinstance(remote.channel, SftpChannel)
    assert remote.channel.path == "/out"


def test_sftp_known_hosts_defaults_to_a_file_per_endpoint(workdir: Path) -> None:
    config = load_config(write(workdir, FULL), environ=ENV)
    assert config.sftp_endpoints["acme"].known_hosts == workdir / "known_hosts" / "acme"


def test_journal_url_defaults_to_sqlite_in_data_dir(workdir: Path) -> None:
    config = load_config(write(workdir, FULL), environ=ENV)
    assert config.journal_url == f"sqlite:///{workdir}/data/journal.sqlite"


def test_journal_url_can_name_another_database(workdir: Path) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    config = load_config(write(workdir, HEAD + f"journal: {url}\n"), environ=ENV)
    assert config.journal_url == url


def test_flows_know_their_partner_and_name(workdir: Path) -> None:
    config = load_config(write(workdir, FULL), environ=ENV)
    assert [flow.id for flow in config.flows()] == [
        "webshop/orders",
        "webshop/remote",
        "webshop/articles",
    ]
    assert [flow.id for flow in config.inbound_flows()] == ["webshop/orders", "webshop/remote"]
    assert [(f.partner, f.name) for f in config.outbound_flows()] == [("webshop", "articles")]


def test_unknown_flow_name_lists_the_known_ones(workdir: Path) -> None:
    config = load_config(write(workdir, FULL), environ=ENV)
    with pytest.raises(ConfigError, match=r"unknown flow 'webshop/nope' \(flows: webshop/orders, "):
        config.flow("webshop/nope")


def test_secrets_are_not_shown_in_repr(workdir: Path) -> None:
    config = load_config(write(workdir, FULL), environ=ENV)
    assert "secret-token" not in repr(config)
    assert "pw" not in repr(config.sftp_endpoints["acme"])
    assert isinstance(config.sftp_endpoints["acme"].password, SecretStr)


def test_loaded_configuration_is_read_only(workdir: Path) -> None:
    config = load_config(write(workdir, FULL), environ=ENV)
    with pytest.raises(ValueError, match="frozen"):
        config.data_dir = Path("/tmp")  # type: ignore[misc]


def test_every_field_has_a_description() -> None:
    models: list[type[BaseModel]] = [GatewayConfig]
    seen: set[type[BaseModel]] = set()
    undocumented = []
    while models:
        model = models.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            if not field.description:
                undocumented.append(f"{model.__name__}.{name}")
        models.extend(
            cls
            for config_module in CONFIG_MODULES
            for cls in vars(config_module).values()
            if isinstance(cls, type)
            and issubclass(cls, BaseModel)
            and cls.__module__ == config_module.__name__
        )
    assert len(seen) >= 20
    assert undocumented == []


# --- ${ENV} interpolation -----------------------------------------------------------------


def test_environment_variables_are_interpolated_inside_strings(workdir: Path) -> None:
    text = (
        HEAD.replace("http://127.0.0.1:8800", "http://${HOST}:${PORT}") + "data_dir: ${BASE}/data\n"
    )
    config = load_config(
        write(workdir, text), environ={**ENV, "HOST": "erp", "PORT": "81", "BASE": "/srv/edigw"}
    )
    assert config.ecolix.base_url == "http://erp:81/api/v1"
    assert config.data_dir == Path("/srv/edigw/data")


def test_interpolated_numbers_are_typed(workdir: Path) -> None:
    text = HEAD + "  calls_per_minute: ${CPM}\n"
    config = load_config(write(workdir, text), environ={**ENV, "CPM": "60"})
    assert config.ecolix.calls_per_minute == 60


def test_default_value_used_when_variable_is_unset(workdir: Path) -> None:
    text = HEAD.replace("http://127.0.0.1:8800/api/v1", "${URL:-http://localhost/api/v1}")
    config = load_config(write(workdir, text), environ=ENV)
    assert config.ecolix.base_url == "http://localhost/api/v1"


def test_double_dollar_escapes_a_literal_reference(workdir: Path) -> None:
    text = HEAD.replace("${ECOLIX_TOKEN}", "ab$${NOT_A_VAR}cd")
    config = load_config(write(workdir, text), environ={})
    assert config.ecolix.token.get_secret_value() == "ab${NOT_A_VAR}cd"


def test_the_process_environment_is_never_read(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECOLIX_TOKEN", "from-os-environ")
    problems = problems_of(workdir, HEAD, environ={})
    assert problems == ["edigw.yaml:3 ecolix.token: environment variable ECOLIX_TOKEN is not set"]


def test_secrets_may_be_unset_for_commands_that_only_read_the_journal(workdir: Path) -> None:
    config = load_config(write(workdir, FULL), environ={}, secrets_optional=True)

    assert config.ecolix.token.get_secret_value() == ""
    with pytest.raises(ConfigError) as caught:
        config.require_secrets("replay sends documents to Ecolix")
    assert str(caught.value) == (
        "ACME_SFTP_PASSWORD and ECOLIX_TOKEN are not set: replay sends documents to Ecolix "
        "(edigw.yaml:3 ecolix.token; edigw.yaml:13 sftp_endpoints.acme.password)"
    )


def test_a_configuration_with_its_secrets_requires_nothing(workdir: Path) -> None:
    config = load_config(write(workdir, FULL), environ=ENV, secrets_optional=True)
    config.require_secrets("replay sends documents to Ecolix")  # no error


def test_unset_variables_outside_secrets_stay_problems_when_secrets_are_optional(
    workdir: Path,
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(
            write(workdir, HEAD + "journal: ${JOURNAL_URL}\n"), environ={}, secrets_optional=True
        )
    problems = caught.value.problems
    assert "edigw.yaml:4 journal: environment variable JOURNAL_URL is not set" in problems
    assert not any("ECOLIX_TOKEN" in problem for problem in problems)


# --- Durations and sizes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param(30, 30.0, id="int-seconds"),
        pytest.param(2.5, 2.5, id="float-seconds"),
        pytest.param("2s", 2.0, id="s"),
        pytest.param("15m", 900.0, id="m"),
        pytest.param("1h", 3600.0, id="h"),
        pytest.param("1d", 86400.0, id="d"),
        pytest.param("500ms", 0.5, id="ms"),
        pytest.param("90", 90.0, id="string-seconds"),
    ],
)
def test_durations_accept_seconds_or_units(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "size"),
    [
        pytest.param(1000, 1000, id="bytes"),
        pytest.param("512KB", 512 * 1024, id="KB"),
        pytest.param("50MB", 52428800, id="MB"),
        pytest.param("1.5GB", 1610612736, id="GB"),
        pytest.param("2 MiB", 2 * 1024 * 1024, id="MiB"),
    ],
)
def test_sizes_accept_bytes_or_units(text: object, size: int) -> None:
    assert parse_size(text) == size


# --- Errors: every problem, each with its line --------------------------------------------

FLOW = (
    HEAD
    + """\
partners:
  acme:
    flows:
      orders:
        direction: inbound
        channel: {type: local, path: in}
        mapping: mappings/orders.yaml
"""
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            HEAD.replace("${ECOLIX_TOKEN}", "${MISSING_TOKEN}"),
            "edigw.yaml:3 ecolix.token: environment variable MISSING_TOKEN is not set",
            id="env-missing",
        ),
        pytest.param(
            HEAD.replace("${ECOLIX_TOKEN}", "${lower case}"),
            "edigw.yaml:3 ecolix.token: invalid reference '${lower case}': write ${NAME} or "
            "${NAME:-default} (and $${ for a literal ${)",
            id="env-malformed",
        ),
        pytest.param(
            HEAD + "  timeout: 3\n",
            "edigw.yaml:4 ecolix.timeout: unknown key (did you mean 'timeouts'?)",
            id="unknown-key",
        ),
        pytest.param(
            "ecolix:\n  token: x\n",
            "edigw.yaml:1 ecolix.base_url: required key is missing",
            id="missing-key",
        ),
        pytest.param(
            HEAD.replace("http://127.0.0.1:8800/api/v1", "127.0.0.1:8800"),
            "edigw.yaml:2 ecolix.base_url: must be an http:// or https:// URL, got '127.0.0.1:8800'",
            id="bad-url",
        ),
        pytest.param(
            HEAD + "  calls_per_minute: lots\n",
            "edigw.yaml:4 ecolix.calls_per_minute: must be a whole number, got 'lots'",
            id="not-a-number",
        ),
        pytest.param(
            HEAD + "  calls_per_minute: 0\n",
            "edigw.yaml:4 ecolix.calls_per_minute: must be greater than 0",
            id="not-positive",
        ),
        pytest.param(
            HEAD + "retry: {first_delay: soon}\n",
            "edigw.yaml:4 retry.first_delay: expected a duration such as 30, '2s', '15m' or "
            "'1h', got 'soon'",
            id="bad-duration",
        ),
        pytest.param(
            HEAD + "retry: {first_delay: 1h, max_delay: 1m}\n",
            "edigw.yaml:4 retry: max_delay must not be shorter than first_delay",
            id="retry-delays-reversed",
        ),
        pytest.param(
            FLOW.replace("mappings/orders.yaml", "mappings/nope.yaml"),
            "edigw.yaml:10 partners.acme.flows.orders.mapping: file not found "
            "({dir}/mappings/nope.yaml)",
            id="mapping-not-found",
        ),
        pytest.param(
            FLOW + "        max_size: 50XB\n",
            "edigw.yaml:11 partners.acme.flows.orders.max_size: unknown size unit 'XB' "
            "(use B, KB, MB or GB)",
            id="bad-size",
        ),
        pytest.param(
            FLOW.replace("direction: inbound", "direction: sideways"),
            "edigw.yaml:8 partners.acme.flows.orders.direction: 'sideways' is not one of "
            "'inbound', 'outbound'",
            id="bad-direction",
        ),
        pytest.param(
            FLOW.replace("        direction: inbound\n", ""),
            "edigw.yaml:7 partners.acme.flows.orders.direction: required key is missing",
            id="missing-direction",
        ),
        pytest.param(
            FLOW.replace("type: local", "type: ftp"),
            "edigw.yaml:9 partners.acme.flows.orders.channel.type: 'ftp' is not one of "
            "'local', 'sftp'",
            id="bad-channel-type",
        ),
        pytest.param(
            FLOW.replace("{type: local, path: in}", "{type: sftp, endpoint: acme, path: /out}"),
            "edigw.yaml:9 partners.acme.flows.orders.channel.endpoint: unknown SFTP endpoint "
            "'acme' (sftp_endpoints: none declared)",
            id="undeclared-sftp-endpoint",
        ),
        pytest.param(
            FLOW + "        readiness: {mode: stable, seconds: 3}\n",
            "edigw.yaml:11 partners.acme.flows.orders.readiness.seconds: unknown key here "
            "(it is an option of another kind of entry)",
            id="option-of-another-readiness-mode",
        ),
        pytest.param(
            FLOW + "        readiness: {mode: eventually}\n",
            "edigw.yaml:11 partners.acme.flows.orders.readiness.mode: 'eventually' is not one "
            "of 'stable', 'min_age', 'done_file'",
            id="bad-readiness-mode",
        ),
        pytest.param(
            FLOW + "        after: {action: move, to: ../elsewhere}\n",
            "edigw.yaml:11 partners.acme.flows.orders.after.to: must be a folder name relative "
            "to the channel path, got '../elsewhere'",
            id="after-move-escapes-channel",
        ),
        pytest.param(
            FLOW + "        duplicates: maybe\n",
            "edigw.yaml:11 partners.acme.flows.orders.duplicates: must be one of 'skip' or "
            "'process', got 'maybe'",
            id="bad-duplicates-policy",
        ),
        pytest.param(
            FLOW + "        encoding: klingon\n",
            "edigw.yaml:11 partners.acme.flows.orders.encoding: unknown encoding 'klingon' "
            "(e.g. utf-8, utf-8-sig, cp1252, latin-1)",
            id="bad-encoding",
        ),
        pytest.param(
            FLOW.replace("  acme:\n", "  acme corp:\n"),
            "edigw.yaml:5 partners.acme corp: names may use letters, digits, '-', '_', '.', "
            "'+' and start with a letter or digit",
            id="bad-partner-name",
        ),
        pytest.param(
            HEAD + "  token: again\n",
            "edigw.yaml:4 ecolix.token: duplicate key",
            id="duplicate-key",
        ),
        pytest.param(
            HEAD + "partners: [a, b]\n",
            "edigw.yaml:4 partners: must be a mapping of keys, got ['a', 'b']",
            id="list-instead-of-mapping",
        ),
        pytest.param(
            "ecolix: {base_url: http://x\n",
            "edigw.yaml:2: not valid YAML: expected ',' or '}', but got '<stream end>'",
            id="yaml-syntax",
        ),
        pytest.param("", "edigw.yaml:1: the file is empty", id="empty-file"),
        pytest.param(
            "- a\n- b\n",
            "edigw.yaml:1: the top level must be a mapping of keys (ecolix:, partners:, ...)",
            id="top-level-list",
        ),
        pytest.param(
            HEAD + "journal: not a url\n",
            "edigw.yaml:4 journal: not a database URL: 'not a url' (e.g. "
            "postgresql+psycopg://host/db)",
            id="bad-journal-url",
        ),
    ],
)
def test_configuration_error_names_file_line_and_key(
    workdir: Path, text: str, expected: str
) -> None:
    assert problems_of(workdir, text) == [expected.replace("{dir}", str(workdir))]


OUTBOUND = (
    HEAD
    + """\
partners:
  acme:
    flows:
      articles:
        direction: outbound
        query: {resource: articles.list}
        template: templates/articles.csv.j2
        channel: {type: local, path: out}
"""
)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param(
            "        schedule: {cron: every day}\n",
            "edigw.yaml:12 partners.acme.flows.articles.schedule.cron: not a valid cron "
            "expression: 'every day'",
            id="bad-cron",
        ),
        pytest.param(
            "        schedule: {every: 0}\n",
            "edigw.yaml:12 partners.acme.flows.articles.schedule.every: must be greater than 0",
            id="zero-interval",
        ),
        pytest.param(
            "        filename: '{partner}_{date}.csv'\n",
            "edigw.yaml:12 partners.acme.flows.articles.filename: unknown placeholder {date} "
            "in file-name pattern (allowed: flow, now, partner, seq)",
            id="unknown-filename-placeholder",
        ),
        pytest.param(
            "        filename: 'out/{seq}.csv'\n",
            "edigw.yaml:12 partners.acme.flows.articles.filename: file-name pattern "
            "'out/{seq}.csv' must give a plain file name (no folders)",
            id="filename-with-folder",
        ),
        pytest.param(
            "        filename: '{record[number]}.xml'\n",
            "edigw.yaml:7 partners.acme.flows.articles: file-name pattern '{record[number]}.xml' "
            "names record fields, which only a flow writing one file per record has: add "
            "split: record",
            id="record-field-without-split",
        ),
        pytest.param(
            "        split: record\n        filename: '{record}.xml'\n",
            "edigw.yaml:13 partners.acme.flows.articles.filename: unknown placeholder {record} "
            "in file-name pattern (allowed: flow, now, partner, seq; {record[FIELD]} with "
            "split: record)",
            id="whole-record-in-filename",
        ),
        pytest.param(
            "        split: invoice\n",
            "edigw.yaml:12 partners.acme.flows.articles.split: must be one of 'file' or "
            "'record', got 'invoice'",
            id="bad-split",
        ),
        pytest.param(
            "        timezone: Europe/Lutece\n",
            "edigw.yaml:12 partners.acme.flows.articles.timezone: unknown time zone "
            "'Europe/Lutece' (e.g. Europe/Paris, UTC)",
            id="bad-timezone",
        ),
        pytest.param(
            "        upload: {if_exists: overwrite}\n",
            "edigw.yaml:12 partners.acme.flows.articles.upload.if_exists: must be one of "
            "'fail', 'replace' or 'rename', got 'overwrite'",
            id="bad-if-exists",
        ),
        pytest.param(
            "        mapping: mappings/orders.yaml\n",
            "edigw.yaml:12 partners.acme.flows.articles.mapping: unknown key here (it is an "
            "option of another kind of entry)",
            id="inbound-option-on-outbound-flow",
        ),
    ],
)
def test_outbound_flow_errors(workdir: Path, extra: str, expected: str) -> None:
    assert problems_of(workdir, OUTBOUND + extra) == [expected]


def test_outbound_query_must_be_an_ecolix_list(workdir: Path) -> None:
    problems = problems_of(workdir, OUTBOUND.replace("articles.list", "orders.create"))
    assert problems == [
        "edigw.yaml:9 partners.acme.flows.articles.query.resource: must be one of "
        "'articles.list', 'stock.list', 'customers.list', 'quotes.list', 'orders.list', "
        "'order_states.list', 'purchase_orders.list', 'delivery_notes.list', "
        "'supplier_invoices.list', 'supplier_invoice_states.list' or 'suppliers.list', got "
        "'orders.create'"
    ]


def test_sftp_endpoint_needs_a_password_or_a_key(workdir: Path) -> None:
    text = HEAD + "sftp_endpoints:\n  acme: {host: h, username: u}\n"
    assert problems_of(workdir, text) == [
        "edigw.yaml:5 sftp_endpoints.acme: give a password or a key_file"
    ]


def test_sftp_key_file_must_exist(workdir: Path) -> None:
    text = HEAD + "sftp_endpoints:\n  acme:\n    host: h\n    username: u\n    key_file: k/id\n"
    assert problems_of(workdir, text) == [
        f"edigw.yaml:8 sftp_endpoints.acme.key_file: file not found ({workdir}/k/id)"
    ]


def test_all_problems_are_reported_at_once_in_line_order(workdir: Path) -> None:
    text = """\
ecolix:
  base_url: ftp://erp
  token: ${NOPE}
partners:
  acme:
    flows:
      orders:
        direction: inbound
        channel: {type: sftp, endpoint: ghost, path: /out}
        mapping: mappings/missing.yaml
        max_size: huge
      articles:
        direction: outbound
        query: {resource: articles.list}
        template: templates/articles.csv.j2
        channel: {type: local}
"""
    with pytest.raises(ConfigError) as caught:
        load_config(write(workdir, text), environ={})
    assert caught.value.problems == [
        "edigw.yaml:2 ecolix.base_url: must be an http:// or https:// URL, got 'ftp://erp'",
        "edigw.yaml:3 ecolix.token: environment variable NOPE is not set",
        "edigw.yaml:9 partners.acme.flows.orders.channel.endpoint: unknown SFTP endpoint "
        "'ghost' (sftp_endpoints: none declared)",
        f"edigw.yaml:10 partners.acme.flows.orders.mapping: file not found "
        f"({workdir}/mappings/missing.yaml)",
        "edigw.yaml:11 partners.acme.flows.orders.max_size: expected a size such as "
        "52428800, '512KB' or '50MB', got 'huge'",
        "edigw.yaml:16 partners.acme.flows.articles.channel.path: required key is missing",
    ]
    assert str(caught.value).splitlines() == [
        "edigw.yaml: 6 problems in the configuration:",
        *(f"  {problem}" for problem in caught.value.problems),
    ]


def test_a_single_problem_is_the_whole_message(workdir: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(workdir, HEAD + "  calls_per_minute: 0\n"), environ=ENV)
    assert str(caught.value) == "edigw.yaml:4 ecolix.calls_per_minute: must be greater than 0"


def test_missing_configuration_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"configuration file not found \(create one with"):
        load_config(tmp_path / "edigw.yaml", environ={})


def test_readiness_modes_each_take_their_own_option(workdir: Path) -> None:
    for readiness, expected in [
        ("{mode: min_age, seconds: 1m}", MinAgeReadiness(mode="min_age", seconds=60.0)),
        ("{mode: done_file, suffix: .done}", DoneFileReadiness(mode="done_file", suffix=".done")),
        ("{mode: stable, interval: 500ms}", StableReadiness(mode="stable", interval=0.5)),
    ]:
        config = load_config(
            write(workdir, FLOW + f"        readiness: {readiness}\n"), environ=ENV
        )
        assert config.inbound_flows()[0].readiness == expected


SHARED = (
    HEAD
    + """\
partners:
  acme:
    flows:
      orders:
        direction: inbound
        channel: {type: local, path: in}
        mapping: mappings/orders.yaml
        include: ["*.csv"]
      orders-again:
        direction: inbound
        channel: {type: local, path: ./in/}
        mapping: mappings/orders.yaml
        include: [INCLUDE]
      articles:
        direction: outbound
        query: {resource: articles.list}
        template: templates/articles.csv.j2
        channel: {type: local, path: OUTBOX}
"""
)


def test_two_inbound_flows_cannot_take_the_same_files(workdir: Path) -> None:
    text = SHARED.replace("INCLUDE", '"*.csv"').replace("OUTBOX", "out")
    assert problems_of(workdir, text) == [
        "edigw.yaml:14 partners.acme.flows.orders-again.channel: the same folder as "
        "acme/orders, with overlapping include patterns: a file would be taken by both flows "
        "(give each flow its own folder)"
    ]


def test_inbound_flows_may_share_a_folder_with_distinct_patterns(workdir: Path) -> None:
    text = SHARED.replace("INCLUDE", '"*.xml"').replace("OUTBOX", "out")
    config = load_config(write(workdir, text), environ=ENV)
    assert len(config.inbound_flows()) == 2


def test_an_export_cannot_write_into_an_inbox(workdir: Path) -> None:
    text = SHARED.replace("INCLUDE", '"*.xml"').replace("OUTBOX", "in")
    assert problems_of(workdir, text) == [
        "edigw.yaml:21 partners.acme.flows.articles.channel: writes into the folder "
        "acme/orders reads from: its files would come back in"
    ]


# --- E-invoice validation policy ----------------------------------------------------------

EINVOICES = (
    HEAD
    + """\
partners:
  suppliers:
    flows:
      invoices:
        direction: inbound
        channel: {type: local, path: in}
        mapping: mappings/orders.yaml
"""
)


def test_an_inbound_flow_has_no_validation_policy_unless_given(workdir: Path) -> None:
    flow = load_config(write(workdir, EINVOICES), environ=ENV).inbound_flows()[0]

    assert flow.validation is None


def test_a_validation_policy_keeps_the_defaults_it_does_not_name(workdir: Path) -> None:
    text = EINVOICES + "        validation: {br_fr: block}\n"

    flow = load_config(write(workdir, text), environ=ENV).inbound_flows()[0]

    assert flow.validation == ValidationPolicy(
        xsd=LayerMode.BLOCK, en16931=LayerMode.BLOCK, br_fr=LayerMode.BLOCK
    )


def test_a_validation_mode_must_be_block_warn_or_off(workdir: Path) -> None:
    text = EINVOICES + "        validation: {xsd: maybe}\n"

    [problem] = problems_of(workdir, text)

    assert problem.startswith("edigw.yaml:11 partners.suppliers.flows.invoices.validation.xsd:")
    assert "'block', 'warn' or 'off'" in problem
