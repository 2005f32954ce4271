"""End-to-end fixtures: the real SMTP service on loopback, driven by real clients.

``smtp_server`` initialises a data directory (post office ``example`` with domain
``example.com``, mailboxes ``bob`` and ``alice``; a catch-all domain
``catch.test``), points every listener at a free port on 127.0.0.1 and the resolver
at a loopback DNS server (``remote.test`` exists, ``nowhere.test`` does not), and runs
:class:`~postroom.connectors.smtp.service.SmtpService` in a background event loop
thread (uvloop when installed), as ``postroom serve smtp`` does. Loopback is removed
from the privileged (relay) ranges so relay rules apply to the tests' clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from postroom.connectors.smtp.service import SmtpService
from postroom.store import Store
from postroom.store.initialise import initialise
from postroom.store.queue import QueueEntry
from tests.dnsserver import DnsTestServer

PASSWORD = "Correct-Horse-42!"
ALICE_PASSWORD = "Battery-Staple-17?"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client_tls() -> ssl.SSLContext:
    """The tests trust any certificate: the server's is self-signed."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass
class SmtpServer:
    home: Path
    store: Store
    service: SmtpService
    loop: asyncio.AbstractEventLoop
    dns: DnsTestServer
    host: str = "127.0.0.1"

    @property
    def port(self) -> int:
        return self.service.ports()["mx"]

    @property
    def submission_port(self) -> int:
        return self.service.ports()["submission"]

    @property
    def smtps_port(self) -> int:
        return self.service.ports()["smtps"]

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def set(self, key: str, value: Any) -> None:
        """Change a setting and let the service apply it, as the supervisor would."""
        self.store.settings.set(key, value)

        async def apply() -> None:
            self.service.settings_changed()

        self.call(apply())

    def entries(self) -> list[QueueEntry]:
        return self.store.queue.list("MTA.inbound")

    def body(self, tracking_id: str) -> bytes:
        queue = self.store.queue
        return queue.read_body(queue.get(tracking_id))

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError("condition not reached in time")


def _prepare(home: Path, dns: DnsTestServer) -> Store:
    initialise(home, hostname="mail.test")
    store = Store.open(home)
    d = store.directory
    d.create_postoffice("example")
    d.create_domain("example.com", "example")
    d.create_domain("catch.test", "example")
    d.create_mailbox("example", "bob", PASSWORD)
    d.create_mailbox("example", "alice", ALICE_PASSWORD)
    for address, target in (("bob@example.com", "[SF:example/bob]"),
                            ("alice@example.com", "[SF:example/alice]"),
                            ("*@catch.test", "[SF:example/bob]")):
        if d.resolve(address) is None or "*" in address:
            with contextlib.suppress(ValueError):   # mailboxes may map themselves
                d.add_address(address, target)
    dns.add("remote.test", "MX", "10 mx.remote.test")
    dns.add("mx.remote.test", "A", "192.0.2.10")
    settings = store.settings
    settings.set("smtp.bind", ["127.0.0.1"])
    settings.set("smtp.port", free_port())
    settings.set("smtp.submission_port", free_port())
    settings.set("smtp.smtps_port", free_port())
    settings.set("dns.nameservers", [dns.nameserver])
    settings.set("smtp.relay.privileged_ip_ranges", [])
    settings.set("smtp.general.local_domain_name", "mail.test")
    settings.set("smtp.general.default_mail_domain_name", "example.com")
    return store


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    with DnsTestServer() as dns:
        store = _prepare(tmp_path / "data", dns)
        loop = _new_loop()
        thread = threading.Thread(target=loop.run_forever, name="smtp-test-loop", daemon=True)
        thread.start()
        service = SmtpService(store, auth_failure_delay=0.05, pickup_interval=0.2,
                              pickup_settle=0.0)
        server = SmtpServer(tmp_path / "data", store, service, loop, dns)
        try:
            server.call(service.start())
            yield server
        finally:
            try:
                server.call(service.stop())
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(10)
                loop.close()
                store.close()
