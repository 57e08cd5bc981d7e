"""Backbone metrics, declared once with their help text (docs are generated from these)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_APPENDED = Counter(
    "deskstream_events_appended", "Events appended to the event store.", ["type"]
)
EVENTS_PUBLISHED = Counter(
    "deskstream_events_published",
    "Events the relay published to Kafka and saw acknowledged.",
    ["topic"],
)
EVENTS_CONSUMED = Counter(
    "deskstream_events_consumed",
    "Events a subscription processed (handled or skipped as not of interest).",
    ["subscription"],
)
EVENTS_DUPLICATE = Counter(
    "deskstream_events_duplicate",
    "Redelivered events a subscription recognised and skipped.",
    ["subscription"],
)
EVENTS_DEAD_LETTERED = Counter(
    "deskstream_events_dead_lettered", "Events sent to the dead-letter queue.", ["subscription"]
)
HANDLER_SECONDS = Histogram(
    "deskstream_handler_seconds",
    "Time a subscription's handler and its commit took per batch.",
    ["subscription"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CONSUMER_LAG = Gauge(
    "deskstream_consumer_lag",
    "Events between the newest available and the subscription's position.",
    ["subscription"],
)
SUBSCRIPTION_STUCK_SINCE = Gauge(
    "deskstream_subscription_stuck_since",
    "Unix time of the first of a run of failed attempts on the same work (0 while it flows); "
    "past the runner's limit /readyz reports the subscription as stuck.",
    ["subscription"],
)
SUBSCRIPTION_ATTEMPTS = Gauge(
    "deskstream_subscription_attempts",
    "Failed attempts in a row on the same work (0 while it flows).",
    ["subscription"],
)
RELAY_LAG = Gauge("deskstream_relay_lag", "Store positions not yet published to Kafka.")
# Credential guessing (RELIABILITY.md S12), on every HTTP service; the label is the kind of
# credential, never the address or key (unbounded, and the key is a secret).
AUTH_FAILURES = Counter(
    "deskstream_auth_failures",
    "Requests refused because the API key or agent token they presented is wrong.",
    ["credential"],
)
AUTH_LOCKOUTS = Counter(
    "deskstream_auth_lockouts",
    "Client addresses locked out after too many failed authentications (alert on any).",
)
AUTH_THROTTLED = Counter(
    "deskstream_auth_throttled",
    "Requests with credentials refused with 429 while their client address was locked out.",
)
