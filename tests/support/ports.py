"""Free loopback ports for the servers tests start, outside the kernel's ephemeral range.

Why not ``bind(("127.0.0.1", 0))``: that port comes from the ephemeral range, the very ports
the kernel gives the client side of outgoing connections. While such a port has no listener
(before a server starts on it, or while a test has stopped it to play "partner down"), a
client connecting to it may be given that same port as its own and connect to itself (TCP
self-connect): the client then believes the server answered, and the server, started or
restarted on its port, cannot bind it. Rare, so it fails one run in many, on one machine
and not another. A port outside the range is never anybody's client side.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: Below this, ports are left to well-known and registered services.
LOWEST = 10_000


def ephemeral_ports() -> range:
    """The kernel's ephemeral range (Linux's default when it cannot be read)."""
    try:
        low, high = (int(n) for n in PORT_RANGE.read_text().split())
    except (OSError, ValueError):
        return range(32768, 61000)
    return range(low, high + 1)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, outside the ephemeral range when the range leaves room
    (else one the kernel gives, as before)."""
    ephemeral = ephemeral_ports()
    candidates = [
        r
        for r in (
            range(LOWEST, min(ephemeral.start, 65536)),
            range(max(ephemeral.stop, LOWEST), 65536),
        )
        if len(r)
    ]
    draw = random.Random()
    for _ in range(200 if candidates else 0):
        chosen = draw.choice(candidates)
        port = chosen[draw.randrange(len(chosen))]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
