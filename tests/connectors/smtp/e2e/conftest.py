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
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from postroom.connectors.smtp.service import SmtpService
from postroom.store import Store
from postroom.store.queue import QueueEntry
from tests.dnsserver import DnsTestServer
from tests.servers import ALICE_PASSWORD as ALICE_PASSWORD
from tests.servers import PASSWORD as PASSWORD
from tests.servers import ServiceControl, prepare_mailboxes
from tests.servers import client_tls as client_tls
from tests.servers import free_port as free_port
from tests.servers import new_loop as _new_loop


@dataclass
class SmtpServer(ServiceControl):
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
    store = prepare_mailboxes(home)
    d = store.directory
    d.create_domain("catch.test", "example")
    d.add_address("*@catch.test", "[SF:example/bob]")
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
