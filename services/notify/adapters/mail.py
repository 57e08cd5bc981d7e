"""Delivery: SMTP (smtp://, smtps://, smtp+starttls://) or the maildrop folder.

The SMTP envelope is the Outgoing's validated addresses: smtplib never reads recipients back
out of the headers (RELIABILITY.md S5)."""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from libs.events.subscription import TransientError
from services.notify.domain.messages import Outgoing


class Mailer(Protocol):
    def send(self, outgoing: Outgoing) -> None: ...


class SmtpMailer:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in {"smtp", "smtps", "smtp+starttls"}:
            raise ValueError(f"unsupported SMTP URL scheme {parsed.scheme!r}")
        self.scheme = parsed.scheme
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or {"smtp": 25, "smtps": 465, "smtp+starttls": 587}[parsed.scheme]
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        self.timeout = timeout

    def send(self, outgoing: Outgoing) -> None:
        try:
            if self.scheme == "smtps":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.scheme == "smtp+starttls":
                    client.starttls(context=ssl.create_default_context())
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(
                    outgoing.message, from_addr=outgoing.sender, to_addrs=list(outgoing.recipients)
                )
        except (OSError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError) as exc:
            raise TransientError(f"SMTP {self.host}:{self.port} unavailable: {exc}") from exc
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise TransientError(f"SMTP temporary failure {exc.smtp_code}") from exc
            raise


class MaildropMailer:
    """One .eml file per message, named by Message-ID: a resend overwrites, never duplicates."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, outgoing: Outgoing) -> None:
        message = outgoing.message
        self.directory.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9@._-]", "", str(message["Message-ID"])) or "message"
        target = self.directory / f"{name}.eml"
        temporary = target.with_suffix(".tmp")
        temporary.write_bytes(bytes(message))
        os.replace(temporary, target)


def mailer_from_settings(smtp_url: str | None, maildrop: Path) -> Mailer:
    return SmtpMailer(smtp_url) if smtp_url else MaildropMailer(maildrop)
