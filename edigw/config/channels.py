"""Where a flow's files are picked up or delivered (``channel:``): a local folder, or a
folder on a partner's SFTP server declared under ``sftp_endpoints:`` with how to log in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, ValidationInfo, model_validator

from edigw.config.base import _Model
from edigw.config.values import ConfigPath, Duration, ExistingFile

DEFAULT_SFTP_PORT = 22
DEFAULT_SFTP_CONNECT_TIMEOUT = 10.0
DEFAULT_SFTP_OPERATION_TIMEOUT = 30.0
DEFAULT_SFTP_KEEPALIVE = 15.0
DEFAULT_KNOWN_HOSTS_DIR = "known_hosts"
DEFAULT_SFTP_MAX_DEPTH = 1


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
