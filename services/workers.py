"""Which workers each service runs, on either backend. The one place they are assembled."""

from __future__ import annotations

import functools

from libs.events.embedded import EmbeddedSubscriber
from libs.events.kafka import KafkaSubscriber, Relay, RelayWorker
from libs.events.runner import Runner, Worker
from libs.events.subscription import Subscription
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
            mailer, settings.helpdesk_email, settings.helpdesk_name, settings.secret_key
        ).subscription()
    if service == "query":
        return query_handlers.subscription()
    raise ValueError(f"{service} has no subscription")


def workers_for(platform: Platform, services: list[str]) -> list[Worker]:
    workers: list[Worker] = []
    for service in services:
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


def start_runner(platform: Platform, services: list[str]) -> Runner:
    runner = Runner(workers_for(platform, services), platform.settings.poll_interval_s)
    platform.failures = runner.failures  # /readyz reports a stopped subscription
    runner.start()
    return runner
