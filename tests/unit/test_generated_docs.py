"""The committed contract documents equal what the registries generate (run `make docs`)."""

from __future__ import annotations

import json

import pytest

from services.docs import DOCS, generated


@pytest.mark.parametrize("name", sorted(generated()))
def test_committed_doc_matches_the_code(name: str) -> None:
    committed = (DOCS / name).read_text()
    assert committed == generated()[name], f"docs/{name} is stale: run `make docs`"


def test_asyncapi_lists_every_ticket_event_on_the_tickets_topic() -> None:
    document = json.loads(generated()["asyncapi.json"])
    tickets = document["channels"]["deskstream.tickets.v1"]["messages"]
    assert {"TicketCreated", "TicketRouted", "SlaApplied", "TicketOverdue"} <= set(tickets)
    assert (
        document["components"]["messages"]["TicketCreated"]["name"] == "deskstream.TicketCreated.v1"
    )
