"""The gateway configuration, ``edigw.yaml``: pydantic models, loading and error reporting.

Why it looks like this:

* The file is data with descriptions: every key is a pydantic field with a ``description``
  and ``extra="forbid"``, so a typo is an error, not a silently ignored key.
* Secrets never sit in the file: ``${NAME}`` is replaced from the environment *passed in*
  (the core never reads ``os.environ``), ``${NAME:-default}`` gives a fallback, ``$${X}``
  is a literal ``${X}``. Secret values are ``SecretStr`` and never printed.
* Every problem is reported at once, each with its line:
  ``edigw.yaml:14 partners.acme.flows.orders.mapping: file not found (...)``.
  Line numbers come from the PyYAML node marks, kept beside the data while it is built.
* Relative paths are relative to the folder of the configuration file, not the current
  directory, so ``edigw run -c /etc/edigw/edigw.yaml`` behaves the same from anywhere.

Entry point: :func:`load_config`.
"""

from __future__ import annotations

import difflib
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from edigw.config.alerts import (
    AlertSettings,
    EmailAlerts,
    WebhookAlert,
)
from edigw.config.archive import ArchiveSettings, FolderArchiveSettings, PostgresArchiveSettings
from edigw.config.base import _Model
from edigw.config.channels import (
    DEFAULT_KNOWN_HOSTS_DIR,
    LocalChannel,
    SftpChannel,
    SftpEndpoint,
    SftpTimeouts,
)
from edigw.config.ecolix import (
    DEFAULT_CALLS_PER_MINUTE,
    EcolixSettings,
    EcolixTimeouts,
    RetryPolicy,
)
from edigw.config.inbound import (
    ALWAYS_EXCLUDED,
    DEFAULT_MAX_FILES_PER_POLL,
    DEFAULT_MAX_SIZE,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_STABLE_INTERVAL,
    AfterDelete,
    AfterLeave,
    AfterMove,
    DoneFileReadiness,
    FlowLimits,
    InboundFlow,
    MinAgeReadiness,
    StableReadiness,
)
from edigw.config.outbound import (
    CronSchedule,
    EverySchedule,
    ExportQuery,
    OutboundFlow,
    UploadPolicy,
)
from edigw.config.security import SecuritySettings
from edigw.config.service import (
    DEFAULT_STOP_TIMEOUT,
    HttpSettings,
    NodeSettings,
    SupervisorSettings,
    parse_listen,
)
from edigw.config.values import (
    ConfigPath,
    Name,
    parse_duration,
    parse_size,
)
from edigw.errors import ConfigError
from edigw.shipped import shipped_folder

__all__ = [
    "ALWAYS_EXCLUDED",
    "DEFAULT_CALLS_PER_MINUTE",
    "DEFAULT_CONFIG_NAME",
    "DEFAULT_MAX_FILES_PER_POLL",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_STABLE_INTERVAL",
    "DEFAULT_STOP_TIMEOUT",
    "AfterDelete",
    "AfterLeave",
    "AfterMove",
    "AlertSettings",
    "CronSchedule",
    "DoneFileReadiness",
    "EcolixSettings",
    "EcolixTimeouts",
    "EmailAlerts",
    "EverySchedule",
    "ExportQuery",
    "FlowLimits",
    "FolderArchiveSettings",
    "GatewayConfig",
    "HttpSettings",
    "InboundFlow",
    "LocalChannel",
    "MinAgeReadiness",
    "NodeSettings",
    "OutboundFlow",
    "Partner",
    "PostgresArchiveSettings",
    "RetryPolicy",
    "SecuritySettings",
    "SftpChannel",
    "SftpEndpoint",
    "SftpTimeouts",
    "StableReadiness",
    "SupervisorSettings",
    "UploadPolicy",
    "WebhookAlert",
    "load_config",
    "parse_duration",
    "parse_listen",
    "parse_size",
    "starter_config_text",
    "write_starter",
]

# --- Named defaults ----------------------------------------------------------------------

DEFAULT_CONFIG_NAME = "edigw.yaml"
DEFAULT_DATA_DIR = "./edigw-data"
DEFAULT_JOURNAL_FILE = "journal.sqlite"


# --- Models ------------------------------------------------------------------------------


Flow = Annotated[InboundFlow | OutboundFlow, Field(discriminator="direction")]


class Partner(_Model):
    """A trading partner and its flows, each addressed as ``partner/flow``."""

    flows: dict[Name, Flow] = Field(
        default_factory=dict, description="The partner's flows by name."
    )


class GatewayConfig(_Model):
    """The whole of ``edigw.yaml``."""

    ecolix: EcolixSettings = Field(description="Ecolix API location, token and call budget.")
    data_dir: ConfigPath = Field(
        default=Path(DEFAULT_DATA_DIR),
        validate_default=True,
        description="Journal, archive of every file, staging and work folders.",
    )
    journal: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the journal; default sqlite:///<data_dir>/journal.sqlite.",
    )
    archive: ArchiveSettings | None = Field(
        default=None,
        description="Where every original is archived: {kind: folder, path: ...} (a folder "
        "every node mounts) or {kind: postgresql} (the journal database); default: "
        "<data_dir>/archive, read by this node only.",
    )
    retry: RetryPolicy = Field(
        default_factory=RetryPolicy, description="Retry policy after temporary Ecolix errors."
    )
    supervisor: SupervisorSettings = Field(
        default_factory=SupervisorSettings,
        description="Restarts of crashed loops, when to give up, and how long a stop may take.",
    )
    alerts: AlertSettings = Field(
        default_factory=AlertSettings,
        description="Alerts by webhook and e-mail when files fail, loops crash or the call "
        "budget stays used up; grouped into digests.",
    )
    nodes: NodeSettings = Field(
        default_factory=NodeSettings,
        description="Several nodes on one PostgreSQL journal: how soon a dead node's flows "
        "are taken over.",
    )
    http: HttpSettings = Field(
        default_factory=HttpSettings,
        description="Health and metrics endpoints for monitoring (off unless listen is set).",
    )
    processes: Literal[1, 2, "auto"] = Field(
        default=1,
        description="1 (the default): `edigw run` is one process. 2: its senders run in a "
        "second process, so that taking files in and sending use two cores (faster on busy "
        "flows, about twice the memory). auto: 2 when edigw may use two cores or more, else "
        "1. `edigw run --processes` overrides it.",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="How `edigw run` logs: text lines, or json (one object a line, with the "
        "flow, file and document ids); `edigw run --log-format` overrides it.",
    )
    security: SecuritySettings = Field(
        default_factory=SecuritySettings,
        description="Who may read the files edigw keeps (archive, journal, staging, reports).",
    )
    sftp_endpoints: dict[Name, SftpEndpoint] = Field(
        default_factory=dict, description="Partner SFTP servers by name."
    )
    partners: dict[Name, Partner] = Field(
        default_factory=dict, description="Trading partners by name."
    )
    settings: dict[Name, str] = Field(
        default_factory=dict,
        description=(
            "Values templates need that Ecolix does not hold (your company's name and "
            "identifiers...), read as settings.NAME; a flow's own settings: win over these."
        ),
    )
    # Secrets whose environment variable was not set when the file was loaded with
    # ``secrets_optional`` (where -> variable): commands that only read the journal run
    # without them; those that need them call ``require_secrets``.
    _missing_secrets: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("journal")
    @classmethod
    def _journal_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(value)
        except ArgumentError:
            msg = f"not a database URL: {value!r} (e.g. postgresql+psycopg://host/db)"
            raise ValueError(msg) from None
        return value

    @field_validator("archive")
    @classmethod
    def _archive_with_its_journal(
        cls, value: FolderArchiveSettings | PostgresArchiveSettings | None, info: ValidationInfo
    ) -> FolderArchiveSettings | PostgresArchiveSettings | None:
        if isinstance(value, PostgresArchiveSettings):
            journal = info.data.get("journal") or ""
            if not journal.startswith("postgresql"):
                msg = (
                    "kind postgresql keeps the archive in the journal database: set journal: "
                    "to a PostgreSQL URL, or use kind folder"
                )
                raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _name_flows(self) -> GatewayConfig:
        for partner_name, partner in self.partners.items():
            for flow_name, flow in partner.flows.items():
                flow._partner = partner_name
                flow._name = flow_name
                if isinstance(flow, OutboundFlow):
                    flow._shared_settings = dict(self.settings)
        return self

    @property
    def journal_url(self) -> str:
        """The journal's SQLAlchemy URL (SQLite in ``data_dir`` unless ``journal`` is set)."""
        if self.journal:
            return self.journal
        return f"sqlite:///{self.data_dir / DEFAULT_JOURNAL_FILE}"

    def flows(self) -> list[InboundFlow | OutboundFlow]:
        """Every flow, in file order."""
        return [flow for partner in self.partners.values() for flow in partner.flows.values()]

    def flow(self, name: str) -> InboundFlow | OutboundFlow:
        """The flow addressed as ``partner/flow``; ``ConfigError`` naming the known ones."""
        partner_name, _, flow_name = name.partition("/")
        partner = self.partners.get(partner_name)
        if partner is not None and flow_name in partner.flows:
            return partner.flows[flow_name]
        known = ", ".join(flow.id for flow in self.flows()) or "none configured"
        msg = f"unknown flow {name!r} (flows: {known})"
        raise ConfigError(msg)

    def require_secrets(self, why: str) -> None:
        """Refuse (``ConfigError``, one line) when a secret was left unset at loading.

        ``why`` says what needs it: ``ECOLIX_TOKEN is not set: replay sends documents to
        Ecolix (edigw.yaml:4 ecolix.token)``.
        """
        if self._missing_secrets:
            names = " and ".join(sorted(set(self._missing_secrets.values())))
            verb = "is" if len(set(self._missing_secrets.values())) == 1 else "are"
            where = "; ".join(self._missing_secrets)
            msg = f"{names} {verb} not set: {why} ({where})"
            raise ConfigError(msg)

    def inbound_flows(self) -> list[InboundFlow]:
        """The flows that take partner files in, in file order."""
        return [flow for flow in self.flows() if isinstance(flow, InboundFlow)]

    def outbound_flows(self) -> list[OutboundFlow]:
        """The flows that export Ecolix data, in file order."""
        return [flow for flow in self.flows() if isinstance(flow, OutboundFlow)]


# --- Loading -----------------------------------------------------------------------------

_INTERPOLATION_RE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{[^}]*\}?")

#: Union tags pydantic inserts into error locations; they are not keys of the file.
_UNION_TAGS = frozenset(
    {
        "inbound",
        "outbound",
        "local",
        "sftp",
        "stable",
        "min_age",
        "done_file",
        "move",
        "delete",
        "leave",
        "every-schedule",
        "cron-schedule",
        "folder",
        "postgresql",
    }
)

Path_ = tuple[str | int, ...]


class _Built:
    """The plain data of a YAML file plus the line of every key, and problems on the way."""

    def __init__(self, file_name: str, *, secrets_optional: bool = False) -> None:
        self.file_name = file_name
        self.lines: dict[Path_, int] = {}
        self.problems: list[tuple[int, str]] = []
        self.secrets_optional = secrets_optional
        #: ${NAME} left unset, when secrets are optional: (line, path, NAME)
        self.unset: list[tuple[int, Path_, str]] = []

    def problem(self, line: int, path: Path_, message: str) -> None:
        self.problems.append((line, _format_problem(self.file_name, line, path, message)))


def _format_path(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _format_problem(file_name: str, line: int | None, path: Sequence[str | int], msg: str) -> str:
    where = file_name if line is None else f"{file_name}:{line}"
    dotted = _format_path(path)
    return f"{where} {dotted}: {msg}" if dotted else f"{where}: {msg}"


def _interpolate(
    text: str, environ: Mapping[str, str], built: _Built, line: int, path: Path_
) -> str:
    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "$${":
            return "${"
        name = match.group(1)
        if name is None:
            built.problem(
                line,
                path,
                f"invalid reference {whole!r}: write ${{NAME}} or ${{NAME:-default}} "
                "(and $${ for a literal ${)",
            )
            return whole
        if name in environ:
            return environ[name]
        default = match.group(2)
        if default is not None:
            return default
        if built.secrets_optional:
            built.unset.append((line, path, name))  # a problem unless the key is a secret
        else:
            built.problem(line, path, f"environment variable {name} is not set")
        return ""

    return _INTERPOLATION_RE.sub(replace, text)


def interpolated(text: str, environ: Mapping[str, str]) -> str | None:
    """``text`` with ``${NAME}``, ``${NAME:-default}`` and ``$${`` read as the loader reads
    them; ``None`` when a reference is unset or malformed (for a reader of the raw file,
    such as ``edigw status`` while the file does not load)."""
    built = _Built("")
    value = _interpolate(text, environ, built, 0, ())
    return None if built.problems else value


def _build(
    node: yaml.Node,
    constructor: yaml.constructor.SafeConstructor,
    environ: Mapping[str, str],
    built: _Built,
    path: Path_,
) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                built.problem(key_line, path, "YAML merge keys (<<) are not supported")
                continue
            key = constructor.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | bool | float) or key is None:
                built.problem(key_line, path, "keys must be plain names")
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in result:
                built.problem(key_line, (*path, key), "duplicate key")
                continue
            built.lines[(*path, key)] = key_line
            result[key] = _build(value_node, constructor, environ, built, (*path, key))
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item_node in enumerate(node.value):
            built.lines[(*path, index)] = item_node.start_mark.line + 1
            items.append(_build(item_node, constructor, environ, built, (*path, index)))
        return items
    value = constructor.construct_object(node, deep=True)
    if isinstance(value, str) and "$" in value:
        return _interpolate(value, environ, built, line, path)
    return value


def _parse_yaml(text: str, environ: Mapping[str, str], built: _Built) -> Any:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _build(node, loader, environ, built, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        reason = exc.problem or str(exc)
        built.problem(line, (), f"not valid YAML: {reason}")
        return None
    finally:
        loader.dispose()


def _locate(data: Any, loc: Sequence[str | int], built: _Built) -> tuple[Path_, int | None]:
    """Turn a pydantic error location into the file's key path and the line to show."""
    path: list[str | int] = []
    line: int | None = built.lines.get((), None)
    node = data
    missing = False
    for part in loc:
        if part == "[key]":
            continue
        if missing:
            path.append(part)
            continue
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            path.append(part)
            node = node[part]
            line = built.lines.get(tuple(path), line)
        elif isinstance(part, str) and part in _UNION_TAGS:
            continue
        else:
            missing = True
            path.append(part)
    return tuple(path), line


_PLAIN_MESSAGES = {
    "missing": "required key is missing",
    "union_tag_not_found": "required key is missing",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a text value",
    "dict_type": "must be a mapping of keys",
    "model_type": "must be a mapping of keys",
    "model_attributes_type": "must be a mapping of keys",
    "list_type": "must be a list",
}
_BOUND_MESSAGES = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "string_too_short": "must not be empty",
}


def _all_field_names() -> set[str]:
    """Every key the file may use anywhere, for "did you mean" suggestions."""
    names: set[str] = set()
    pending: list[type[_Model]] = [_Model]
    while pending:
        model = pending.pop()
        names.update(model.model_fields)
        pending.extend(model.__subclasses__())
    return names


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = error.get("input")
    if kind in _PLAIN_MESSAGES:
        message = _PLAIN_MESSAGES[kind]
        if kind != "missing" and kind != "union_tag_not_found":
            message += f", got {got!r}"
        return message
    if kind in _BOUND_MESSAGES:
        plain = {
            k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in ctx.items()
        }
        return _BOUND_MESSAGES[kind].format(**plain)
    if kind == "extra_forbidden":
        key = error["loc"][-1] if error["loc"] else ""
        names = _all_field_names()
        if key in names:
            return "unknown key here (it is an option of another kind of entry)"
        close = difflib.get_close_matches(str(key), sorted(names), n=1)
        return f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"
    if kind == "union_tag_invalid":
        tags = str(ctx.get("expected_tags", ""))
        return f"{ctx.get('tag')!r} is not one of {tags}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, got {error.get('input')!r}"
    if kind == "string_pattern_mismatch":
        return "names may use letters, digits, '-', '_', '.', '+' and start with a letter or digit"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message


def _locate_tag_error(error: Mapping[str, Any], path: Path_) -> Path_:
    if error["type"] in {"union_tag_not_found", "union_tag_invalid"}:
        discriminator = str((error.get("ctx") or {}).get("discriminator", "")).strip("'")
        if discriminator and discriminator.isidentifier():
            return (*path, discriminator)
    return path


def _default_known_hosts(data: dict[str, Any]) -> None:
    endpoints = data.get("sftp_endpoints")
    if isinstance(endpoints, dict):
        for name, endpoint in endpoints.items():
            if isinstance(endpoint, dict) and "known_hosts" not in endpoint:
                endpoint["known_hosts"] = f"{DEFAULT_KNOWN_HOSTS_DIR}/{name}"


def _folder_of(channel: LocalChannel | SftpChannel) -> tuple[str, ...]:
    if isinstance(channel, LocalChannel):
        return ("local", str(channel.path))
    return ("sftp", channel.endpoint, str(PurePosixPath(channel.path)))


def _shared_folders(config: GatewayConfig) -> Iterator[tuple[Path_, str]]:
    """Two flows on one folder would both take (or overwrite) the same files.

    Inbound flows may share a folder only with include patterns that tell their files apart
    (``*.csv`` beside ``*.xml``); an export never writes into a folder a flow reads from.
    """
    readers: dict[tuple[str, ...], InboundFlow] = {}
    for flow in config.inbound_flows():
        folder = _folder_of(flow.channel)
        other = readers.get(folder)
        if other is None:
            readers[folder] = flow
            continue
        overlap = set(flow.include) & set(other.include) or "*" in flow.include + other.include
        if overlap:
            yield (
                ("partners", flow.partner, "flows", flow.name, "channel"),
                f"the same folder as {other.id}, with overlapping include patterns: a file "
                "would be taken by both flows (give each flow its own folder)",
            )
    for export in config.outbound_flows():
        reader = readers.get(_folder_of(export.channel))
        if reader is not None:
            yield (
                ("partners", export.partner, "flows", export.name, "channel"),
                f"writes into the folder {reader.id} reads from: its files would come back in",
            )


def _unwrap(annotation: Any) -> Any:
    """``Annotated[X, ...]`` → X; ``X | None`` → X."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            kept = [a for a in get_args(annotation) if a is not type(None)]
            if len(kept) != 1:
                return annotation
            annotation = kept[0]
        else:
            return annotation


def _is_secret(path: Path_) -> bool:
    """Whether the key at ``path`` is a secret (``SecretStr``), from the models' types."""
    annotation: Any = GatewayConfig
    for part in path:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return False
            annotation = field.annotation
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            return False
    return _unwrap(annotation) is SecretStr


def _set_aside_secrets(built: _Built) -> dict[str, str]:
    """Unset ``${NAME}`` in secret keys, as ``{where: NAME}``; anywhere else they stay
    problems (a journal URL or a folder from the environment is needed by every command)."""
    missing = {}
    for line, where, name in built.unset:
        if _is_secret(where):
            missing[f"{built.file_name}:{line} {_format_path(where)}"] = name
        else:
            built.problem(line, where, f"environment variable {name} is not set")
    return missing


def load_config(
    path: Path, *, environ: Mapping[str, str], secrets_optional: bool = False
) -> GatewayConfig:
    """Read, interpolate and validate ``edigw.yaml``; every problem at once in ``ConfigError``.

    ``environ`` is the only source of ``${NAME}`` values (the CLI passes ``os.environ``).

    With ``secrets_optional``, a secret (the Ecolix token, SFTP passwords) whose variable is
    not set is no problem: commands that only read the journal (``status``, ``show``,
    ``files``...) run without ``ECOLIX_TOKEN``; a command that needs a secret calls
    :meth:`GatewayConfig.require_secrets` first.
    """
    file_name = path.name
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        msg = f"{path}: configuration file not found (create one with `edigw init DIR`)"
        raise ConfigError(msg) from None
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot read the configuration file: {exc}"
        raise ConfigError(msg) from None

    built = _Built(file_name, secrets_optional=secrets_optional)
    data = _parse_yaml(text, environ, built)
    missing_secrets = _set_aside_secrets(built)
    if data is None and not built.problems:
        built.problem(1, (), "the file is empty")
    elif data is not None and not isinstance(data, dict):
        built.problem(1, (), "the top level must be a mapping of keys (ecolix:, partners:, ...)")
    if isinstance(data, dict):
        _default_known_hosts(data)
        endpoints = data.get("sftp_endpoints")
        context = {
            "base_dir": path.resolve().parent,
            "endpoints": set(endpoints) if isinstance(endpoints, dict) else set(),
        }
        try:
            config = GatewayConfig.model_validate(data, context=context)
        except ValidationError as exc:
            for error in exc.errors():
                where, line = _locate(data, error["loc"], built)
                where = _locate_tag_error(error, where)
                line = built.lines.get(where, line)
                built.problems.append(
                    (line or 0, _format_problem(file_name, line, where, _message(error)))
                )
        else:
            config._missing_secrets.update(missing_secrets)
            for where, message in _shared_folders(config):
                line = built.lines.get(where)
                built.problems.append((line or 0, _format_problem(file_name, line, where, message)))
            if not built.problems:
                return config
    problems = [text for _, text in sorted(built.problems, key=lambda item: item[0])]
    if len(problems) == 1:
        raise ConfigError(problems[0], problems=problems)
    summary = f"{file_name}: {len(problems)} problems in the configuration:\n" + "\n".join(
        f"  {problem}" for problem in problems
    )
    raise ConfigError(summary, problems=problems)


# --- Starter configuration (`edigw init`) ------------------------------------------------

#: Beside the package, in ``edigw/`` (where the wheel ships it), not in ``edigw/config/``.
STARTER_TEMPLATE = "starter.yaml"


def starter_config_text() -> str:
    """The commented starter ``edigw.yaml`` shipped with edigw."""
    return (Path(__file__).parent.parent / STARTER_TEMPLATE).read_text(encoding="utf-8")


def _starter_copies() -> Iterator[tuple[Path, str]]:
    for name in ("mappings", "layouts", "templates"):
        folder = shipped_folder(name)
        if folder is not None:
            yield folder, name


def write_starter(directory: Path, *, force: bool = False) -> list[Path]:
    """Write a starter ``edigw.yaml`` plus the shipped mappings, layouts and templates.

    Returns the paths written. Refuses to overwrite an existing ``edigw.yaml`` unless
    ``force`` is set; existing mapping and template files are never overwritten.
    """
    target = directory / DEFAULT_CONFIG_NAME
    if target.exists() and not force:
        msg = f"{target} already exists (use --force to overwrite it)"
        raise ConfigError(msg)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        target.write_text(starter_config_text(), encoding="utf-8")
        written = [target]
        for source, name in _starter_copies():
            for file in sorted(source.rglob("*")):
                if not file.is_file() or "__pycache__" in file.parts:
                    continue
                destination = directory / name / file.relative_to(source)
                if destination.exists():
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, destination)
                written.append(destination)
    except OSError as exc:
        msg = f"cannot write the starter configuration in {directory}: {exc}"
        raise ConfigError(msg) from exc
    return written
