"""Email intake end to end, in-process on both dialects: an email becomes a ticket, replies
thread into it, the desk's own mail never loops, and refusals are recorded, not raised.

Routing, notify and query run as embedded subscribers, so the autoresponse is a real message
in the maildrop whose Message-ID the customer's reply then names."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from libs.events.envelope import NewEvent
from libs.events.store import ANY_VERSION
from libs.platform.access import create_agent
from libs.platform.configuration import define, definitions
from libs.platform.database import reading
from libs.platform.settings import Settings
from services import migrations
from services.embedded import embedded_app
from services.intake.config import seed_defaults
from services.intake.email_intake import MailOutcome, receive_email
from services.platform import Platform
from tests.support.desk import pipeline, settle
from tests.support.mail import CORPUS, compose, corpus_files

HELPDESK = "support@deskstream.local"


@pytest.fixture
def platform(database_url: str, tmp_path: Path) -> Iterator[Platform]:
    settings = replace(
        Settings(), database_url=database_url, data_dir=tmp_path, helpdesk_email=HELPDESK
    )
    platform = Platform.build(settings)
    migrations.upgrade(platform.engine)
    seed_defaults(platform.store)
    yield platform
    platform.close()


class Desk:
    """The platform with its subscribers, driven until idle after each email."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.maildrop = platform.settings.maildrop_dir
        self.subscribers = pipeline(platform)

    def receive(self, raw: bytes) -> MailOutcome:
        outcome = receive_email(self.platform, raw, channel="pipe")
        settle(self.subscribers)
        return outcome

    def events(self, number: str) -> list[tuple[str, dict[str, Any]]]:
        store = self.platform.store
        created = next(
            e
            for e in store.read_all(0, 100_000)
            if e.type == "TicketCreated" and e.data["number"] == number
        )
        return [(e.type, e.data) for e in store.read_stream(created.stream_id)]

    def types(self, number: str) -> list[str]:
        return [t for t, _ in self.events(number)]

    def tickets(self) -> list[str]:
        store = self.platform.store
        return [e.data["number"] for e in store.read_all(0, 100_000) if e.type == "TicketCreated"]

    def refusals(self) -> list[dict[str, Any]]:
        store = self.platform.store
        return [e.data for e in store.read_all(0, 100_000) if e.type == "EmailRefused"]

    def sent(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for p in sorted(self.maildrop.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
        ]

    def define(self, thing: str, data: dict[str, Any]) -> None:
        store = self.platform.store
        with store.transaction() as conn:
            current = definitions(conn, store, thing, data["id"])
            define(store, thing, data, conn=conn, expected_version=current[0][0] if current else 0)


@pytest.fixture
def desk(platform: Platform, tmp_path: Path) -> Desk:
    return Desk(platform)


def test_an_email_opens_a_ticket_and_the_reply_to_its_autoresponse_joins_it(desk: Desk) -> None:
    created = desk.receive(compose(subject="Printer on fire", body="Flames, everywhere.\n"))
    assert created.action == "created"
    (event_type, data), *_ = desk.events(created.number or "")
    assert event_type == "TicketCreated"
    assert data["channel"] == "email"
    assert data["requester"] == {"email": "ada@example.com", "name": "Ada Lovelace"}
    assert data["subject"] == "Printer on fire" and "Flames, everywhere." in data["body"]
    (autoresponse,) = desk.sent()
    assert autoresponse["To"].addresses[0].addr_spec == "ada@example.com"

    # The customer's client keeps In-Reply-To but drops the number from the subject.
    reply = compose(
        subject="Re: help", body="Still burning.", in_reply_to=autoresponse["Message-ID"]
    )
    appended = desk.receive(reply)
    assert appended == MailOutcome("appended", created.number)
    entries = [d for t, d in desk.events(created.number or "") if t == "MessageAppended"]
    assert [e["body"].strip() for e in entries] == ["Still burning."]
    assert entries[0]["author"]["email"] == "ada@example.com"
    assert len(desk.sent()) == 1, "a message on an open ticket gets no second autoresponse"


def test_a_redelivered_email_has_one_effect(desk: Desk) -> None:
    raw = compose(message_id="<once@mail.example.com>")
    first = desk.receive(raw)
    again = desk.receive(raw)
    assert again == MailOutcome("duplicate", first.number)
    assert desk.tickets() == [first.number]
    assert len(desk.sent()) == 1


def test_the_subject_number_threads_only_for_people_on_the_ticket(desk: Desk) -> None:
    number = desk.receive(compose()).number
    by_requester = desk.receive(compose(subject=f"Re: [#{number}] Printer on fire"))
    assert by_requester == MailOutcome("appended", number)
    stranger = desk.receive(
        compose(sender="Mallory <mallory@evil.example>", subject=f"Re: [#{number}] mine now")
    )
    assert stranger.action == "created" and stranger.number != number


def test_to_and_cc_people_become_collaborators_and_their_replies_thread(desk: Desk) -> None:
    original = compose(
        message_id="<first@mail.example.com>",
        to=f"Support <{HELPDESK}>, Bob <bob@example.com>",
        cc="carol@example.com",
    )
    number = desk.receive(original).number or ""
    added = [d["email"] for t, d in desk.events(number) if t == "CollaboratorAdded"]
    assert added == ["bob@example.com", "carol@example.com"]

    # Bob answers Ada's mail (not ours): passive threading by the stored Message-ID.
    reply = compose(sender="Bob <bob@example.com>", in_reply_to="<first@mail.example.com>")
    assert desk.receive(reply) == MailOutcome("appended", number)
    # Dan, whom nobody copied, replies to the same thread and joins it.
    dan = compose(sender="dan@example.com", in_reply_to="<first@mail.example.com>")
    assert desk.receive(dan) == MailOutcome("appended", number)
    added = [d["email"] for t, d in desk.events(number) if t == "CollaboratorAdded"]
    assert added == ["bob@example.com", "carol@example.com", "dan@example.com"]


def test_one_email_adds_at_most_the_cap_of_collaborators_and_notes_the_rest(
    desk: Desk,
) -> None:
    cap = desk.platform.settings.max_collaborators_per_message
    assert cap == 20  # the default is what is under test
    crowd = ", ".join(f"p{n}@example.net" for n in range(2000))
    number = desk.receive(compose(cc=crowd, message_id="<crowd@x.org>")).number or ""

    def left_out() -> list[str]:
        return [
            d["body"]
            for t, d in desk.events(number)
            if t == "MessageAppended" and d["kind"] == "note"
        ]

    def added() -> list[str]:
        return [d["email"] for t, d in desk.events(number) if t == "CollaboratorAdded"]

    assert added() == [f"p{n}@example.net" for n in range(cap)]  # the first, in header order
    [note] = left_out()
    assert note.startswith("1980 more To/Cc addresses were not added as collaborators")

    # A reply that copies more people adds at most the cap again, and says so.
    more = ", ".join(f"q{n}@example.net" for n in range(cap + 10))
    reply = compose(cc=more, in_reply_to="<crowd@x.org>")
    assert desk.receive(reply) == MailOutcome("appended", number)
    assert added()[cap:] == [f"q{n}@example.net" for n in range(cap)]
    assert left_out()[1].startswith("10 more To/Cc addresses")


def test_collaborators_from_cc_can_be_switched_off(platform: Platform, tmp_path: Path) -> None:
    platform.settings = replace(platform.settings, email_collaborators=False)
    desk = Desk(platform)
    number = desk.receive(compose(cc="carol@example.com")).number or ""
    assert "CollaboratorAdded" not in desk.types(number)


def test_a_reply_reopens_a_closed_ticket_but_not_in_an_archived_department(desk: Desk) -> None:
    number = desk.receive(compose(message_id="<a@mail.example.com>")).number or ""
    close(desk, number)
    desk.receive(compose(in_reply_to="<a@mail.example.com>", body="It came back."))
    assert status(desk, number) == "open"
    events = desk.events(number)

    close(desk, number)
    desk.define("department", {"id": 2, "name": "Everything else", "status": "active"})
    department_id = next(d for t, d in events if t == "TicketRouted")["department_id"]
    with reading(desk.platform.engine) as conn:
        ((_, department),) = definitions(conn, desk.platform.store, "department", department_id)
    desk.define("department", {**department, "status": "archived"})
    follow_up = desk.receive(compose(in_reply_to="<a@mail.example.com>", message_id="<b@x.org>"))
    assert follow_up.action == "created" and follow_up.number != number
    created = desk.events(follow_up.number or "")[0][1]
    assert created["previous_ticket"] == number
    assert status(desk, number) == "closed"


def status(desk: Desk, number: str) -> str:
    return [d["status"] for t, d in desk.events(number) if t == "TicketStatusChanged"][-1]


def close(desk: Desk, number: str) -> None:
    store = desk.platform.store
    stream = next(e.stream_id for e in store.read_all(0, 100_000) if e.data.get("number") == number)
    by = {"kind": "agent", "id": 1, "name": "A", "email": None}
    store.append(
        stream, [NewEvent("TicketStatusChanged", {"status": "closed", "by": by})], ANY_VERSION
    )


def test_auto_replies_get_no_autoresponse_and_never_reopen(desk: Desk) -> None:
    vacation = compose(
        subject="Out of Office: back Monday", headers={"Auto-Submitted": "auto-replied"}
    )
    number = desk.receive(vacation).number or ""
    assert desk.events(number)[0][1]["autorespond"] is False
    assert desk.sent() == []

    asked = desk.receive(compose(message_id="<q@mail.example.com>")).number or ""
    close(desk, asked)
    bulk = compose(in_reply_to="<q@mail.example.com>", headers={"Precedence": "bulk"})
    assert desk.receive(bulk).action == "appended"
    assert status(desk, asked) == "closed"


def test_a_bounce_is_a_note_on_the_ticket_whose_mail_bounced(desk: Desk) -> None:
    number = desk.receive(compose(sender="ghost@nowhere.example")).number or ""
    (autoresponse,) = desk.sent()
    bounce = delivery_report(autoresponse["Message-ID"])
    assert desk.receive(bounce) == MailOutcome("noted", number)
    note = desk.events(number)[-1]
    assert note[0] == "MessageAppended" and note[1]["kind"] == "note"
    assert note[1]["autorespond"] is False
    assert desk.tickets() == [number]

    unknown = desk.receive(delivery_report("<never-sent@elsewhere.example>"))
    assert unknown.action == "refused" and desk.tickets() == [number]
    assert [r["reason"] for r in desk.refusals()] == ["bounce"]


def delivery_report(original_id: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        f"To: {HELPDESK}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-" + original_id.strip("<>").replace("@", ".") + "@mx.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        "Final-Recipient: rfc822; ghost@nowhere.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {HELPDESK}\r\nTo: ghost@nowhere.example\r\nMessage-ID: {original_id}\r\n"
        "Subject: [#1] Printer\r\n"
        "\r\n--B--\r\n"
    ).encode()


def test_our_own_mail_coming_back_is_a_loop(desk: Desk) -> None:
    desk.receive(compose())
    (autoresponse,) = desk.sent()
    looped = desk.receive(autoresponse.as_bytes())
    assert looped.action == "refused" and "came back" in (looped.reason or "")
    from_us = desk.receive(compose(sender=HELPDESK, message_id="<other@x.org>"))
    assert from_us.action == "refused"
    assert len(desk.tickets()) == 1
    assert [r["reason"] for r in desk.refusals()] == ["loop", "loop"]


def test_banned_senders_and_domains_are_refused(desk: Desk) -> None:
    desk.define("banned-email", {"id": 1, "email": "spam@example.org", "active": True})
    desk.define("banned-email", {"id": 2, "email": "evil.example", "active": True})
    for sender in ("spam@example.org", "x@mail.evil.example"):
        outcome = desk.receive(compose(sender=sender))
        assert outcome.action == "refused" and "banned" in (outcome.reason or "")
    # A clean Reply-To does not carry a banned From past the ban list.
    hidden = desk.receive(compose(sender="spam@example.org", reply_to="clean@example.net"))
    assert hidden.action == "refused" and "spam@example.org is banned" in (hidden.reason or "")
    assert desk.receive(compose(sender="ham@example.org")).action == "created"
    assert len(desk.tickets()) == 1


def test_the_open_ticket_limit_refuses_a_new_ticket_but_not_a_reply(
    platform: Platform, tmp_path: Path
) -> None:
    # The limit is under test, not the mail-loop guard (test_mail_loop.py): no window.
    platform.settings = replace(platform.settings, max_open_tickets=2, autoresponse_window_s=0)
    desk = Desk(platform)
    first = desk.receive(compose(message_id="<1@x.org>")).number
    desk.receive(compose(message_id="<2@x.org>"))
    over = desk.receive(compose(message_id="<3@x.org>"))
    assert over.action == "refused" and "maximum of 2 open tickets" in (over.reason or "")
    notices = [m for m in desk.sent() if m["Subject"].startswith("Open ticket limit reached")]
    assert [m["To"].addresses[0].addr_spec for m in notices] == ["ada@example.com"]
    assert notices[0]["Auto-Submitted"] == "auto-replied"
    again = desk.receive(compose(message_id="<3@x.org>"))  # refused again, noticed once
    assert (again.action, again.refused, again.reason) == ("refused", over.refused, over.reason)
    assert len([m for m in desk.sent() if m["Subject"].startswith("Open ticket")]) == 1
    assert desk.receive(compose(in_reply_to="<1@x.org>")) == MailOutcome("appended", first)
    close(desk, first or "")
    assert desk.receive(compose(message_id="<4@x.org>")).action == "created"


def test_an_inline_image_keeps_its_content_id_through_to_the_ticket_view(desk: Desk) -> None:
    message = email.message.EmailMessage()
    message["From"] = "Ada Lovelace <ada@example.com>"
    message["To"] = HELPDESK
    message["Subject"] = "Our new logo is broken"
    message.set_content("See the logo.\n")
    message.add_alternative('<p>See: <img src="cid:logo@x" alt="logo"></p>', subtype="html")
    html = message.get_body(("html",))
    assert html is not None
    html.add_related(PNG, maintype="image", subtype="png", cid="<logo@x>", filename="logo.png")
    number = desk.receive(message.as_bytes()).number or ""

    (image,) = desk.events(number)[0][1]["attachments"]
    assert (image["filename"], image["content_type"]) == ("logo.png", "image/png")
    assert (image["content_id"], image["inline"]) == ("logo@x", True)

    _, token = create_agent(
        desk.platform.store, email="grace@example.com", name="Grace", password=None, admin=True
    )
    response = (
        embedded_app(desk.platform)
        .test_client()
        .get(f"/api/v1/tickets/{number}", headers={"Authorization": f"Bearer {token}"})
    )
    assert response.status_code == 200, response.text
    first = response.json["thread"][0]  # type: ignore[index]
    assert 'src="cid:logo@x"' in first["body_html"]
    assert [(a["content_id"], a["inline"], a["id"]) for a in first["attachments"]] == [
        ("logo@x", True, image["id"])
    ]


PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")


def test_an_oversized_attachment_is_refused_with_a_note_and_the_ticket_stands(
    platform: Platform, tmp_path: Path
) -> None:
    platform.settings = replace(platform.settings, max_attachment_bytes=1000)
    desk = Desk(platform)
    small = desk.receive(compose(attachment=("log.txt", b"x" * 500))).number or ""
    assert desk.events(small)[0][1]["attachments"][0]["filename"] == "log.txt"
    big = desk.receive(compose(attachment=("core.dump", b"x" * 5000))).number or ""
    created, *rest = desk.events(big)
    assert created[1]["attachments"] == []
    note = next(d for t, d in rest if t == "MessageAppended" and d["kind"] == "note")
    assert "core.dump" in note["body"] and "1000" in note["body"]


def test_the_receiving_address_picks_the_department(desk: Desk) -> None:
    desk.define(
        "department",
        {"id": 2, "name": "Sales", "email": "sales@deskstream.local", "status": "active"},
    )
    number = desk.receive(compose(to="Sales <sales@deskstream.local>")).number or ""
    routed = next(d for t, d in desk.events(number) if t == "TicketRouted")
    assert routed["department_id"] == 2
    # The department's own address never becomes a collaborator.
    assert "CollaboratorAdded" not in desk.types(number)


def test_every_corpus_email_becomes_a_ticket_a_message_or_a_refusal_with_a_reason(
    desk: Desk,
) -> None:
    files = corpus_files()
    outcomes: dict[str, MailOutcome] = {}
    for path in files:
        outcomes[str(path.relative_to(CORPUS))] = receive_email(
            desk.platform, path.read_bytes(), channel="pipe"
        )
    for name, outcome in outcomes.items():
        if outcome.action == "refused":
            assert outcome.reason, name
        else:  # a duplicate (the corpus repeats some Message-IDs) names its ticket or refusal
            assert outcome.number or (outcome.action == "duplicate" and outcome.reason), name
    created = [o.number for o in outcomes.values() if o.action == "created"]
    assert len(created) == len(set(created)) == len(desk.tickets())
    # Delivery reports never open tickets.
    for name, outcome in outcomes.items():
        if name.startswith("multipart_report_emails/"):
            assert outcome.action in ("refused", "noted", "duplicate"), name
            assert outcome.action != "duplicate" or outcome.number is None, name


def test_mail_to_a_merged_ticket_goes_to_the_ticket_it_was_merged_into(desk: Desk) -> None:
    parent = desk.receive(compose(message_id="<parent@x.org>")).number or ""
    child = desk.receive(compose(message_id="<child@x.org>", subject="Also broken")).number or ""
    store = desk.platform.store
    parent_created = desk.events(parent)[0][1]
    child_stream = next(
        e.stream_id for e in store.read_all(0, 100_000) if e.data.get("number") == child
    )
    by = {"kind": "agent", "id": 1, "name": "A", "email": None}
    merged = {"into_ticket_id": parent_created["ticket_id"], "into_number": parent, "by": by}
    store.append(child_stream, [NewEvent("TicketMerged", merged)], ANY_VERSION)

    by_header = desk.receive(compose(in_reply_to="<child@x.org>", body="More."))
    by_number = desk.receive(compose(subject=f"Re: [#{child}] Also broken", body="Still."))
    assert by_header == by_number == MailOutcome("appended", parent)
    assert "MessageAppended" not in desk.types(child)
