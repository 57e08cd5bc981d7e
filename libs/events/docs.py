"""docs/events.md, docs/asyncapi.json and docs/metrics.md are generated from the registries, so
the documented contract cannot drift from the code (tests/unit/test_generated_docs.py)."""

from __future__ import annotations

import json
from typing import Any

from marshmallow import Schema, fields

from libs.events.catalog import TOPICS, EventCatalog
from libs.events.envelope import cloudevent_type

_TYPES = {
    fields.String: "string",
    fields.Email: "string (email)",
    fields.UUID: "string (uuid)",
    fields.Integer: "integer",
    fields.Float: "number",
    fields.Boolean: "boolean",
    fields.AwareDateTime: "string (date-time)",
    fields.DateTime: "string (date-time)",
    fields.Date: "string (date)",
    fields.Dict: "object",
    fields.Raw: "any",
}


def _field_type(field: fields.Field) -> str:
    if isinstance(field, fields.Nested):
        nested = field.nested if isinstance(field.nested, type) else type(field.nested)
        return f"object ({nested.__name__})"
    if isinstance(field, fields.List):
        return f"array of {_field_type(field.inner)}"
    for kind, name in _TYPES.items():
        if type(field) is kind:
            return name
    return type(field).__name__.lower()


def _rows(schema: type[Schema]) -> list[tuple[str, str, bool]]:
    return [(f.data_key or name, _field_type(f), f.required) for name, f in schema().fields.items()]


def events_markdown(catalog: EventCatalog) -> str:
    lines = [
        "# Event catalog",
        "",
        "Generated from `libs/events/types/` by `make docs`; do not edit by hand.",
        "",
        "Every event is a CloudEvents 1.0 record: `type` is `deskstream.<Name>.v<schema version>`,",
        "`subject` the stream id. On Kafka: binary mode (`ce_*` headers, JSON body, key = stream id).",
        "",
        "| topic | streams |",
        "| --- | --- |",
        *[f"| `{topic}` | `{category}-*` |" for category, topic in TOPICS.items()],
        "",
    ]
    for event_type in catalog:
        lines += [
            f"## {event_type.name}",
            "",
            f"{event_type.description}",
            "",
            f"CloudEvents type `{cloudevent_type(event_type.name, event_type.version)}` · "
            f"stream `{event_type.stream}-*` · topic `{TOPICS[event_type.stream]}`",
            "",
            "| field | type | required |",
            "| --- | --- | --- |",
            *[f"| `{n}` | {t} | {'yes' if r else 'no'} |" for n, t, r in _rows(event_type.schema)],
            "",
        ]
    return "\n".join(lines)


def _json_schema(schema: type[Schema]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: {"description": kind} for name, kind, _ in _rows(schema)},
        "required": [name for name, _, required in _rows(schema) if required],
    }


def asyncapi(catalog: EventCatalog) -> str:
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event_type in catalog:
        messages[event_type.name] = {
            "name": cloudevent_type(event_type.name, event_type.version),
            "summary": event_type.description,
            "contentType": "application/json",
            "payload": _json_schema(event_type.schema),
        }
        topic = TOPICS[event_type.stream]
        channel = channels.setdefault(topic, {"address": topic, "messages": {}})
        channel["messages"][event_type.name] = {"$ref": f"#/components/messages/{event_type.name}"}
    document = {
        "asyncapi": "3.0.0",
        "info": {"title": "Deskstream event stream", "version": "1"},
        "defaultContentType": "application/json",
        "channels": channels,
        "components": {"messages": messages},
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def metrics_markdown(*modules: Any) -> str:
    """From the metric objects declared in `modules` (each metric is declared once, with help)."""
    from prometheus_client.metrics import MetricWrapperBase

    declared = sorted(
        (
            m
            for module in modules
            for m in vars(module).values()
            if isinstance(m, MetricWrapperBase)
        ),
        key=lambda m: m._name,
    )
    lines = [
        "# Metrics",
        "",
        "Generated from the metric declarations by `make docs`.",
        "",
        "| metric | type | labels | help |",
        "| --- | --- | --- | --- |",
    ]
    for metric in declared:
        suffix = "_total" if metric._type == "counter" else ""
        labels = ", ".join(metric._labelnames) or "—"
        lines.append(
            f"| `{metric._name}{suffix}` | {metric._type} | {labels} | {metric._documentation} |"
        )
    return "\n".join(lines) + "\n"
