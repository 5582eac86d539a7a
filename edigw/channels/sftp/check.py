"""Checking an endpoint end to end (``edigw sftp check``): connect, host key, authenticate,
list folders, test writing; one step per line.

It goes through the steps ``connect`` takes, one at a time and on its own transport (not a
shared connection), so that a failure is reported at the step that failed.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import paramiko

from edigw.channels.known_hosts import fingerprint, verify_host_key
from edigw.channels.sftp.connection import _authenticate, open_transport
from edigw.channels.sftp.failures import _REMOTE_FAILURES, _describe
from edigw.channels.sftp.remote import _join
from edigw.channels.sftp.settings import SftpEndpointSettings
from edigw.errors import ChannelError, HostKeyError


@dataclass(frozen=True, slots=True)
class CheckStep:
    step: str
    ok: bool
    detail: str


def check_endpoint(
    settings: SftpEndpointSettings,
    *,
    folders: Sequence[str] = (),
    write_folders: Sequence[str] = (),
) -> list[CheckStep]:
    """Connect, check the host key, authenticate, list ``folders``, test writing in
    ``write_folders``; one step per line, stopping at the first step that makes the rest
    meaningless (connect, host key, authentication)."""
    steps: list[CheckStep] = []
    try:
        transport = open_transport(settings)
    except ChannelError as exc:
        return [CheckStep("connect", ok=False, detail=str(exc))]
    try:
        key = transport.get_remote_server_key()
        steps.append(
            CheckStep("connect", ok=True, detail=f"{settings.host}:{settings.port} answered")
        )
        try:
            verify_host_key(settings.known_hosts, settings.host, settings.port, key)
        except HostKeyError as exc:
            return [*steps, CheckStep("host key", ok=False, detail=str(exc))]
        steps.append(
            CheckStep("host key", ok=True, detail=f"{key.get_name()} {fingerprint(key)} pinned")
        )
        try:
            _authenticate(transport, settings)
            sftp = paramiko.SFTPClient.from_transport(transport)
        except ChannelError as exc:
            return [*steps, CheckStep("authenticate", ok=False, detail=str(exc))]
        except _REMOTE_FAILURES as exc:
            return [*steps, CheckStep("authenticate", ok=False, detail=_describe(exc))]
        if sftp is None:
            return [*steps, CheckStep("authenticate", ok=False, detail="no SFTP subsystem")]
        steps.append(CheckStep("authenticate", ok=True, detail=f"as {settings.username}"))
        channel = sftp.get_channel()
        if channel is not None:
            channel.settimeout(settings.timeouts.operation)
        for folder in folders:
            try:
                count = len(sftp.listdir_attr(folder))
                steps.append(CheckStep(f"list {folder}", ok=True, detail=f"{count} entries"))
            except _REMOTE_FAILURES as exc:
                steps.append(CheckStep(f"list {folder}", ok=False, detail=_describe(exc)))
        for folder in write_folders:
            probe = _join(folder, f".edigw-check-{secrets.token_hex(4)}.part")
            try:
                sftp.putfo(io.BytesIO(b"edigw write test\n"), probe, confirm=True)
                sftp.remove(probe)
                steps.append(
                    CheckStep(f"write {folder}", ok=True, detail="created and removed a test file")
                )
            except _REMOTE_FAILURES as exc:
                steps.append(CheckStep(f"write {folder}", ok=False, detail=_describe(exc)))
        return steps
    finally:
        transport.close()
