"""`GET /api/v1/openapi.json`: a valid OpenAPI 3 document that describes every v1 route the app
serves (a new endpoint without docs fails here), a real ticket view that matches its documented
shape key for key, and a short schemathesis run of the ticket commands it describes, as an
admin, that must never answer 5xx."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate
from werkzeug.routing import AnyConverter

from libs.events.embedded import EmbeddedSubscriber
from libs.platform.access import create_agent
from libs.platform.database import reading
from libs.platform.settings import Settings
from services import migrations
from services.embedded import embedded_app
from services.intake.config import seed_defaults
from services.intake.email_intake import receive_email
from services.intake.entrypoints.http import create_app as intake_app
from services.intake.entrypoints.tickets_http import ACTIONS
from services.intake.handlers import find_ticket
from services.platform import Platform
from services.query import handlers as query_handlers
from services.routing import handlers as routing_handlers

TICKET = {"name": "Ada", "email": "ada@example.com", "subject": "Broken", "message": "It broke"}


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    platform = Platform.build(Settings().with_data_dir(tmp_path))
    migrations.upgrade(platform.engine)
    seed_defaults(platform.store)
    yield platform
    platform.close()


@pytest.fixture
def app(platform: Platform) -> Flask:
    return embedded_app(platform)


def document(app: Flask) -> dict[str, Any]:
    response = app.test_client().get("/api/v1/openapi.json")  # no credentials needed
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def v1_routes(app: Flask) -> set[tuple[str, str]]:
    """(path as OpenAPI writes it, method) for every v1 route, one path per `<any(...)>` value."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        paths = [rule.rule]
        for name, converter in rule._converters.items():
            pattern = re.compile(rf"<[^<>]*:{name}>|<{name}>")
            if isinstance(converter, AnyConverter):
                paths = [pattern.sub(v, p) for p in paths for v in converter.items]
            else:
                paths = [pattern.sub(f"{{{name}}}", p) for p in paths]
        routes |= {
            (p, m.lower())
            for p in paths
            for m in rule.methods or ()
            if m not in ("HEAD", "OPTIONS")
        }
    return routes


def test_the_document_is_valid_openapi_3(app: Flask) -> None:
    doc = document(app)
    validate(doc)
    assert doc["openapi"].startswith("3.")
    assert doc["components"]["securitySchemes"] == {
        "agentToken": {"type": "http", "scheme": "bearer", "description": "An agent's API token."},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "An API key."},
    }  # fmt: skip


@pytest.mark.parametrize("make_app", [embedded_app, intake_app], ids=["embedded", "intake"])
def test_every_v1_route_the_app_serves_is_described(make_app: Any, platform: Platform) -> None:
    app = make_app(platform)
    doc = document(app)
    described = {(path, method) for path, item in doc["paths"].items() for method in item}
    missing = v1_routes(app) - described
    assert not missing, (
        f"describe these in services/intake/entrypoints/openapi.py: {sorted(missing)}"
    )
    assert described <= v1_routes(app)  # and nothing the app does not serve


def test_ticket_commands_take_their_schemas_and_name_their_errors(app: Flask) -> None:
    doc = document(app)
    schemas = doc["components"]["schemas"]
    for action, (schema, _) in ACTIONS.items():
        operation = doc["paths"][f"/api/v1/tickets/{{number}}/{action}"]["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        properties = schemas[body["$ref"].rsplit("/", 1)[1]]["properties"]
        assert set(properties) == {*schema.fields, "expected_version"}, action
        assert operation["security"] == [{"agentToken": []}]
        assert {"400", "401", "404", "409"} <= set(operation["responses"])
    conflict = doc["components"]["responses"]["Conflict"]["content"]["application/json"]
    assert conflict["schema"] == {"$ref": "#/components/schemas/Error"}
    detail = schemas["ErrorDetail"]["properties"]
    assert {"field", "errors", "current_version", "events"} <= set(detail)


def test_config_resources_show_no_credentials(app: Flask) -> None:
    schemas = document(app)["components"]["schemas"]
    assert "key_hash" not in schemas["ApiKey"]["properties"]
    assert "prefix" in schemas["ApiKey"]["properties"]
    assert "key" in schemas["NewApiKey"]["properties"]
    assert not {"password_hash", "token_hash", "password"} & set(schemas["Agent"]["properties"])
    assert schemas["AgentBody"]["properties"]["password"]["writeOnly"] is True
    assert "expected_version" in schemas["DepartmentReplacement"]["properties"]


def test_a_ticket_view_matches_its_documented_shape(app: Flask, platform: Platform) -> None:
    """Every field the view can show, present: collaborators, links, a merged child (its
    entries in the thread, its own view naming the parent), an inline image."""
    _, token = create_agent(
        platform.store, email="root@example.com", name="Root", password=None, admin=True
    )
    auth = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    parent = receive_email(platform, inline_image_email(), channel="pipe").number or ""
    linked, child = (
        client.post("/api/v1/tickets", json=TICKET, headers=auth).json["number"]  # type: ignore[index]
        for _ in range(2)
    )

    def view(number: str) -> dict[str, Any]:
        store = platform.store
        for subscription in (routing_handlers.subscription(), query_handlers.subscription()):
            EmbeddedSubscriber(subscription, store, store.clock).run_until_idle()
        response = client.get(f"/api/v1/tickets/{number}", headers=auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json  # type: ignore[assignment]
        return body

    for action, body in (
        ("collaborators", {"add": [{"email": "carol@example.com", "name": "Carol"}]}),
        ("links", {"link": [linked]}),
        ("merge", {"tickets": [child]}),
    ):
        version = view(parent)["version"]
        answer = client.post(
            f"/api/v1/tickets/{parent}/{action}",
            json={**body, "expected_version": version},
            headers=auth,
        )
        assert answer.status_code == 200, answer.text

    shown, merged = view(parent), view(child)
    assert shown["collaborators"] and shown["links"] == [{"number": linked}]
    assert {e["ticket"]["number"] for e in shown["thread"]} == {parent, child}
    assert shown["thread"][0]["attachments"][0]["content_id"] == "logo@x"
    assert merged["merged_into"] == {"number": parent}

    doc = document(app)
    operation = doc["paths"]["/api/v1/tickets/{number}"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    validator = OAS30Validator({**schema, "components": doc["components"]})
    for ticket in (shown, merged):
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(ticket)]
        assert not errors, errors
        assert undocumented(ticket, schema, doc) == [], "describe these in openapi.py"


def inline_image_email() -> bytes:
    message = EmailMessage()
    message["From"] = "Ada <ada@example.com>"
    message["To"] = "support@deskstream.local"
    message["Subject"] = "Logo broken"
    message.set_content("See the logo.\n")
    message.add_alternative('<p><img src="cid:logo@x"></p>', subtype="html")
    html = message.get_body(("html",))
    assert html is not None
    html.add_related(b"\x89PNG\r\n", maintype="image", subtype="png", cid="<logo@x>")
    return message.as_bytes()


def undocumented(
    value: Any, schema: dict[str, Any], doc: dict[str, Any], at: str = ""
) -> list[str]:
    """Paths of keys the response has and the schema does not name (additional properties are
    allowed, so a validator says nothing about them: the view would grow undocumented)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return undocumented(value, doc["components"]["schemas"][name], doc, at)
    for alternative in schema.get("anyOf", []) + schema.get("allOf", []):
        if value is not None and ("$ref" in alternative or "properties" in alternative):
            return undocumented(value, alternative, doc, at)
    if isinstance(value, list):
        items = schema.get("items", {})
        return [p for i, v in enumerate(value) for p in undocumented(v, items, doc, f"{at}[{i}]")]
    if not isinstance(value, dict) or "properties" not in schema:
        return []
    properties = schema["properties"]
    missing = [f"{at}.{key}" for key in value if key not in properties]
    for key, item in value.items():
        if key in properties:
            missing += undocumented(item, properties[key], doc, f"{at}.{key}")
    return missing


def test_ticket_commands_never_answer_5xx(app: Flask, platform: Platform) -> None:
    """schemathesis bodies from the document against one real ticket, with its current version
    whenever a body names one (so commands are decided, not just refused as stale)."""
    _, token = create_agent(
        platform.store, email="root@example.com", name="Root", password=None, admin=True
    )
    auth = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    number = client.post("/api/v1/tickets", json=TICKET, headers=auth).json["number"]  # type: ignore[index]
    with reading(platform.engine) as conn:
        stream = find_ticket(conn, number)
    assert stream is not None
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app).include(
        path_regex=r"^/api/v1/tickets/\{number\}/", method="POST"
    )
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) == len(ACTIONS)
    for operation in operations:

        @settings(
            max_examples=20,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def command(case: schemathesis.Case) -> None:
            case.path_parameters = {"number": number}
            current = platform.store.stream_version(stream)
            if case.headers and "If-Match" in case.headers:
                case.headers["If-Match"] = f'"{current}"'
            if isinstance(case.body, dict):
                case.body["expected_version"] = current
            response = case.call(headers=auth)
            assert response.status_code < 500, (case.method, case.path, case.body, response.text)

        command()
