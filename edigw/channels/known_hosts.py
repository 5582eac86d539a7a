"""Strict host-key checking against a per-endpoint ``known_hosts`` file (OpenSSH format).

There is no auto-accept anywhere: an unknown or changed key raises ``HostKeyError`` with the
fingerprint the server presented, and only ``edigw sftp trust`` pins a key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from pathlib import Path

import paramiko

from edigw.errors import HostKeyError

#: Host-key algorithms a pinned key type may be negotiated as (RSA keys sign with SHA-2).
_ALGORITHMS_FOR_TYPE = {
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
}


def fingerprint(key: paramiko.PKey) -> str:
    """The OpenSSH ``SHA256:...`` fingerprint, as ``ssh-keygen -lf`` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_pattern(host: str, port: int) -> str:
    """How OpenSSH names a host in ``known_hosts`` (``[host]:port`` off port 22)."""
    return host if port == 22 else f"[{host}]:{port}"


def _load(path: Path) -> paramiko.HostKeys:
    keys = paramiko.HostKeys()
    if path.exists():
        keys.load(str(path))
    return keys


def pinned_algorithms(path: Path, host: str, port: int) -> list[str]:
    """Host-key algorithms to prefer so the server shows the key type we pinned."""
    entry = _load(path).lookup(host_pattern(host, port))
    if not entry:
        return []
    algorithms: list[str] = []
    for key_type in entry:
        algorithms.extend(_ALGORITHMS_FOR_TYPE.get(key_type, (key_type,)))
    return algorithms


def verify_host_key(path: Path, host: str, port: int, key: paramiko.PKey) -> None:
    """Return quietly when ``key`` is pinned for ``host:port``, else raise ``HostKeyError``."""
    pattern = host_pattern(host, port)
    entry = _load(path).lookup(pattern)
    shown = fingerprint(key)
    if not entry:
        msg = (
            f"unknown host key for {pattern}: the server presented {key.get_name()} {shown}, "
            f"which is not in {path}; check it with the partner, then run "
            f"`edigw sftp trust ENDPOINT --fingerprint {shown}`"
        )
        raise HostKeyError(msg, fingerprint=shown)
    pinned = entry.get(key.get_name())
    if pinned is not None and pinned.asbytes() == key.asbytes():
        return
    known = ", ".join(f"{k.get_name()} {fingerprint(k)}" for k in entry.values())
    msg = (
        f"host key for {pattern} has CHANGED: the server presented {key.get_name()} {shown}, "
        f"but {path} pins {known}; this may be an attack. Confirm the new key with the "
        f"partner before running `edigw sftp trust ENDPOINT --fingerprint {shown}`"
    )
    raise HostKeyError(msg, fingerprint=shown)


def pin_host_key(path: Path, host: str, port: int, key: paramiko.PKey) -> None:
    """Pin ``key`` for ``host:port`` (replacing lines that named it), written atomically."""
    pattern = host_pattern(host, port)
    kept: list[str] = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = paramiko.hostkeys.HostKeyEntry.from_line(line)
            if entry is not None and pattern in entry.hostnames:
                continue
            kept.append(line)
    kept.append(f"{pattern} {key.get_name()} {key.get_base64()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(kept) + "\n")
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
