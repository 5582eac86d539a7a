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
import string
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    Discriminator,
    Field,
    PrivateAttr,
    SecretStr,
    Tag,
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
from edigw.config.base import _FlowBase, _Model
from edigw.config.ecolix import (
    DEFAULT_CALLS_PER_MINUTE,
    EcolixSettings,
    EcolixTimeouts,
    RetryPolicy,
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
    Duration,
    Encoding,
    ExistingFile,
    InboundEncoding,
    Name,
    RelativeFolder,
    Size,
    parse_duration,
    parse_size,
)
from edigw.errors import ConfigError
from edigw.formats import limits as budget
from edigw.outbound import naming
from edigw.shipped import shipped_folder
from edigw.validation.policy import ValidationPolicy

__all__ = [
    "DEFAULT_CALLS_PER_MINUTE",
    "DEFAULT_CONFIG_NAME",
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
DEFAULT_SFTP_PORT = 22
DEFAULT_SFTP_CONNECT_TIMEOUT = 10.0
DEFAULT_SFTP_OPERATION_TIMEOUT = 30.0
DEFAULT_SFTP_KEEPALIVE = 15.0
DEFAULT_KNOWN_HOSTS_DIR = "known_hosts"
DEFAULT_SFTP_MAX_DEPTH = 1
DEFAULT_STABLE_INTERVAL = 2.0
DEFAULT_MIN_AGE = 10.0
DEFAULT_DONE_SUFFIX = ".ok"
DEFAULT_AFTER_MOVE_TO = "done"
DEFAULT_ERROR_FOLDER = "error"
DEFAULT_ENCODING = "auto"
DEFAULT_MAX_SIZE = 50 * 1024 * 1024
DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_MAX_FILES_PER_POLL = 100
#: Names that are never picked up, whatever the flow's include/exclude say: files still
#: being written by partners' tools, and hidden files.
ALWAYS_EXCLUDED = ("*.tmp", "*.part", ".*")
DEFAULT_FILENAME_PATTERN = "{partner}_{flow}_{now:%Y%m%d-%H%M%S}_{seq:05d}.csv"
DEFAULT_TIMEZONE = "Europe/Paris"
DEFAULT_EXPORT_EVERY = 900.0
DEFAULT_OUTBOUND_ENCODING = "utf-8"
DEFAULT_TEMP_PREFIX = "."
DEFAULT_TEMP_SUFFIX = ".part"
#: Placeholders a file-name pattern may use (``{now:%Y%m%d}``, ``{seq:05d}``).
FILENAME_FIELDS = frozenset({"partner", "flow", "now", "seq"})
#: Ecolix list operations an export may query (``edigw/ecolix/openapi.yaml``).
ExportResource = Literal[
    "articles.list",
    "stock.list",
    "customers.list",
    "quotes.list",
    "orders.list",
    "order_states.list",
    "purchase_orders.list",
    "delivery_notes.list",
    "supplier_invoices.list",
    "supplier_invoice_states.list",
    "suppliers.list",
]


# --- Models ------------------------------------------------------------------------------


class SftpTimeouts(_Model):
    """SFTP timeouts."""

    connect: Duration = Field(
        default=DEFAULT_SFTP_CONNECT_TIMEOUT, description="Seconds to connect and authenticate."
    )
    operation: Duration = Field(
        default=DEFAULT_SFTP_OPERATION_TIMEOUT,
        description="Seconds one SFTP operation (list, read, rename) may take.",
    )


class SftpEndpoint(_Model):
    """One partner SFTP server and how to log in to it."""

    host: str = Field(min_length=1, description="Host name or IP address of the SFTP server.")
    port: int = Field(default=DEFAULT_SFTP_PORT, ge=1, le=65535, description="TCP port.")
    username: str = Field(min_length=1, description="Login name.")
    password: SecretStr | None = Field(
        default=None, description="Password, from the environment: ${PARTNER_SFTP_PASSWORD}."
    )
    key_file: ExistingFile | None = Field(
        default=None, description="Private key file (ed25519, ECDSA or RSA)."
    )
    key_passphrase: SecretStr | None = Field(
        default=None, description="Passphrase of the key, from the environment."
    )
    key_passphrase_file: ExistingFile | None = Field(
        default=None, description="File holding the passphrase of the key (a mounted secret)."
    )
    known_hosts: ConfigPath = Field(
        description="This endpoint's known_hosts file (strict checking; pin with `edigw sftp "
        "trust`). Default: known_hosts/<endpoint name>."
    )
    timeouts: SftpTimeouts = Field(
        default_factory=SftpTimeouts, description="Connect and operation timeouts."
    )
    keepalive: Duration = Field(
        default=DEFAULT_SFTP_KEEPALIVE, description="Seconds between SSH keepalive packets."
    )

    @model_validator(mode="after")
    def _credentials(self) -> SftpEndpoint:
        if self.password is None and self.key_file is None:
            msg = "give a password or a key_file"
            raise ValueError(msg)
        if self.key_passphrase is not None and self.key_passphrase_file is not None:
            msg = "give key_passphrase or key_passphrase_file, not both"
            raise ValueError(msg)
        return self


class LocalChannel(_Model):
    """A folder on this machine (or a mounted share)."""

    type: Literal["local"] = Field(description="A local folder.")
    path: ConfigPath = Field(description="The folder files are picked up from or written to.")


def _declared_endpoint(value: str, info: ValidationInfo) -> str:
    context = info.context
    if isinstance(context, Mapping) and "endpoints" in context:
        declared = sorted(context["endpoints"])
        if value not in declared:
            known = ", ".join(declared) if declared else "none declared"
            msg = f"unknown SFTP endpoint {value!r} (sftp_endpoints: {known})"
            raise ValueError(msg)
    return value


class SftpChannel(_Model):
    """A folder on a partner's SFTP server declared under ``sftp_endpoints``."""

    type: Literal["sftp"] = Field(description="A remote SFTP folder.")
    endpoint: Annotated[str, AfterValidator(_declared_endpoint)] = Field(
        description="Name of an entry of sftp_endpoints."
    )
    path: str = Field(min_length=1, description="Remote folder (POSIX path on the server).")
    recursive: bool = Field(default=False, description="Also look into sub-folders.")
    max_depth: int = Field(
        default=DEFAULT_SFTP_MAX_DEPTH,
        ge=1,
        description="How deep to descend when recursive (1 = direct sub-folders).",
    )


Channel = Annotated[LocalChannel | SftpChannel, Field(discriminator="type")]


class StableReadiness(_Model):
    """Ready when size and modification time are unchanged across two looks."""

    mode: Literal["stable"] = Field(description="Size and mtime stable across two looks.")
    interval: Duration = Field(
        default=DEFAULT_STABLE_INTERVAL, description="Seconds between the two looks."
    )


class MinAgeReadiness(_Model):
    """Ready once the file is old enough."""

    mode: Literal["min_age"] = Field(description="Ready once last modified long enough ago.")
    seconds: Duration = Field(
        default=DEFAULT_MIN_AGE, description="Minimum age since last modification."
    )


class DoneFileReadiness(_Model):
    """Ready when the partner has written a companion file (``NAME.ok``)."""

    mode: Literal["done_file"] = Field(description="Ready when NAME+suffix exists.")
    suffix: str = Field(
        default=DEFAULT_DONE_SUFFIX, min_length=1, description="Suffix of the done file."
    )


Readiness = Annotated[
    StableReadiness | MinAgeReadiness | DoneFileReadiness, Field(discriminator="mode")
]


class AfterMove(_Model):
    """Move the source into a folder once its outcome is committed."""

    action: Literal["move"] = Field(description="Move the source file.")
    to: RelativeFolder = Field(
        default=DEFAULT_AFTER_MOVE_TO, description="Folder, relative to the channel path."
    )


class AfterDelete(_Model):
    """Delete the source once its outcome is committed (the archive keeps a copy)."""

    action: Literal["delete"] = Field(description="Delete the source file.")


class AfterLeave(_Model):
    """Leave the source where it is; the journal remembers it so it is not taken twice."""

    action: Literal["leave"] = Field(description="Leave the source file in place.")


After = Annotated[AfterMove | AfterDelete | AfterLeave, Field(discriminator="action")]


class FlowLimits(_Model):
    """What one file may cost the readers (``edigw.formats.limits``): a file over a limit
    fails alone, named, with its size and the limit; the gateway goes on."""

    max_cells: int = Field(
        default=budget.MAX_CELLS,
        gt=0,
        description="Excel: rows x columns of the area a sheet's cells span (read densely).",
    )
    max_value_chars: int = Field(
        default=budget.MAX_VALUE_CHARS,
        gt=0,
        description="One value: a CSV field, an XML text or attribute, an Excel cell.",
    )
    max_line_chars: int = Field(
        default=budget.MAX_LINE_CHARS,
        gt=0,
        description="One line of a CSV or flat file.",
    )
    max_expanded_bytes: Size = Field(
        default=budget.MAX_EXPANDED_BYTES,
        description="Excel: the workbook uncompressed, and the text it repeats from shared strings.",
    )
    max_document_bytes: Size = Field(
        default=budget.MAX_DOCUMENT_BYTES,
        description="XML: one document element (an order and what it holds).",
    )
    max_document_tags: int = Field(
        default=budget.MAX_DOCUMENT_TAGS,
        gt=0,
        description="XML: tags in one document element (its tree is built in memory).",
    )
    max_lines_per_document: int = Field(
        default=budget.MAX_LINES_PER_DOCUMENT,
        gt=0,
        description="Records of one document (an order's lines); a larger one fails before it is built.",
    )
    max_seconds: Duration = Field(
        default=budget.MAX_SECONDS,
        gt=0,
        description="Seconds to read and map one file (or '5m').",
    )
    control_characters: Literal["refuse", "allow"] = Field(
        default=budget.CONTROL_CHARACTERS,
        description="NUL and other C0 control characters (tab, CR, LF aside): refuse the file, or allow them.",
    )

    def reader_limits(self) -> budget.ReaderLimits:
        """The value object the readers take."""
        return budget.ReaderLimits(**self.model_dump())


class InboundFlow(_FlowBase):
    """Partner files picked up from a channel, mapped, and sent to Ecolix."""

    direction: Literal["inbound"] = Field(description="Files come in from the partner.")
    channel: Channel = Field(description="Where the files are picked up.")
    mapping: ExistingFile = Field(description="The mapping file (mappings/*.yaml).")
    include: list[str] = Field(
        default_factory=lambda: ["*"], description="Glob patterns of names to pick up."
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Glob patterns of names to ignore; *.tmp, *.part and dotfiles always are.",
    )
    readiness: Readiness = Field(
        default_factory=lambda: StableReadiness(mode="stable"),
        description="When a file counts as completely written.",
    )
    after: After = Field(
        default_factory=lambda: AfterMove(action="move"),
        description="What to do with the source once its outcome is committed.",
    )
    error_folder: RelativeFolder = Field(
        default=DEFAULT_ERROR_FOLDER,
        description="Where failed files and their NAME.error.txt go, relative to the channel path.",
    )
    duplicates: Literal["skip", "process"] = Field(
        default="skip",
        description=(
            "skip: a file with the same bytes as one this flow already received is journalled "
            "skipped_duplicate (to resend what failed, replay the earlier file); process: it "
            "is posted again as new, under new idempotency keys."
        ),
    )
    ordered: bool = Field(
        default=False,
        description=(
            "true: a file's documents reach Ecolix strictly in file order, one at a time; "
            "false: in file order per business key only, documents of distinct keys sent "
            "concurrently."
        ),
    )
    encoding: InboundEncoding = Field(
        default=DEFAULT_ENCODING,
        description="Text encoding for readers that take one; auto detects UTF-8/cp1252.",
    )
    max_size: Size = Field(
        default=DEFAULT_MAX_SIZE, description="Larger files are refused (bytes, or '50MB')."
    )
    poll_interval: Duration = Field(
        default=DEFAULT_POLL_INTERVAL, description="Seconds between rescans of the channel."
    )
    max_files_per_poll: int = Field(
        default=DEFAULT_MAX_FILES_PER_POLL,
        ge=1,
        description=(
            "At most this many files per scan, oldest first; after a full batch the next "
            "scan follows at once, without waiting poll_interval."
        ),
    )
    limits: FlowLimits = Field(
        default_factory=FlowLimits,
        description="What one file may cost the readers (sizes, time, control characters).",
    )
    validation: ValidationPolicy | None = Field(
        default=None,
        description=(
            "E-invoice flows: what each validation layer does to a file (block, warn, off); "
            "unset, they use xsd: block, en16931: block, br_fr: warn. Other flows ignore it."
        ),
    )

    @property
    def skipped_patterns(self) -> tuple[str, ...]:
        """Every glob that excludes a name: the flow's own plus those always skipped."""
        return (*ALWAYS_EXCLUDED, *self.exclude)


class ExportQuery(_Model):
    """The Ecolix list an export reads."""

    resource: ExportResource = Field(description="Ecolix list operation, e.g. articles.list.")
    filters: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Filters named after the list's query parameters: one value (status: confirmed), "
            "any of several (status: [confirmed, prepared]) or none of them "
            "(status: {not: [cancelled, invoiced]}); values are checked against the contract."
        ),
    )

    @field_validator("filters")
    @classmethod
    def _known_filters(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from edigw.outbound.query import filter_problems

        resource = info.data.get("resource")
        problems = filter_problems(resource, value) if resource else []
        if problems:
            raise ValueError("; ".join(problems))
        return value


class EverySchedule(_Model):
    """Run at a fixed interval."""

    every: Duration = Field(gt=0, description="Seconds (or '15m') between runs.")


class CronSchedule(_Model):
    """Run on a cron expression, in the flow's time zone."""

    cron: str = Field(description="Five-field cron expression, e.g. '*/15 * * * *'.")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            msg = f"not a valid cron expression: {value!r}"
            raise ValueError(msg)
        return value


def _schedule_kind(value: Any) -> str | None:
    if isinstance(value, Mapping):
        if "cron" in value:
            return "cron-schedule"
        return "every-schedule"
    if isinstance(value, CronSchedule):
        return "cron-schedule"
    if isinstance(value, EverySchedule):
        return "every-schedule"
    return None


Schedule = Annotated[
    Annotated[EverySchedule, Tag("every-schedule")] | Annotated[CronSchedule, Tag("cron-schedule")],
    Discriminator(_schedule_kind),
]


class UploadPolicy(_Model):
    """How a rendered file is put into place so that no partner ever reads half a file."""

    temp_prefix: str = Field(
        default=DEFAULT_TEMP_PREFIX, description="Prefix of the temporary name while writing."
    )
    temp_suffix: str = Field(
        default=DEFAULT_TEMP_SUFFIX, description="Suffix of the temporary name while writing."
    )
    if_exists: Literal["fail", "replace", "rename"] = Field(
        default="fail",
        description="When the final name exists: fail, replace it, or add a counter.",
    )
    done_file: str | None = Field(
        default=None, description="Suffix of an empty done file written after the file (.ok)."
    )

    @model_validator(mode="after")
    def _temp_name_differs(self) -> UploadPolicy:
        if not self.temp_prefix and not self.temp_suffix:
            msg = "temp_prefix and temp_suffix cannot both be empty"
            raise ValueError(msg)
        return self


def _filename_pattern(value: str) -> str:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as exc:
        msg = f"invalid file-name pattern {value!r}: {exc}"
        raise ValueError(msg) from None
    per_record = {f for f in fields if naming.split_field(f)[0] == naming.RECORD}
    unknown = sorted(fields - FILENAME_FIELDS - per_record)
    if unknown or any(not naming.split_field(f)[1] for f in per_record):
        allowed = ", ".join(sorted(FILENAME_FIELDS))
        first = unknown[0] if unknown else sorted(per_record)[0]
        msg = (
            f"unknown placeholder {{{first}}} in file-name pattern (allowed: {allowed}; "
            "{record[FIELD]} with split: record)"
            if per_record
            else f"unknown placeholder {{{first}}} in file-name pattern (allowed: {allowed})"
        )
        raise ValueError(msg)
    try:
        naming.check_pattern(value, per_record=True)
    except ConfigError as exc:
        if "not a plain file name" in str(exc):
            msg = f"file-name pattern {value!r} must give a plain file name (no folders)"
        else:
            msg = f"invalid file-name pattern {value!r}: {str(exc).split(': ', 1)[-1]}"
        raise ValueError(msg) from None
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"unknown time zone {value!r} (e.g. Europe/Paris, UTC)"
        raise ValueError(msg) from None
    return value


class OutboundFlow(_FlowBase):
    """Ecolix data rendered through a template into files delivered to the partner."""

    direction: Literal["outbound"] = Field(description="Files go out to the partner.")
    query: ExportQuery = Field(description="The Ecolix list to export.")
    template: ExistingFile = Field(description="Jinja2 template (templates/*.j2).")
    filename: Annotated[str, AfterValidator(_filename_pattern)] = Field(
        default=DEFAULT_FILENAME_PATTERN,
        description="File-name pattern: {partner}, {flow}, {now:%Y%m%d-%H%M%S}, {seq:05d}.",
    )
    timezone: Annotated[str, AfterValidator(_timezone)] = Field(
        default=DEFAULT_TIMEZONE, description="Time zone of {now} and of cron schedules."
    )
    channel: Channel = Field(description="Where the files are delivered.")
    schedule: Schedule = Field(
        default_factory=lambda: EverySchedule(every=DEFAULT_EXPORT_EVERY),
        description="{every: 900} or {cron: '*/15 * * * *'}.",
    )
    mode: Literal["delta", "full"] = Field(
        default="delta", description="delta: only changes since the last delivered run."
    )
    write_empty: bool = Field(
        default=False, description="Deliver a file even when nothing changed."
    )
    encoding: Encoding = Field(
        default=DEFAULT_OUTBOUND_ENCODING, description="utf-8, utf-8-sig (BOM) or cp1252."
    )
    xsd: ExistingFile | None = Field(
        default=None, description="XSD that rendered XML must satisfy before delivery."
    )
    upload: UploadPolicy = Field(
        default_factory=UploadPolicy, description="Temporary name, overwrite policy, done file."
    )
    settings: dict[Name, str] = Field(
        default_factory=dict,
        description="Values the template reads as settings.NAME, over the top-level settings.",
    )
    split: Literal["file", "record"] = Field(
        default="file",
        description=(
            "file: one file per run with every record; record: one file per record (e.g. one "
            "status message per change), named with {record[FIELD]}."
        ),
    )
    _shared_settings: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _record_names_need_split(self) -> OutboundFlow:
        if self.split != "record" and naming.uses_record(self.filename):
            msg = (
                f"file-name pattern {self.filename!r} names record fields, which only a flow "
                "writing one file per record has: add split: record"
            )
            raise ValueError(msg)
        return self

    @property
    def template_settings(self) -> dict[str, str]:
        """What the template sees as ``settings``: the top-level ones, the flow's over them."""
        return {**self._shared_settings, **self.settings}

    @property
    def zone(self) -> ZoneInfo:
        """The flow's time zone as a tzinfo."""
        return ZoneInfo(self.timezone)


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
