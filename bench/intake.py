"""Intake throughput: tickets/s accepted (201) by the osTicket-compatible API under a closed
loop of N concurrent clients, and how long the pipeline then needs to give them all a due
date (the drain)."""

from __future__ import annotations

import base64
import time
from typing import Any

import requests

from bench.load import ERROR, Send, closed_loop
from tests.support.platform import Deployment

TIMEOUT_S = 10.0


def ticket_payload(tag: str, i: int) -> dict[str, str]:
    return {
        "name": "Bench Requester",
        "email": f"bench-{tag}-{i}@example.com",
        "subject": f"Benchmark ticket {tag}-{i}",
        "message": "The printer is on fire again. " * 8,
    }


def post_ticket(
    session: requests.Session,
    deployment: Deployment,
    payload: dict[str, str],
    idempotency_key: str | None = None,
) -> requests.Response:
    headers = {"X-API-Key": deployment.api_key}
    if idempotency_key is not None:  # a retry with the same key answers the same ticket
        headers["Idempotency-Key"] = idempotency_key
    return session.post(
        f"{deployment.intake_url}/api/tickets.json",
        json=payload,
        headers=headers,
        timeout=TIMEOUT_S,
    )


def json_ticket(
    deployment: Deployment,
    tag: str,
    attachment: bytes | None = None,
    numbers: list[str] | None = None,
) -> Send:
    """The osTicket JSON create as a closed-loop request, optionally with one attachment;
    the numbers of created tickets go to ``numbers`` if given."""
    data_url = (
        "data:application/octet-stream;base64," + base64.b64encode(attachment).decode()
        if attachment is not None
        else None
    )

    def send(session: requests.Session, i: int) -> tuple[str, str]:
        payload: dict[str, Any] = ticket_payload(tag, i)
        if data_url is not None:
            payload["attachments"] = [{f"bench-{i}.bin": data_url}]
        response = post_ticket(session, deployment, payload)
        if response.status_code == 201:
            if numbers is not None:
                numbers.append(response.text.strip())  # list.append is atomic under the GIL
            return "created", ""
        return f"{ERROR} HTTP {response.status_code}", response.text

    return send


def intake_rate(
    deployment: Deployment, *, concurrency: int, duration_s: float, max_tickets: int, tag: str
) -> dict[str, Any]:
    """Closed loop: ``concurrency`` threads post tickets back to back until ``duration_s``
    has passed or ``max_tickets`` were attempted. Only 201 answers count as accepted."""
    numbers: list[str] = []
    result = closed_loop(
        json_ticket(deployment, tag, numbers=numbers),
        concurrency=concurrency,
        duration_s=duration_s,
        max_requests=max_tickets,
        unit="tickets",
    )
    result["accepted"] = result.pop("processed")
    result["numbers"] = numbers
    return result


def open_queue_page(
    session: requests.Session, deployment: Deployment, page: int = 1, per_page: int = 200
) -> dict[str, Any]:
    response = session.get(
        f"{deployment.query_url}/api/v1/queues/open/tickets",
        params={"per_page": str(per_page), "sort": "-created", "page": str(page)},
        headers=deployment.headers(),
        timeout=TIMEOUT_S,
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def wait_until_due(
    deployment: Deployment, numbers: list[str], timeout_s: float, interval_s: float = 0.25
) -> dict[str, Any]:
    """Wait until every ticket in ``numbers`` is in the open queue with a due date, paging
    through the whole queue each round. Returns the drain time and what was still missing."""
    wanted = set(numbers)
    began = time.perf_counter()
    missing = len(wanted)
    with requests.Session() as session:
        while True:
            ready: set[str] = set()
            page = 1
            while True:
                body = open_queue_page(session, deployment, page)
                ready.update(t["number"] for t in body["tickets"] if t["sla"]["due_at"])
                if page * body["per_page"] >= body["total"]:
                    break
                page += 1
            missing = len(wanted - ready)
            elapsed = time.perf_counter() - began
            if missing == 0 or elapsed >= timeout_s:
                break
            time.sleep(interval_s)
    return {
        "tickets": len(wanted),
        "drain_s": round(elapsed, 2),
        "missing_after_timeout": missing,
    }
