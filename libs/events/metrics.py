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
RELAY_LAG = Gauge("deskstream_relay_lag", "Store positions not yet published to Kafka.")
