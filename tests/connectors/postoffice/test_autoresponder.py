"""Auto-responders (manual 5.5.6, 6.2.4.2; RFC 3834)."""

from __future__ import annotations

from datetime import datetime, timedelta
from email import message_from_bytes
from email.policy import default

import pytest

from postroom.connectors.postoffice.delivery import Delivery
from postroom.store import Store
from tests.connectors.postoffice.sf_setup import MESSAGE, handle_next, inbound, submit


@pytest.fixture
def away(world: Store) -> Store:
    world.directory.update_mailbox("example", "bob", options={
        "autoresponder.enabled": True, "autoresponder.subject": "Out of office",
        "autoresponder.body": "I am away until Monday.", "friendly_name": "Bob Builder",
        "reply_to": "office@example.com"})
    return world


def replies(world: Store) -> list[bytes]:
    return [body for e, body in inbound(world) if e.envelope.extra.get("autoreply_for")]


def test_reply_carries_rfc_3834_headers_and_null_sender(away: Store,
                                                        delivery: Delivery) -> None:
    entry = submit(away, ["[SF:example/bob]"])
    handle_next(away, delivery)
    [(reply_entry, body)] = inbound(away)
    assert reply_entry.envelope.sender == ""
    assert reply_entry.envelope.recipients == ["[SMTP:zed@remote.test]"]
    msg = message_from_bytes(body, policy=default)
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["In-Reply-To"] == "<m1@remote.test>"
    assert msg["References"] == "<m1@remote.test>"
    assert msg["Subject"] == "Out of office"
    assert msg["From"] == "Bob Builder <bob@example.com>"
    assert msg["Reply-To"] == "office@example.com"
    assert "away until Monday" in msg.get_content()
    away.tracking.flush()
    assert [e.event for e in away.tracking.find(entry.tracking_id)] == ["autoreplied",
                                                                         "delivered"]


def test_empty_subject_option_gives_re_subject(away: Store, delivery: Delivery) -> None:
    away.directory.update_mailbox("example", "bob", options={"autoresponder.subject": ""})
    submit(away, ["[SF:example/bob]"])
    handle_next(away, delivery)
    [body] = replies(away)
    assert message_from_bytes(body, policy=default)["Subject"] == "Re: hello"


def test_once_per_sender_per_day(away: Store, delivery: Delivery) -> None:
    for _ in range(3):
        submit(away, ["[SF:example/bob]"])
        handle_next(away, delivery)
    submit(away, ["[SF:example/bob]"], sender="[SMTP:yan@remote.test]")
    handle_next(away, delivery)
    assert len(replies(away)) == 2


def test_always_frequency_replies_every_time(away: Store, delivery: Delivery) -> None:
    away.settings.set("postoffice_connector.autoresponder_frequency", "always")
    for _ in range(2):
        submit(away, ["[SF:example/bob]"])
        handle_next(away, delivery)
    assert len(replies(away)) == 2


@pytest.mark.parametrize("header", [
    b"List-Id: <news.example.org>\r\n",
    b"List-Unsubscribe: <mailto:leave@example.org>\r\n",
    b"Precedence: bulk\r\n",
    b"Precedence: junk\r\n",
    b"Precedence: list\r\n",
    b"Auto-Submitted: auto-replied\r\n",
    b"Auto-Submitted: auto-generated; owner-email=x@y\r\n",
])
def test_no_reply_to_list_bulk_or_automatic_mail(away: Store, delivery: Delivery,
                                                 header: bytes) -> None:
    submit(away, ["[SF:example/bob]"], body=header + MESSAGE)
    [outcome] = handle_next(away, delivery)
    assert outcome.event == "delivered"
    assert replies(away) == []


def test_auto_submitted_no_is_answered(away: Store, delivery: Delivery) -> None:
    submit(away, ["[SF:example/bob]"], body=b"Auto-Submitted: no\r\n" + MESSAGE)
    handle_next(away, delivery)
    assert len(replies(away)) == 1


@pytest.mark.parametrize("sender", ["", "[SMTP:MAILER-DAEMON@remote.test]",
                                    "[SMTP:owner-news@remote.test]",
                                    "[SMTP:news-request@remote.test]",
                                    "[SMTP:bob@example.com]"])
def test_no_reply_to_null_system_or_own_senders(away: Store, delivery: Delivery,
                                                sender: str) -> None:
    submit(away, ["[SF:example/bob]"], sender=sender)
    handle_next(away, delivery)
    assert replies(away) == []


def test_master_switch_and_postmaster(world: Store, delivery: Delivery) -> None:
    world.directory.update_mailbox("example", "postmaster", options={
        "autoresponder.enabled": True, "autoresponder.body": "no"})
    submit(world, ["[SF:example/postmaster]"])
    handle_next(world, delivery)
    assert replies(world) == []
    world.directory.update_mailbox("example", "bob", options={
        "autoresponder.enabled": True, "autoresponder.body": "away"})
    world.settings.set("postoffice_connector.autoresponders_enabled", False)
    submit(world, ["[SF:example/bob]"])
    handle_next(world, delivery)
    assert replies(world) == []


def test_time_window(away: Store, delivery: Delivery) -> None:
    now = datetime.now()
    away.directory.update_mailbox("example", "bob", options={
        "autoresponder.time_window": True,
        "autoresponder.start_time": (now + timedelta(days=1)).isoformat(timespec="minutes"),
        "autoresponder.end_time": (now + timedelta(days=2)).isoformat(timespec="minutes")})
    submit(away, ["[SF:example/bob]"])
    handle_next(away, delivery)
    assert replies(away) == []          # not yet
    away.directory.update_mailbox("example", "bob", options={
        "autoresponder.start_time": (now - timedelta(hours=1)).isoformat(timespec="minutes")})
    submit(away, ["[SF:example/bob]"])
    handle_next(away, delivery)
    assert len(replies(away)) == 1      # inside the window
    away.directory.update_mailbox("example", "bob", options={
        "autoresponder.end_time": (now - timedelta(minutes=5)).isoformat(timespec="minutes")})
    away.settings.set("postoffice_connector.autoresponder_frequency", "always")
    submit(away, ["[SF:example/bob]"])
    handle_next(away, delivery)
    assert len(replies(away)) == 1      # over
