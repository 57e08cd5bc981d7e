"""OpenTelemetry: one tracer provider per process; trace context rides in event metadata and
the Kafka `traceparent` header, so a ticket's path through every service is one trace."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)


def configure(service: str, otlp_endpoint: str | None) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": f"deskstream-{service}"}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)


def current_traceparent(incoming: str | None = None) -> str | None:
    """The W3C traceparent to store with new events: the active span's, else the caller's."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent") or incoming


@contextmanager
def span_from(traceparent: str | None, name: str) -> Iterator[None]:
    """A consumer-side span continuing the trace an event carries."""
    context = propagate.extract({"traceparent": traceparent} if traceparent else {})
    with trace.get_tracer("deskstream").start_as_current_span(name, context=context):
        yield
