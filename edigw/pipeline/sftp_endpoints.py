"""SFTP endpoints no flow uses any more: their connection is closed, not kept until exit.

A gateway opens one connection per SFTP endpoint, on first use, and keeps it for all the
flows of that endpoint (``edigw.channels.sftp.connection.SftpConnections``). When a reload of
``edigw.yaml`` removes (or moves elsewhere) the last flow using an endpoint, nothing would
use that connection again, yet the partner's server would hold a session open for us until
the gateway stops. So after each reload, and each time the mover closes a removed flow's
channel (the flow's files disposed of, which may need the endpoint), the connections of the
endpoints that neither the running configuration nor a removed flow still finishing its
files uses are closed. An endpoint used again later (a reload adding a flow back) connects
anew, as on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from edigw.config import GatewayConfig, InboundFlow, OutboundFlow

if TYPE_CHECKING:
    from edigw.pipeline.assembly import Parts
    from edigw.pipeline.poller import FlowPoller

log = logging.getLogger("edigw.sftp")


def endpoints_in_use(config: GatewayConfig, pollers: Iterable[FlowPoller]) -> set[str]:
    """The SFTP endpoints of the configuration's flows (inbound and exports) and of the
    pollers still held (a removed flow's, until its files are disposed of)."""
    flows: list[InboundFlow | OutboundFlow] = [
        *config.inbound_flows(),
        *config.outbound_flows(),
        *(poller.runtime.config for poller in list(pollers)),
    ]
    return {flow.channel.endpoint for flow in flows if flow.channel.type == "sftp"}


def close_unused_endpoints(parts: Parts, pollers: Iterable[FlowPoller]) -> list[str]:
    """Close the connections of the endpoints nothing uses any more (see the module
    docstring); the names of those closed."""
    if parts.sftp is None:
        return []
    closed = parts.sftp.close_unused(endpoints_in_use(parts.config, pollers))
    for name in closed:
        log.info("SFTP endpoint %s: no flow uses it any more, its connection is closed", name)
    return closed


__all__ = ["close_unused_endpoints", "endpoints_in_use"]
