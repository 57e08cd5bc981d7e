"""Which workers each service runs, on either backend. The one place they are assembled."""

from __future__ import annotations

import functools

from libs.events.embedded import EmbeddedSubscriber
from libs.events.kafka import KafkaSubscriber, Relay, RelayWorker
from libs.events.runner import Runner, Worker
from libs.events.subscription import Subscription
from services.intake.adapters.imap import MailPoller
from services.intake.mail_accounts import configured_accounts
from services.notify.adapters.mail import mailer_from_settings
from services.notify.handlers import NotifyHandlers
from services.platform import Platform
from services.query import handlers as query_handlers
from services.routing import handlers as routing_handlers
from services.sla import handlers as sla_handlers
from services.sla.timer import OverdueTimer

WORKER_SERVICES = ("routing", "sla", "notify", "query")


def subscription_for(platform: Platform, service: str) -> Subscription:
    if service == "routing":
        return routing_handlers.subscription()
    if service == "sla":
        return sla_handlers.subscription()
    if service == "notify":
        settings = platform.settings
        mailer = mailer_from_settings(settings.smtp_url, settings.maildrop_dir)
        return NotifyHandlers(
            mailer,
            settings.helpdesk_email,
            settings.helpdesk_name,
            settings.secret_key,
            autoresponse_window_s=settings.autoresponse_window_s,
        ).subscription()
    if service == "query":
        return query_handlers.subscription()
    raise ValueError(f"{service} has no subscription")


def workers_for(platform: Platform, services: list[str]) -> list[Worker]:
    workers: list[Worker] = []
    for service in services:
        if service == "intake":
            workers.extend(mail_pollers(platform))  # IMAP accounts
            workers.extend(inbound_consumers(platform))  # deskstream.inbound.v1 (Kafka mode)
            continue
        if service == "relay":
            relay = Relay(platform.store, platform.kafka_producer)
            workers.append(RelayWorker(relay))
            continue
        subscription = subscription_for(platform, service)
        if platform.settings.backend == "kafka":
            workers.append(
                KafkaSubscriber(
                    subscription,
                    platform.store,
                    platform.clock,
                    consumer_factory=functools.partial(platform.kafka_consumer, subscription.name),
                    producer_factory=platform.kafka_producer,
                )
            )
        else:
            workers.append(EmbeddedSubscriber(subscription, platform.store, platform.clock))
        if service == "sla":
            workers.append(OverdueTimer(platform.store, platform.clock))
    return workers


def mail_pollers(platform: Platform) -> list[Worker]:
    """One poller per IMAP account of the mail config file; none when it is not configured."""
    accounts = configured_accounts(platform.settings)
    if not accounts:
        return []
    from services.intake.email_intake import receive_email  # the mail parser, only when needed

    receive = functools.partial(receive_email, platform, channel="email")
    return [MailPoller(account, receive, platform.clock) for account in accounts]


def inbound_consumers(platform: Platform) -> list[Worker]:
    """CloudEvents from external systems on deskstream.inbound.v1; none when embedded (no
    broker: external systems use POST /api/v1/events)."""
    if platform.settings.backend != "kafka":
        return []
    from services.intake.entrypoints.inbound_worker import GROUP, InboundConsumer

    consumer = functools.partial(platform.kafka_consumer, GROUP)
    return [
        InboundConsumer(
            platform.store,
            platform.clock,
            consumer,
            platform.kafka_producer,
            max_open_tickets=platform.settings.max_open_tickets,
        )
    ]


def start_runner(platform: Platform, services: list[str]) -> Runner:
    runner = Runner(
        workers_for(platform, services), platform.settings.poll_interval_s, clock=platform.clock
    )
    platform.failures = runner.failures  # /readyz reports a stopped subscription
    runner.start()
    return runner
