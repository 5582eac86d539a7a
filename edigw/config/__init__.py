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

Where each part is kept: ``gateway`` (``GatewayConfig``, the whole file), ``ecolix``,
``channels`` (local, SFTP), ``inbound`` and ``outbound`` (the flows), ``archive``,
``security``, ``alerts``, ``service`` (supervisor, nodes, http); ``values`` (durations,
sizes, paths...) and ``base`` (the models' bases); ``reading`` (YAML with its lines,
``${NAME}``), ``loading`` (validation and its messages) and ``starter`` (``edigw init``).
"""

from __future__ import annotations

from edigw.config.alerts import AlertSettings, EmailAlerts, WebhookAlert
from edigw.config.archive import FolderArchiveSettings, PostgresArchiveSettings
from edigw.config.channels import LocalChannel, SftpChannel, SftpEndpoint, SftpTimeouts
from edigw.config.ecolix import (
    DEFAULT_CALLS_PER_MINUTE,
    EcolixSettings,
    EcolixTimeouts,
    RetryPolicy,
)
from edigw.config.gateway import (
    DEFAULT_CONFIG_NAME,
    DEFAULT_DATA_DIR,
    DEFAULT_JOURNAL_FILE,
    GatewayConfig,
    Partner,
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
from edigw.config.loading import load_config
from edigw.config.outbound import (
    CronSchedule,
    EverySchedule,
    ExportQuery,
    OutboundFlow,
    UploadPolicy,
)
from edigw.config.reading import interpolated
from edigw.config.security import SecuritySettings
from edigw.config.service import (
    DEFAULT_STOP_TIMEOUT,
    HttpSettings,
    NodeSettings,
    SupervisorSettings,
    parse_listen,
)
from edigw.config.starter import starter_config_text, write_starter
from edigw.config.values import parse_duration, parse_size

__all__ = [
    "ALWAYS_EXCLUDED",
    "DEFAULT_CALLS_PER_MINUTE",
    "DEFAULT_CONFIG_NAME",
    "DEFAULT_DATA_DIR",
    "DEFAULT_JOURNAL_FILE",
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
    "interpolated",
    "load_config",
    "parse_duration",
    "parse_listen",
    "parse_size",
    "starter_config_text",
    "write_starter",
]
