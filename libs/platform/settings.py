"""The one place that reads the environment (twelve-factor, prefix DESKSTREAM_)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

PREFIX = "DESKSTREAM_"


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/deskstream.db"
    kafka_bootstrap: tuple[str, ...] = ()
    smtp_url: str | None = None
    secret_key: str = field(default="dev-insecure-secret", repr=False)
    otlp_endpoint: str | None = None
    log_level: str = "INFO"
    data_dir: Path = Path("var")
    # Tansu and Kafka both honour fetch.max.wait; low values trade CPU for latency.
    kafka_fetch_max_wait_ms: int = 100
    # acks=all always; idempotence on unless a broker's implementation of it is untrustworthy.
    kafka_idempotence: bool = True
    # How often embedded runners and the relay look for new positions when idle.
    poll_interval_s: float = 0.02
    max_request_bytes: int = 10 * 1024 * 1024
    # Peers whose X-Forwarded-For is believed (ingress, load balancer); API key IP allow-lists
    # see the real client only behind these.
    trusted_proxies: str = "127.0.0.1,::1"
    helpdesk_email: str = "support@deskstream.local"
    helpdesk_name: str = "Deskstream Support"
    # Email intake policy (osTicket's mail settings). IMAP accounts live in the mail config
    # file (`mail_config`, TOML), not in the environment: they carry passwords.
    mail_config: Path | None = None
    max_attachment_bytes: int = 8 * 1024 * 1024
    max_open_tickets: int = 0  # per requester; 0 = unlimited
    email_collaborators: bool = True  # To/Cc addresses become collaborators
    # How a ticket number appears in a subject; `{number}` is replaced.
    subject_number_format: str = "[#{number}]"
    # Mail-loop guard (RELIABILITY.md S4): at most one autoresponse-type mail (new-ticket
    # autoresponse, over-limit notice) per recipient in this many seconds; 0 = no window.
    autoresponse_window_s: int = 600

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
            max_open_tickets=int(get("MAX_OPEN_TICKETS") or base.max_open_tickets),
            email_collaborators=(get("EMAIL_COLLABORATORS") or "true").lower()
            not in ("0", "false", "no"),
            subject_number_format=get("SUBJECT_NUMBER_FORMAT") or base.subject_number_format,
            autoresponse_window_s=int(get("AUTORESPONSE_WINDOW_S") or base.autoresponse_window_s),
        )
        return settings
