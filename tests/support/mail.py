"""Emails for tests, built the way a mail client would write them."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

# Real-world mail (the Ruby `mail` library's fixtures, vendored: tests/fixtures/mail/README.md).
CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "mail" / "mikel-mail"


def corpus_files() -> list[Path]:
    """Every message of the corpus, in a stable order; fails loudly when it is missing."""
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "LICENSE")
    if len(files) < 100:
        raise FileNotFoundError(f"the mail corpus is missing or incomplete at {CORPUS}")
    return files


def compose(
    *,
    sender: str = "Ada Lovelace <ada@example.com>",
    to: str = "support@deskstream.local",
    subject: str = "Printer on fire",
    body: str = "It is on fire.\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    cc: str | None = None,
    reply_to: str | None = None,
    headers: dict[str, str] | None = None,
    attachment: tuple[str, bytes] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain="mail.example.com")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if attachment:
        filename, data = attachment
        message.add_attachment(
            data, maintype="application", subtype="octet-stream", filename=filename
        )
    return message.as_bytes()
