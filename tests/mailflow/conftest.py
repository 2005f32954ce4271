"""Mail flow end to end: the SMTP service, the MTA and the post office connector.

``mail_system`` prepares the SMTP end-to-end data directory (post office ``example``,
domains ``example.com`` and the catch-all domain ``catch.test``, mailboxes ``bob`` and
``alice``, a loopback DNS server) and runs the three real services in one background
event loop, as ``postroom serve smtp mta postoffice`` does. Tests talk to it with
smtplib and read what the mailboxes hold through the store.
"""

from __future__ import annotations

import asyncio
import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from postroom.services.supervisor import SERVICES, Service
from postroom.store import Store
from tests.connectors.smtp.e2e.conftest import _new_loop, _prepare
from tests.dnsserver import DnsTestServer

NAMES = ("smtp", "mta", "postoffice")


@dataclass
class MailSystem:
    home: Path
    store: Store
    loop: asyncio.AbstractEventLoop
    services: dict[str, Service] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.services["smtp"].ports()["mx"]  # type: ignore[attr-defined]

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def set(self, key: str, value: Any) -> None:
        """Change a setting and tell the services, as the supervisor's poll would."""
        self.store.settings.set(key, value)

        async def apply() -> None:
            for service in self.services.values():
                service.settings_changed()

        self.call(apply())

    def send(self, sender: str, recipients: list[str], message: bytes | str) -> str:
        """Send through the MX listener; return the tracking id of the 250 reply."""
        data = message.encode() if isinstance(message, str) else message
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
            client.ehlo("client.remote.test")
            client.mail(sender)
            for recipient in recipients:
                code, text = client.rcpt(recipient)
                assert code == 250, (recipient, code, text)
            code, text = client.data(data)
            assert code == 250, text
        return text.decode().split()[-1]

    def messages(self, mailbox: str, folder: str = "Inbox",
                 postoffice: str = "example") -> list[Message]:
        store = self.store
        return [message_from_bytes(store.messages.read(postoffice, mailbox, folder, info.uid))
                for info in store.messages.list_messages(postoffice, mailbox, folder)]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError("condition not reached in time")

    def wait_for_messages(self, mailbox: str, count: int = 1, folder: str = "Inbox",
                          timeout: float = 10.0) -> list[Message]:
        return self.wait_for(lambda: len(found := self.messages(mailbox, folder)) >= count
                             and found, timeout)

    def idle(self, timeout: float = 10.0) -> None:
        """Wait until no queue holds a ready or claimed entry (all mail moved on)."""
        def quiet() -> bool:
            return not any(e.state in ("ready", "claimed") and e.queue != "SMTP.outgoing"
                           for e in self.store.queue.list())
        self.wait_for(quiet, timeout)


@pytest.fixture
def mail_system(tmp_path: Path) -> Iterator[MailSystem]:
    with DnsTestServer() as dns:
        store = _prepare(tmp_path / "data", dns)
        loop = _new_loop()
        thread = threading.Thread(target=loop.run_forever, name="mailflow-loop", daemon=True)
        thread.start()
        system = MailSystem(tmp_path / "data", store, loop)
        try:
            for name in NAMES:
                service = SERVICES[name](store)
                system.call(service.start())
                system.services[name] = service
            yield system
        finally:
            try:
                for service in reversed(list(system.services.values())):
                    system.call(service.stop())
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(10)
                loop.close()
                store.close()
