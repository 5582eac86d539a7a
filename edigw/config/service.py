"""How ``edigw run`` runs: ``supervisor:`` (restarts of crashed loops, when to give up, how
long a stop may take), ``nodes:`` (several nodes on one PostgreSQL journal) and ``http:`` (the
health and metrics endpoints)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from edigw.config.base import _Model
from edigw.config.values import Duration, _check_delays_ordered

DEFAULT_MAX_RESTARTS = 5
DEFAULT_RESTART_WINDOW = 600.0
DEFAULT_RESTART_FIRST_DELAY = 1.0
DEFAULT_RESTART_MAX_DELAY = 60.0
DEFAULT_STOP_TIMEOUT = 30.0
#: Seconds within which another node takes over the flows of a node that died.
DEFAULT_TAKEOVER = 15.0
DEFAULT_ECOLIX_CHECK_EVERY = 30.0


class SupervisorSettings(_Model):
    """How ``edigw run`` looks after its loops (pollers, senders, exporter, mover, watchers)."""

    max_restarts: int = Field(
        default=DEFAULT_MAX_RESTARTS,
        ge=0,
        description="A loop that crashes more often than this within `window` stops the "
        "process with exit status 3, so that systemd (or another service manager) restarts it.",
    )
    window: Duration = Field(
        default=DEFAULT_RESTART_WINDOW,
        gt=0,
        description="The period over which a loop's crashes are counted (e.g. 10m).",
    )
    first_delay: Duration = Field(
        default=DEFAULT_RESTART_FIRST_DELAY,
        description="Wait before restarting a loop after its first crash; doubles each time.",
    )
    max_delay: Duration = Field(
        default=DEFAULT_RESTART_MAX_DELAY,
        description="Upper bound of the wait before a loop is restarted.",
    )
    stop_timeout: Duration = Field(
        default=DEFAULT_STOP_TIMEOUT,
        description="On SIGTERM, how long queued source moves and calls in flight may take "
        "to finish before the process exits anyway (what is left resumes at the next start).",
    )

    @model_validator(mode="after")
    def _delays_ordered(self) -> SupervisorSettings:
        _check_delays_ordered(self.first_delay, self.max_delay)
        return self


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``127.0.0.1:9464``, ``[::1]:9464``) as ``(host, port)``; ``ValueError``
    saying what is wrong otherwise."""
    host, sep, port = value.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        msg = f"expected HOST:PORT, e.g. 127.0.0.1:9464, got {value!r}"
        raise ValueError(msg)
    return host, int(port)


class NodeSettings(_Model):
    """Several `edigw run` nodes on one PostgreSQL journal (ignored on SQLite: one node)."""

    takeover: Duration = Field(
        default=DEFAULT_TAKEOVER,
        ge=1,
        description="When a node dies (or loses the database), another node takes its flows "
        "over within this time (e.g. 15s); each node renews its flow leases every fifth of it.",
    )


class HttpSettings(_Model):
    """The health and metrics endpoints of ``edigw run`` (``/healthz``, ``/readyz``,
    ``/metrics``); off unless ``listen`` is set (or ``edigw run --http``)."""

    listen: str | None = Field(
        default=None,
        description="HOST:PORT to serve on, e.g. 127.0.0.1:9464; keep it on a private "
        "address: the endpoints have no authentication.",
    )
    ecolix_check_every: Duration = Field(
        default=DEFAULT_ECOLIX_CHECK_EVERY,
        gt=0,
        description="How often /readyz may find out whether Ecolix answers: calls the "
        "gateway makes anyway count; it calls Ecolix itself (one cheap read) at most this "
        "often, and only when no call was made meanwhile.",
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen(value)
        return value
