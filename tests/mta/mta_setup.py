"""A small hosted world for the MTA tests, and a way to run the agent on one entry.

Post office ``example`` hosts ``example.com`` (mailboxes bob, alice, carol; group
``staff`` = bob + alice + a remote address; list ``news``) and ``catch.test`` (catch-all
to bob). ``remote.test`` and ``other.test`` are not hosted.
"""

from __future__ import annotations

from typing import Any

from postroom.mta.agent import MtaAgent
from postroom.store import Store
from postroom.store.queue import Envelope, QueueEntry

PASSWORD = "Correct-Horse-42!"
MESSAGE = (b"Received: from client.remote.test by mail.test; Sun, 25 Jan 2026 10:00:00 +0000\r\n"
           b"From: Alice <alice@remote.test>\r\n"
           b"To: Bob <bob@example.com>\r\n"
           b"Subject: hello\r\n"
           b"Message-ID: <m1@remote.test>\r\n"
           b"\r\n"
           b"Hello Bob.\r\n")


def populate(store: Store) -> Store:
    d = store.directory
    d.create_postoffice("example")
    d.create_domain("example.com", "example")
    d.create_domain("catch.test", "example")
    for name in ("bob", "alice", "carol"):
        d.create_mailbox("example", name, PASSWORD)
    for address, target in (("bob@example.com", "[SF:example/bob]"),
                            ("alice@example.com", "[SF:example/alice]"),
                            ("carol@example.com", "[SF:example/carol]")):
        if d.resolve(address) is None:
            d.add_address(address, target)
    d.create_group("example", "staff")
    for member in ("[SF:example/bob]", "[SMTP:alice@example.com]", "[SMTP:zoe@remote.test]"):
        d.add_group_member("example", "staff", member)
    d.add_address("staff@example.com", "[SF:example/staff]")
    d.create_list("example", "news")
    d.add_address("news@example.com", "[LS:example/news]")
    d.update_domain("catch.test", {"catch_all": "bob@example.com"})
    return store


def enqueue(store: Store, recipients: list[str], *, sender: str = "[SMTP:alice@remote.test]",
            body: bytes = MESSAGE, auth_user: str | None = "alice",
            **extra: Any) -> QueueEntry:
    """An authenticated submission (NDRs are sent only for those by default)."""
    envelope = Envelope(sender, recipients, client_ip="192.0.2.7", auth_user=auth_user,
                        extra=dict(extra))
    return store.queue.enqueue("MTA.inbound", envelope, body)


def run_agent(store: Store, agent: MtaAgent | None = None) -> int:
    """Claim everything ready in MTA.inbound (except NDRs) and handle it; return the count."""
    agent = agent or MtaAgent(store, worker="test")
    handled = 0
    for entry in store.queue.claim("MTA.inbound", agent.worker or "test", limit=100):
        if entry.envelope.extra.get("source") == "ndr":
            store.queue.retry(entry.id, 0, "not under test", worker=agent.worker or "test")
            continue
        agent.handle(entry)
        handled += 1
    return handled


def outgoing(store: Store, queue: str) -> list[QueueEntry]:
    return store.queue.list(queue)


def ndrs(store: Store) -> list[QueueEntry]:
    return [e for e in store.queue.list("MTA.inbound") if e.envelope.extra.get("source") == "ndr"]
