"""Alerts by e-mail: SMTP with STARTTLS (or implicit TLS) and authentication, via smtplib.

One connection per message: alerts are rare by design (``digest`` groups them), and a
connection kept open would only go stale between them. ``smtplib`` and socket errors
become ``AlertDeliveryError`` here.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal

from edigw.alerts.digest import Message
from edigw.alerts.events import AlertDeliveryError

SmtpSecurity = Literal["starttls", "tls", "none"]
DEFAULT_TIMEOUT = 10.0
SUBJECT_PREFIX = "[edigw]"
MAX_SUBJECT = 200


def email_message(
    message: Message, *, sender: str, recipients: Sequence[str], node: str = ""
) -> EmailMessage:
    """The mail of ``message``: a one-line subject, the alert text as plain text."""
    mail = EmailMessage()
    subject = f"{SUBJECT_PREFIX} {message.subject}"
    if len(subject) > MAX_SUBJECT:
        subject = subject[: MAX_SUBJECT - 1] + "…"
    mail["Subject"] = subject
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    if message.critical:
        mail["X-Priority"] = "1"
    footer = f"\n\n-- \nedigw{f' on {node}' if node else ''}\n"
    mail.set_content(message.text() + footer)
    return mail


class EmailChannel:
    """Sends each message as one mail to ``recipients``."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        security: SmtpSecurity = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        tls_context: ssl.SSLContext | None = None,
        node: str = "",
    ) -> None:
        self.name = f"e-mail {host}:{port}"
        self._host, self._port = host, port
        self._sender, self._recipients = sender, list(recipients)
        self._security: SmtpSecurity = security
        self._username, self._password = username, password
        self._timeout = timeout
        self._tls = tls_context or ssl.create_default_context()
        self._node = node

    def send(self, message: Message) -> None:
        mail = email_message(
            message, sender=self._sender, recipients=self._recipients, node=self._node
        )
        try:
            with self._connect() as smtp:
                if self._username is not None and self._password is not None:
                    smtp.login(self._username, self._password)
                smtp.send_message(mail)
        except (smtplib.SMTPException, OSError) as exc:
            msg = f"{self.name}: {type(exc).__name__}: {exc}"
            raise AlertDeliveryError(msg) from exc

    def _connect(self) -> smtplib.SMTP:
        if self._security == "tls":
            return smtplib.SMTP_SSL(
                self._host, self._port, timeout=self._timeout, context=self._tls
            )
        smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        try:
            if self._security == "starttls":
                smtp.starttls(context=self._tls)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def close(self) -> None:
        return None
