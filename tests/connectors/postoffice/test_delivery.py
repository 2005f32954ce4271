"""Delivery into mailboxes through the real store and queue (manual 6.2.4)."""

from __future__ import annotations

import time

import pytest

from postroom.connectors.postoffice.delivery import Delivery, DeliveryDeferred
from postroom.store import Store
from tests.connectors.postoffice.sf_setup import (
    MESSAGE,
    claim,
    folder,
    handle_next,
    inbound,
    submit,
)


def test_delivers_to_inbox_and_tracks(world: Store, delivery: Delivery) -> None:
    entry = submit(world, ["[SF:example/bob]"])
    [outcome] = handle_next(world, delivery)
    assert outcome.event == "delivered"
    assert folder(world, "example", "bob") == [MESSAGE]
    assert world.queue.list("SF.outgoing") == []
    world.tracking.flush()
    events = world.tracking.find(entry.tracking_id)
    assert [(e.service, e.event, e.detail) for e in events] == [
        ("SF", "delivered", "example/bob/Inbox")]
    assert events[0].recipient == "bob@example.com"
    assert events[0].sender == "zed@remote.test"


def test_spam_marked_message_goes_to_junk(world: Store, delivery: Delivery) -> None:
    body = b"X-ME-Content: Deliver-To=Junk\r\n" + MESSAGE
    submit(world, ["[SF:example/bob]"], body=body)
    [outcome] = handle_next(world, delivery)
    assert outcome.detail == "example/bob/Junk E-mail"
    assert folder(world, "example", "bob", "Junk E-mail") == [body]
    assert folder(world, "example", "bob") == []


def test_junk_goes_to_inbox_when_post_office_turns_junk_delivery_off(
        world: Store, delivery: Delivery) -> None:
    world.directory.update_postoffice("example", {"features.junk_email_delivery": False})
    submit(world, ["[SF:example/bob]"], body=b"X-ME-Content: Deliver-To=Junk\r\n" + MESSAGE)
    handle_next(world, delivery)
    assert len(folder(world, "example", "bob")) == 1


def test_deleted_junk_folder_falls_back_to_inbox(world: Store, delivery: Delivery) -> None:
    world.messages.delete_folder("example", "bob", "Junk E-mail")
    submit(world, ["[SF:example/bob]"], body=b"X-ME-Content: Deliver-To=Junk\r\n" + MESSAGE)
    [outcome] = handle_next(world, delivery)
    assert outcome.detail == "example/bob/Inbox"


def test_exactly_once_when_an_entry_is_handled_again_after_a_crash(
        world: Store, delivery: Delivery) -> None:
    world.directory.update_mailbox("example", "bob", options={
        "autoresponder.enabled": True, "autoresponder.body": "Away."})
    world.settings.set("postoffice_connector.autoresponder_frequency", "always")
    world.settings.set("postoffice_connector.ndr_generation", "enabled")
    world.directory.update_mailbox("example", "alice", options={"disabled": True})
    submit(world, ["[SF:example/bob]", "[SF:example/alice]"])
    first = claim(world, lease=0.3)
    delivery.handle(first)            # ... and the worker dies before acknowledging
    time.sleep(0.4)
    again = claim(world)              # the lease ran out: another worker takes it
    assert again.id == first.id
    outcomes = Delivery(world).handle(again)
    world.queue.ack(again.id, worker="test")
    assert outcomes == []             # nothing was left to do
    assert len(folder(world, "example", "bob")) == 1
    sent = inbound(world)
    assert len(sent) == 2             # one auto-reply, one NDR, not two of each
    assert sorted(e.envelope.recipients[0] for e, _ in sent) == ["[SMTP:zed@remote.test]"] * 2


def test_disabled_mailbox_gets_ndr_to_the_sender(world: Store, delivery: Delivery) -> None:
    world.settings.set("postoffice_connector.ndr_generation", "enabled")
    world.directory.update_mailbox("example", "bob", options={"disabled": True})
    entry = submit(world, ["[SF:example/bob]"])
    [outcome] = handle_next(world, delivery)
    assert outcome.event == "bounced"
    assert folder(world, "example", "bob") == []
    [(ndr, body)] = inbound(world)
    assert ndr.envelope.sender == ""
    assert ndr.envelope.recipients == ["[SMTP:zed@remote.test]"]
    assert b"bob@example.com" in body and b"5.2.1" in body
    world.tracking.flush()
    assert [e.event for e in world.tracking.find(entry.tracking_id)] == ["bounced"]


def test_disabled_post_office_and_domain_bounce(world: Store, delivery: Delivery) -> None:
    world.settings.set("postoffice_connector.ndr_generation", "enabled")
    world.directory.update_postoffice("acme", {"disabled": True})
    world.directory.update_domain("example.com", {"disabled": True})
    submit(world, ["[SF:acme/carol]", "[SF:example/bob]"])
    outcomes = handle_next(world, delivery)
    assert {o.event for o in outcomes} == {"bounced"}
    assert folder(world, "acme", "carol") == [] and folder(world, "example", "bob") == []
    [(_ndr, body)] = inbound(world)        # one NDR naming both
    assert b"carol@acme.test" in body and b"bob@example.com" in body


def test_ndr_generation_disabled_sends_nothing(world: Store, delivery: Delivery) -> None:
    world.settings.set("postoffice_connector.ndr_generation", "disabled")
    world.directory.update_mailbox("example", "bob", options={"disabled": True})
    submit(world, ["[SF:example/bob]"])
    [outcome] = handle_next(world, delivery)
    assert outcome.event == "failed"
    assert inbound(world) == []


def test_unknown_mailbox_bounces_5_1_1(world: Store, delivery: Delivery) -> None:
    world.settings.set("postoffice_connector.ndr_generation", "enabled")
    submit(world, ["[SF:example/ghost]"])
    [outcome] = handle_next(world, delivery)
    assert outcome.event == "bounced" and "5.1.1" in outcome.detail
    [(_ndr, body)] = inbound(world)
    assert b"ghost@example.com" in body


def test_no_ndr_for_a_null_sender(world: Store, delivery: Delivery) -> None:
    world.settings.set("postoffice_connector.ndr_generation", "enabled")
    world.directory.update_mailbox("example", "bob", options={"disabled": True})
    submit(world, ["[SF:example/bob]"], sender="")
    [outcome] = handle_next(world, delivery)
    assert outcome.event == "failed"
    assert inbound(world) == []


def test_broken_mime_no_header_and_nul_bytes_are_delivered(
        world: Store, delivery: Delivery) -> None:
    bodies = [
        b"Content-Type: multipart/mixed; boundary=\"nope\"\r\nSubject: broken\r\n\r\n"
        b"--other\r\nno closing boundary\r\n",
        b"just text, no header at all\r\n",
        b"Subject: nul\x00byte\r\n\r\nbody with \x00 and \xff\xfe garbage\r\n",
        b"",
    ]
    for body in bodies:
        submit(world, ["[SF:example/bob]"], body=body)
        [outcome] = handle_next(world, delivery)
        assert outcome.event == "delivered"
    assert folder(world, "example", "bob") == bodies


def test_many_recipients_in_one_entry(world: Store, delivery: Delivery) -> None:
    for i in range(60):
        world.directory.create_mailbox("example", f"user{i}", "Correct-Horse-42!")
    recipients = [f"[SF:example/user{i}]" for i in range(60)]
    submit(world, recipients)
    outcomes = handle_next(world, delivery)
    assert len(outcomes) == 60 and {o.event for o in outcomes} == {"delivered"}
    assert all(len(folder(world, "example", f"user{i}")) == 1 for i in range(60))


def test_large_message_is_delivered_from_a_file(world: Store, delivery: Delivery) -> None:
    body = MESSAGE + b"x" * (6 * 1024 * 1024) + b"\r\n"
    submit(world, ["[SF:example/bob]", "[SF:example/alice]"], body=body)
    handle_next(world, delivery)
    assert folder(world, "example", "bob") == [body]
    assert folder(world, "example", "alice") == [body]
    assert [p for p in world.home.tmp.iterdir() if p.name.startswith("sf-")] == []


def test_transient_failure_defers_only_that_recipient(world: Store, delivery: Delivery) -> None:
    # bob's Inbox directory is in the way (a file): the disk refuses his copy for now
    blocker = world.home.messages / "example" / "bob" / "Inbox"
    if blocker.is_dir():
        import shutil

        shutil.rmtree(blocker)
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("in the way")
    entry = submit(world, ["[SF:example/alice]", "[SF:example/bob]"])
    with pytest.raises(DeliveryDeferred, match="example/bob"):
        delivery.handle(claim(world))
    assert len(folder(world, "example", "alice")) == 1
    blocker.unlink()
    world.queue.retry_now(entry.id)
    outcomes = Delivery(world).handle(world.queue.get(entry.id))
    assert [o.recipient for o in outcomes] == ["[SF:example/bob]"]
    assert len(folder(world, "example", "alice")) == 1
    assert len(folder(world, "example", "bob")) == 1


def test_a_batch_is_delivered_together_each_entry_with_its_own_outcome(
        world: Store, delivery: Delivery) -> None:
    """``handle_many`` (the service's batches): each entry gets its own outcome, and a
    refusal the store makes at commit time (bob's quota has room for one of his two
    messages) reaches only its own entry, which bounces."""
    world.directory.update_mailbox("example", "bob", quota_bytes=300)  # one MESSAGE fits
    for target in ("[SF:example/bob]", "[SF:example/alice]", "[SF:example/bob]",
                   "[SF:acme/carol]", "[SF:example/nobody]"):
        submit(world, [target])
    entries = world.queue.claim("SF.outgoing", "test", limit=10)
    results = delivery.handle_many(entries)
    events = [[o.event for o in result] for result in results]  # type: ignore[union-attr]
    assert events == [["delivered"], ["delivered"], ["bounced"], ["delivered"], ["failed"]]
    assert "5.2.2" in results[2][0].detail                      # type: ignore[index]
    assert "5.1.1" in results[4][0].detail                      # type: ignore[index]
    assert folder(world, "example", "bob").count(MESSAGE) == 1
    assert folder(world, "example", "alice") == [MESSAGE]
    assert folder(world, "acme", "carol") == [MESSAGE]


def test_a_batch_entry_that_must_wait_is_deferred_alone(world: Store, delivery: Delivery,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected store error for one entry of a batch (here a failed commit of its
    append) defers that entry only; the others are delivered."""
    submit(world, ["[SF:example/bob]"])
    submit(world, ["[SF:example/alice]"])
    entries = world.queue.claim("SF.outgoing", "test", limit=10)
    real = world.messages.append_async

    def append_async(postoffice: str, mailbox: str, *args: object, **kwargs: object) -> object:
        if mailbox == "alice":
            from concurrent.futures import Future
            failed: Future[object] = Future()
            failed.set_exception(OSError("disk on fire"))
            return failed
        return real(postoffice, mailbox, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(world.messages, "append_async", append_async)
    first, second = delivery.handle_many(entries)
    assert [o.event for o in first] == ["delivered"]               # type: ignore[union-attr]
    assert isinstance(second, DeliveryDeferred) and "disk on fire" in str(second)
    assert folder(world, "example", "bob") == [MESSAGE]
    assert folder(world, "example", "alice") == []
