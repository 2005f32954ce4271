"""A small hosted world for the post office connector tests.

Post office ``example`` hosts ``example.com`` (mailboxes bob, alice, postmaster);
post office ``acme`` hosts ``acme.test`` (mailbox carol). :func:`submit` puts a
message into ``SF.outgoing`` as the MTA would (recipients ``[SF:po/mb]``, the
addresses the sender used in ``extra["rcpt"]``); :func:`handle_next` claims one entry
and runs the real :class:`Delivery` on it.
"""

from __future__ import annotations

from typing import Any

from postroom.connectors.postoffice.delivery import Delivery, Outcome
from postroom.store import Store
from postroom.store.queue import Envelope, QueueEntry

PASSWORD = "Correct-Horse-42!"
QUEUE = "SF.outgoing"
MESSAGE = (b"Received: from client.remote.test by mail.test; Sun, 25 Jan 2026 10:00:00 +0000\r\n"
           b"From: Zed <zed@remote.test>\r\n"
           b"To: Bob <bob@example.com>\r\n"
           b"Subject: hello\r\n"
           b"Message-ID: <m1@remote.test>\r\n"
           b"\r\n"
           b"Hello Bob.\r\n")


def populate(store: Store) -> Store:
    d = store.directory
    d.create_postoffice("example")
    d.create_domain("example.com", "example")
    for name in ("bob", "alice", "postmaster"):
        d.create_mailbox("example", name, PASSWORD)
        if d.resolve(f"{name}@example.com") is None:
            d.add_address(f"{name}@example.com", f"[SF:example/{name}]")
    d.create_postoffice("acme")
    d.create_domain("acme.test", "acme")
    d.create_mailbox("acme", "carol", PASSWORD)
    if d.resolve("carol@acme.test") is None:
        d.add_address("carol@acme.test", "[SF:acme/carol]")
    return store


def submit(store: Store, recipients: list[str], *, body: bytes = MESSAGE,
           sender: str = "[SMTP:zed@remote.test]", auth_user: str | None = None,
           **extra: Any) -> QueueEntry:
    rcpt = []
    for target in recipients:
        po, _, name = target[4:-1].partition("/")
        domain = {"example": "example.com", "acme": "acme.test"}.get(po, "nowhere.test")
        rcpt.append({"address": f"{name}@{domain}", "target": target, "notify": [],
                     "orcpt": None})
    envelope = Envelope(sender, recipients, client_ip="192.0.2.7", auth_user=auth_user,
                        extra={"rcpt": rcpt, **extra})
    return store.queue.enqueue(QUEUE, envelope, body)


def claim(store: Store, lease: float = 300.0) -> QueueEntry:
    entries = store.queue.claim(QUEUE, "test", limit=1, lease_seconds=lease)
    assert entries, "nothing to claim in SF.outgoing"
    return entries[0]


def handle_next(store: Store, delivery: Delivery) -> list[Outcome]:
    entry = claim(store)
    outcomes = delivery.handle(entry)
    store.queue.ack(entry.id, worker="test")
    return outcomes


def folder(store: Store, po: str, mb: str, name: str = "Inbox") -> list[bytes]:
    return [store.messages.read(po, mb, name, m.uid)
            for m in store.messages.list_messages(po, mb, name)]


def inbound(store: Store) -> list[tuple[QueueEntry, bytes]]:
    """What the connector sent back to the MTA (NDRs, auto-replies, redirected copies)."""
    return [(e, store.queue.read_body(e)) for e in store.queue.list("MTA.inbound")]
