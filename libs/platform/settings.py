"""The one place that reads the environment (twelve-factor, prefix DESKSTREAM_)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

PREFIX = "DESKSTREAM_"
MAIL_HEADROOM_BYTES = 1024 * 1024  # headers, text and MIME framing beside the attachment


class SettingsError(ValueError):
    """Settings that cannot work together; the message names the variables."""


def email_bytes_for(attachment_bytes: int) -> int:
    """The smallest email limit that lets through an attachment of `attachment_bytes`: its
    base64 (4/3, in 76-character lines ending CRLF) plus headroom, rounded up to a MiB."""
    encoded = 4 * -(-attachment_bytes // 3)
    total = encoded + 2 * -(-encoded // 76) + MAIL_HEADROOM_BYTES
    return -(-total // (1024 * 1024)) * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/deskstream.db"
    kafka_bootstrap: tuple[str, ...] = ()
    smtp_url: str | None = None
    secret_key: str = field(default="dev-insecure-secret", repr=False)
    otlp_endpoint: str | None = None
    log_level: str = "INFO"
    data_dir: Path = Path("var")
    # How long the broker may hold a fetch that has no data yet (Kafka answers as soon as data
    # arrives); low values trade CPU for latency.
    kafka_fetch_max_wait_ms: int = 100
    # acks=all always; idempotence on unless a broker's implementation of it is untrustworthy.
    kafka_idempotence: bool = True
    # How often embedded runners and the relay look for new positions when idle.
    poll_interval_s: float = 0.02
    # The largest HTTP body; 0 = max_email_bytes (room for a raw email, and for a JSON ticket
    # with the largest attachment as a base64 data URL).
    max_request_bytes: int = 0
    # Peers whose X-Forwarded-For is believed (ingress, load balancer); API key IP allow-lists
    # see the real client only behind these.
    trusted_proxies: str = "127.0.0.1,::1"
    helpdesk_email: str = "support@deskstream.local"
    helpdesk_name: str = "Deskstream Support"
    # Email intake policy (osTicket's mail settings). IMAP accounts live in the mail config
    # file (`mail_config`, TOML), not in the environment: they carry passwords.
    mail_config: Path | None = None
    max_attachment_bytes: int = 8 * 1024 * 1024
    # The largest raw email taken in (pipe, tickets.email, IMAP); 0 = derived: room for the
    # largest attachment in base64 plus headers and text (`email_bytes_for`). A smaller value
    # would refuse whole emails whose attachments are within max_attachment_bytes.
    max_email_bytes: int = 0
    # What one email may cost to read (RELIABILITY.md S3): MIME parts read, MIME nesting walked
    # as a tree, and HTML per part sanitised (larger or deeper HTML is shown as text). Above a
    # cap the ticket gets a note and the raw message as an attachment.
    max_mime_parts: int = 1000
    max_mime_depth: int = 32
    max_html_bytes: int = 2 * 1024 * 1024
    max_html_depth: int = 256
    max_open_tickets: int = 0  # per requester; 0 = unlimited
    email_collaborators: bool = True  # To/Cc addresses become collaborators
    # At most this many To/Cc people join a ticket from one email (a note names the rest);
    # 0 = no cap.
    max_collaborators_per_message: int = 20
    # How a ticket number appears in a subject; `{number}` is replaced.
    subject_number_format: str = "[#{number}]"
    # Mail-loop guard (RELIABILITY.md S4): at most one autoresponse-type mail (new-ticket
    # autoresponse, over-limit notice) per recipient in this many seconds; 0 = no window.
    autoresponse_window_s: int = 600
    # Credential guessing (RELIABILITY.md S12): this many wrong API keys or agent tokens from
    # one client address within the window lock it out (429 + Retry-After) for auth_lockout_s,
    # doubled for each further lockout up to auth_lockout_max_s; 0 = never lock. Each process
    # remembers at most auth_tracked_addresses addresses (the least recently failing go first).
    auth_failure_limit: int = 10
    auth_failure_window_s: int = 300
    auth_lockout_s: int = 60
    auth_lockout_max_s: int = 3600
    auth_tracked_addresses: int = 10_000

    def __post_init__(self) -> None:
        # Limits derived from each other, and refused when they contradict each other.
        needed = email_bytes_for(self.max_attachment_bytes)
        if not self.max_email_bytes:
            object.__setattr__(self, "max_email_bytes", needed)
        elif self.max_email_bytes < needed:
            raise SettingsError(
                f"{PREFIX}MAX_EMAIL_BYTES={self.max_email_bytes} leaves no room for an attachment "
                f"of {PREFIX}MAX_ATTACHMENT_BYTES={self.max_attachment_bytes} (base64 needs "
                f"{needed} bytes with headers): raise it, or leave it unset to derive it"
            )
        if not self.max_request_bytes:
            object.__setattr__(self, "max_request_bytes", self.max_email_bytes)
        elif self.max_request_bytes < self.max_email_bytes:
            raise SettingsError(
                f"max_request_bytes={self.max_request_bytes} is below the email limit "
                f"{self.max_email_bytes}: POST /api/tickets.email would refuse accepted mail"
            )
        for name in ("max_mime_parts", "max_mime_depth", "max_html_bytes", "max_html_depth"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{PREFIX}{name.upper()} must be at least 1")

    @property
    def backend(self) -> str:
        """`kafka` when a broker is configured, otherwise the embedded backend."""
        return "kafka" if self.kafka_bootstrap else "embedded"

    @property
    def maildrop_dir(self) -> Path:
        return self.data_dir / "maildrop"

    def with_data_dir(self, data_dir: Path) -> Settings:
        """Settings for the embedded mode rooted at `data_dir` (SQLite file inside it)."""
        url = self.database_url
        if url.startswith("sqlite"):
            url = f"sqlite:///{(data_dir / 'deskstream.db').resolve()}"
        return replace(self, data_dir=data_dir, database_url=url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(PREFIX + name)
            return value if value not in (None, "") else None

        base = cls()
        data_dir = Path(get("DATA_DIR") or base.data_dir)
        bootstrap = get("KAFKA_BOOTSTRAP")
        settings = cls(
            database_url=get("DATABASE_URL") or f"sqlite:///{data_dir.resolve()}/deskstream.db",
            kafka_bootstrap=tuple(h.strip() for h in bootstrap.split(",") if h.strip())
            if bootstrap
            else (),
            smtp_url=get("SMTP_URL"),
            secret_key=get("SECRET_KEY") or base.secret_key,
            otlp_endpoint=get("OTLP_ENDPOINT"),
            log_level=(get("LOG_LEVEL") or base.log_level).upper(),
            data_dir=data_dir,
            kafka_fetch_max_wait_ms=int(
                get("KAFKA_FETCH_MAX_WAIT_MS") or base.kafka_fetch_max_wait_ms
            ),
            kafka_idempotence=(get("KAFKA_IDEMPOTENCE") or "true").lower()
            not in ("0", "false", "no"),
            poll_interval_s=float(get("POLL_INTERVAL_S") or base.poll_interval_s),
            helpdesk_email=get("HELPDESK_EMAIL") or base.helpdesk_email,
            trusted_proxies=get("TRUSTED_PROXIES") or base.trusted_proxies,
            mail_config=Path(mail_config) if (mail_config := get("MAIL_CONFIG")) else None,
            max_attachment_bytes=int(get("MAX_ATTACHMENT_BYTES") or base.max_attachment_bytes),
            max_email_bytes=int(get("MAX_EMAIL_BYTES") or 0),
            max_mime_parts=int(get("MAX_MIME_PARTS") or base.max_mime_parts),
            max_mime_depth=int(get("MAX_MIME_DEPTH") or base.max_mime_depth),
            max_html_bytes=int(get("MAX_HTML_BYTES") or base.max_html_bytes),
            max_html_depth=int(get("MAX_HTML_DEPTH") or base.max_html_depth),
            max_open_tickets=int(get("MAX_OPEN_TICKETS") or base.max_open_tickets),
            email_collaborators=(get("EMAIL_COLLABORATORS") or "true").lower()
            not in ("0", "false", "no"),
            max_collaborators_per_message=int(
                get("MAX_COLLABORATORS_PER_MESSAGE") or base.max_collaborators_per_message
            ),
            subject_number_format=get("SUBJECT_NUMBER_FORMAT") or base.subject_number_format,
            autoresponse_window_s=int(get("AUTORESPONSE_WINDOW_S") or base.autoresponse_window_s),
            auth_failure_limit=int(get("AUTH_FAILURE_LIMIT") or base.auth_failure_limit),
            auth_failure_window_s=int(get("AUTH_FAILURE_WINDOW_S") or base.auth_failure_window_s),
            auth_lockout_s=int(get("AUTH_LOCKOUT_S") or base.auth_lockout_s),
            auth_lockout_max_s=int(get("AUTH_LOCKOUT_MAX_S") or base.auth_lockout_max_s),
            auth_tracked_addresses=int(
                get("AUTH_TRACKED_ADDRESSES") or base.auth_tracked_addresses
            ),
        )
        return settings
