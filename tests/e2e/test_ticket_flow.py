"""A ticket posted to the API is routed, gets a due date, its requester gets exactly one
autoresponse (a real SMTP server receives it), and it appears in the open queue — in the
embedded mode (one process) and the distributed mode (seven processes, PostgreSQL, broker)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.support.kafka_broker import KafkaBroker
from tests.support.platform import Deployment, start_distributed, start_embedded
from tests.support.servers import SmtpSink


@pytest.fixture(params=["embedded", "distributed"])
def deployment(
    request: pytest.FixtureRequest, tmp_path: Path, smtp: SmtpSink
) -> Iterator[Deployment]:
    if request.param == "embedded":
        running = start_embedded(tmp_path, smtp_url=smtp.url)
    else:
        broker: KafkaBroker = request.getfixturevalue("broker")
        running = start_distributed(
            tmp_path,
            database_url=str(request.getfixturevalue("postgres_url")),
            bootstrap=broker.bootstrap,
            smtp_url=smtp.url,
        )
    try:
        yield running
    finally:
        running.stop()


def open_ticket(deployment: Deployment, **fields: object) -> str:
    payload = {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "subject": "Printer on fire",
        "message": "Help!",
    }
    response = requests.post(
        f"{deployment.intake_url}/api/tickets.json",
        json={**payload, **fields},
        headers={"X-API-Key": deployment.api_key},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.text


def wait_for(check, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_ticket_flows_through_every_service(deployment: Deployment, smtp: SmtpSink) -> None:
    number = open_ticket(deployment)
    assert number.isdigit()

    def queued() -> dict | None:
        queue = requests.get(
            f"{deployment.query_url}/api/v1/queues/open/tickets",
            headers=deployment.headers(),
            timeout=5,
        ).json()
        return next(
            (t for t in queue["tickets"] if t["number"] == number and t["sla"]["due_at"]), None
        )

    ticket = wait_for(queued)
    assert ticket["department"] == {"id": 1, "name": "Support"}
    assert ticket["priority"] == "normal"
    assert ticket["sla"]["plan"] == {"id": 1, "name": "Default SLA"}
    created = datetime.fromisoformat(ticket["created_at"])
    due = datetime.fromisoformat(ticket["sla"]["due_at"])
    assert timedelta(hours=17, minutes=59) < due - created < timedelta(hours=18, minutes=1)

    mails = smtp.wait_for(1, timeout=30)
    assert mails[0].rcpt_tos == ("ada@example.com",)
    assert f"[#{number}]" in mails[0].message["Subject"]
    assert mails[0].message["Auto-Submitted"] == "auto-replied"

    full = requests.get(
        f"{deployment.query_url}/api/v1/tickets/{number}", headers=deployment.headers(), timeout=5
    ).json()
    assert full["thread"][0]["body"] == "Help!"
    assert full["requester"] == {"email": "ada@example.com", "name": "Ada Lovelace"}

    def notified() -> list | None:
        history = requests.get(
            f"{deployment.query_url}/api/v1/tickets/{number}/events",
            headers=deployment.headers(),
            timeout=5,
        ).json()
        types = [e["type"] for e in history["events"]]
        return types if "SlaApplied" in types else None

    assert wait_for(notified)[:3] == ["TicketCreated", "TicketRouted", "SlaApplied"]
    time.sleep(2)  # anything that would send twice has had time to do so
    assert len(smtp.messages) == 1
