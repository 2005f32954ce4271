"""Mailbox redirection and forward-all (manual 5.5.5, 5.5.7, 6.2.4.2)."""

from __future__ import annotations

import time
from email import message_from_bytes
from email.policy import default

from postroom.connectors.postoffice.delivery import Delivery
from postroom.store import Store
from tests.connectors.postoffice.sf_setup import MESSAGE, folder, handle_next, inbound, submit


def redirect_bob(world: Store, *targets: str, keep_copy: bool = False) -> None:
    world.directory.update_mailbox("example", "bob", options={
        "redirect.enabled": True, "redirect.addresses": list(targets),
        "redirect.keep_copy": keep_copy})


def test_default_remail_keeps_headers_and_sender(world: Store, delivery: Delivery) -> None:
    redirect_bob(world, "bob@elsewhere.test", "robert@other.test")
    entry = submit(world, ["[SF:example/bob]"])
    [outcome] = handle_next(world, delivery)
    assert outcome.event == "redirected"
    assert folder(world, "example", "bob") == []
    [(copy, body)] = inbound(world)
    assert copy.envelope.sender == "[SMTP:zed@remote.test]"
    assert copy.envelope.recipients == ["[SMTP:bob@elsewhere.test]", "[SMTP:robert@other.test]"]
    assert body == b"X-Postroom-Redirected: 1\r\n" + MESSAGE
    world.tracking.flush()
    [event] = world.tracking.find(entry.tracking_id)
    assert event.event == "redirected" and copy.tracking_id in event.detail


def test_remail_from_mailbox_address(world: Store, delivery: Delivery) -> None:
    world.settings.set("postoffice_connector.redirection_handling", "remail")
    redirect_bob(world, "bob@elsewhere.test")
    submit(world, ["[SF:example/bob]"])
    handle_next(world, delivery)
    [(copy, body)] = inbound(world)
    assert copy.envelope.sender == "[SMTP:bob@example.com]"
    assert b"Resent-From: <bob@example.com>\r\n" in body and body.endswith(MESSAGE)


def test_redirect_as_attachment(world: Store, delivery: Delivery) -> None:
    world.settings.set("postoffice_connector.redirection_handling", "as_attachment")
    redirect_bob(world, "bob@elsewhere.test")
    submit(world, ["[SF:example/bob]"])
    handle_next(world, delivery)
    [(copy, body)] = inbound(world)
    assert copy.envelope.sender == "[SMTP:bob@example.com]"
    msg = message_from_bytes(body, policy=default)
    assert msg["Subject"] == "Fwd: hello"
    attached = [p for p in msg.walk() if p.get_content_type() == "message/rfc822"]
    assert len(attached) == 1
    inner = attached[0].get_payload()[0]
    assert inner["Message-ID"] == "<m1@remote.test>"


def test_redirection_disabled_by_server_setting(world: Store, delivery: Delivery) -> None:
    world.settings.set("postoffice_connector.redirection_handling", "disabled")
    redirect_bob(world, "bob@elsewhere.test")
    submit(world, ["[SF:example/bob]"])
    [outcome] = handle_next(world, delivery)
    assert outcome.event == "delivered"
    assert inbound(world) == []


def test_keep_copy_delivers_locally_too(world: Store, delivery: Delivery) -> None:
    redirect_bob(world, "bob@elsewhere.test", keep_copy=True)
    submit(world, ["[SF:example/bob]"])
    [outcome] = handle_next(world, delivery)
    assert outcome.event == "delivered"
    assert folder(world, "example", "bob") == [MESSAGE]
    assert len(inbound(world)) == 1


def test_loop_is_stopped_and_the_message_kept(world: Store, delivery: Delivery) -> None:
    redirect_bob(world, "bob@elsewhere.test")
    looping = b"X-Postroom-Redirected: 5\r\n" + MESSAGE
    submit(world, ["[SF:example/bob]"], body=looping)
    [outcome] = handle_next(world, delivery)
    assert outcome.event == "delivered"
    assert folder(world, "example", "bob") == [looping]
    assert inbound(world) == []


def test_hops_are_counted_across_redirections(world: Store, delivery: Delivery) -> None:
    redirect_bob(world, "alice@example.com")
    submit(world, ["[SF:example/bob]"], body=b"X-Postroom-Redirected: 3\r\n" + MESSAGE)
    handle_next(world, delivery)
    [(_copy, body)] = inbound(world)
    assert body.startswith(b"X-Postroom-Redirected: 4\r\n")


def test_redirect_to_itself_is_ignored(world: Store, delivery: Delivery) -> None:
    redirect_bob(world, "bob@example.com")
    submit(world, ["[SF:example/bob]"])
    [outcome] = handle_next(world, delivery)
    assert outcome.event == "delivered" and inbound(world) == []


def test_redirected_once_even_when_handled_twice(world: Store, delivery: Delivery) -> None:
    redirect_bob(world, "bob@elsewhere.test")
    entry = submit(world, ["[SF:example/bob]"])
    [claimed] = world.queue.claim("SF.outgoing", "test", limit=1, lease_seconds=0.2)
    delivery.handle(claimed)          # ... and the worker dies before acknowledging
    time.sleep(0.3)
    [again] = world.queue.claim("SF.outgoing", "test", limit=1)   # the lease ran out
    assert again.id == entry.id
    assert Delivery(world).handle(again) == []
    assert len(inbound(world)) == 1


def test_forward_all_keeps_mail_unless_delete_after(world: Store, delivery: Delivery) -> None:
    world.directory.update_mailbox("example", "bob", options={
        "forward_all.enabled": True, "forward_all.target": "bob@home.test"})
    submit(world, ["[SF:example/bob]"])
    handle_next(world, delivery)
    assert folder(world, "example", "bob") == [MESSAGE]
    [(copy, _body)] = inbound(world)
    assert copy.envelope.recipients == ["[SMTP:bob@home.test]"]
    assert copy.envelope.sender == "[SMTP:bob@example.com]"
    world.directory.update_mailbox("example", "bob", options={"forward_all.delete_after": True})
    submit(world, ["[SF:example/bob]"])
    [outcome] = handle_next(world, delivery)
    assert outcome.event == "redirected"
    assert len(folder(world, "example", "bob")) == 1


def test_large_message_redirected_as_attachment_from_a_file(
        world: Store, delivery: Delivery) -> None:
    world.settings.set("postoffice_connector.redirection_handling", "as_attachment")
    redirect_bob(world, "bob@elsewhere.test")
    body = MESSAGE + b"z" * (5 * 1024 * 1024)
    submit(world, ["[SF:example/bob]"], body=body)
    handle_next(world, delivery)
    [(_copy, sent)] = inbound(world)
    assert body in sent
    assert [p for p in world.home.tmp.iterdir() if p.name.startswith("sf-")] == []
