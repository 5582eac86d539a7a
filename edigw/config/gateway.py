"""The whole of ``edigw.yaml`` (``GatewayConfig``): the top-level keys, the partners and
their flows, and what the loaded configuration answers (a flow by ``partner/flow``, the
journal's URL, the secrets left unset)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from edigw.config.alerts import AlertSettings
from edigw.config.archive import ArchiveSettings, FolderArchiveSettings, PostgresArchiveSettings
from edigw.config.base import _Model
from edigw.config.channels import SftpEndpoint
from edigw.config.ecolix import EcolixSettings, RetryPolicy
from edigw.config.inbound import InboundFlow
from edigw.config.outbound import OutboundFlow
from edigw.config.security import SecuritySettings
from edigw.config.service import HttpSettings, NodeSettings, SupervisorSettings
from edigw.config.values import ConfigPath, Name
from edigw.errors import ConfigError

DEFAULT_CONFIG_NAME = "edigw.yaml"
DEFAULT_DATA_DIR = "./edigw-data"
DEFAULT_JOURNAL_FILE = "journal.sqlite"

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
