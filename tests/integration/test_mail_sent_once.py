"""An autoresponse the SMTP server accepted is not sent again when the transaction that
recorded it fails (RELIABILITY.md F6: a terminated backend between send and commit). On
PostgreSQL, notify records the acceptance on a connection of its own the moment it happens."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from libs.events.embedded import EmbeddedSubscriber
from libs.events.envelope import RecordedEvent
from libs.events.subscription import TransientError, UnitOfWork
from services.intake.email_intake import receive_email
from services.platform import Platform
from services.workers import WORKER_SERVICES, subscription_for
from tests.support.desk import desk_settings, open_platform, settle
from tests.support.mail import compose
from tests.support.servers import SmtpSink


@pytest.fixture
def platform(postgres_url: str, tmp_path: Path, smtp: SmtpSink) -> Iterator[Platform]:
    # A real SMTP server: the maildrop names files by Message-ID, so it would hide a resend.
    settings = desk_settings(tmp_path, postgres_url, smtp_url=smtp.url)
    with open_platform(settings) as platform:
        yield platform


def test_a_commit_failing_after_the_send_does_not_send_the_autoresponse_again(
    platform: Platform, smtp: SmtpSink
) -> None:
    failures: list[str] = []

    def fail_once_after(handler: Any) -> Any:
        def handle(event: RecordedEvent, uow: UnitOfWork) -> None:
            handler(event, uow)  # the mail goes out here
            if not failures:
                failures.append(str(event.event_id))
                raise TransientError("the connection was terminated before commit")

        return handle

    subscribers = []
    for service in WORKER_SERVICES:
        subscription = subscription_for(platform, service)
        if service == "notify":
            handlers = dict(subscription.handlers)
            handlers["TicketRouted"] = fail_once_after(handlers["TicketRouted"])
            subscription = dataclasses.replace(subscription, handlers=handlers)
        subscribers.append(EmbeddedSubscriber(subscription, platform.store, platform.clock))

    outcome = receive_email(platform, compose(message_id="<once@x.org>"), channel="pipe")
    with pytest.raises(TransientError):  # what the runner sees, then retries after a backoff
        settle(subscribers)
    settle(subscribers)

    assert outcome.action == "created" and failures, "the failure was never injected"
    to_ada = [m.message for m in smtp.messages if "ada@example.com" in m.rcpt_tos]
    assert len(to_ada) == 1, [m["Message-ID"] for m in to_ada]
    sent = [e for e in platform.store.read_all(0, 10_000) if e.type == "NotificationSent"]
    assert len(sent) == 1 and sent[0].data["message_id"] == to_ada[0]["Message-ID"]
