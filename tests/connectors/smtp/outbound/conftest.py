"""Outbound delivery fixtures: a hosted world, a loopback DNS zone and peer MX servers.

``outbound`` runs the real MTA, post office connector and :class:`SmtpOutService`
(with a clock the test moves) in one background event loop, against a data directory
with post office ``example`` (``example.com``, mailbox ``bob``) and a DNS server whose
zone the test fills. ``peer(n, ...)`` starts a real SMTP server on 127.0.0.n:25 and
names it ``mxN.test``; tests that cannot bind port 25 there are skipped.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from postroom.connectors.smtp.outbound.service import SmtpOutService
from postroom.services.supervisor import SERVICES, Service
from postroom.store import Store
from postroom.store.initialise import initialise
from postroom.store.queue import Envelope, QueueEntry
from tests.connectors.smtp.e2e.conftest import _new_loop, smtp_server  # noqa: F401
from tests.connectors.smtp.outbound.peer import Peer
from tests.dnsserver import DnsTestServer
from tests.servers import ServiceControl

PASSWORD = "Correct-Horse-42!"
MESSAGE = (b"From: Bob <bob@example.com>\r\nTo: Zoe <zoe@remote.test>\r\n"
           b"Subject: hello\r\nMessage-ID: <m1@example.com>\r\n\r\nHello Zoe.\r\n")


class Clock:
    """Wall time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Outbound(ServiceControl):
    home: Path
    store: Store
    dns: DnsTestServer
    loop: asyncio.AbstractEventLoop
    clock: Clock
    service: SmtpOutService
    peers: list[Peer] = field(default_factory=list)
    others: list[Service] = field(default_factory=list)


    def peer(self, n: int, domain: str | None = None, **options: Any) -> Peer:
        """A peer on 127.0.0.n:25, MX of ``domain`` (default ``dN.test``)."""
        try:
            peer = Peer(f"127.0.0.{n}", **options).start()
        except OSError as exc:
            pytest.skip(f"cannot bind 127.0.0.{n}:25 ({exc}); these tests need root")
        self.peers.append(peer)
        self.dns.add(domain or f"d{n}.test", "MX", f"10 mx{n}.test")
        self.dns.add(f"mx{n}.test", "A", f"127.0.0.{n}")
        return peer

    def send(self, recipients: list[str], *, sender: str = "bob@example.com",
             body: bytes = MESSAGE, rcpt: list[dict[str, Any]] | None = None,
             **extra: Any) -> QueueEntry:
        """Queue in SMTP.outgoing as the MTA does (authenticated sender bob)."""
        if rcpt is not None:
            extra["rcpt"] = rcpt
        envelope = Envelope(f"[SMTP:{sender}]" if sender else "",
                            [f"[SMTP:{r}]" for r in recipients], client_ip="192.0.2.7",
                            auth_user="bob@example.com", extra=extra)
        return self.store.queue.enqueue("SMTP.outgoing", envelope, body)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError("condition not reached in time")

    def outgoing(self) -> list[QueueEntry]:
        return self.store.queue.list("SMTP.outgoing")

    def settled(self, timeout: float = 15.0) -> list[QueueEntry]:
        """Wait until nothing in SMTP.outgoing is claimed or due; return what waits."""
        def quiet() -> bool:
            now = time.time()
            return not any(e.state == "claimed" or (e.state == "ready"
                                                    and e.next_attempt_at <= now)
                           for e in self.store.queue.list())
        self.wait_for(quiet, timeout)
        return self.outgoing()

    def inbox(self, mailbox: str = "bob") -> list[bytes]:
        store = self.store
        return [store.messages.read("example", mailbox, "Inbox", info.uid)
                for info in store.messages.list_messages("example", mailbox, "Inbox")]

    def events(self, event: str) -> list[Any]:
        self.store.tracking.flush()
        return [e for e in self.store.tracking.find(limit=10_000) if e.event == event]


def prepare(home: Path, dns: DnsTestServer) -> Store:
    initialise(home, hostname="mail.test")
    store = Store.open(home)
    d = store.directory
    d.create_postoffice("example")
    d.create_domain("example.com", "example")
    d.create_mailbox("example", "bob", PASSWORD)
    if d.resolve("bob@example.com") is None:
        d.add_address("bob@example.com", "[SF:example/bob]")
    settings = store.settings
    settings.set("dns.nameservers", [dns.nameserver])
    settings.set("smtp.general.local_domain_name", "out.sender.test")
    settings.set("smtp.outbound.remote_timeout", 10)
    return store


@pytest.fixture
def outbound(tmp_path: Path) -> Iterator[Outbound]:
    with DnsTestServer() as dns:
        home = tmp_path / "sender"
        store = prepare(home, dns)
        loop = _new_loop()
        thread = threading.Thread(target=loop.run_forever, name="outbound-loop", daemon=True)
        thread.start()
        clock = Clock()
        service = SmtpOutService(store, clock=clock, idle_seconds=0.3, poll_seconds=0.5)
        system = Outbound(home, store, dns, loop, clock, service)
        try:
            for name in ("mta", "postoffice"):
                other = SERVICES[name](store)
                system.call(other.start())
                system.others.append(other)
            system.call(service.start())
            yield system
        finally:
            try:
                system.call(service.stop(), 60)
                for other in reversed(system.others):
                    system.call(other.stop())
            finally:
                for peer in system.peers:
                    peer.stop()
                loop.call_soon_threadsafe(loop.stop)
                thread.join(10)
                loop.close()
                store.close()
