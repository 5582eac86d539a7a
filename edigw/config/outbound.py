"""Outbound flows (``direction: outbound``), the exports: the Ecolix list queried, when it
runs, the file-name pattern and time zone, and how a rendered file is put into place."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from edigw.config.base import _FlowBase, _Model
from edigw.config.channels import Channel
from edigw.config.values import Duration, Encoding, ExistingFile, Name
from edigw.errors import ConfigError
from edigw.outbound import naming

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
