"""POP3 fixtures: the real service on loopback, mail placed in the store, a raw client.

``pop3_server`` initialises a data directory (post office ``example`` with domain
``example.com``; mailboxes ``bob`` and ``alice``, both reachable at
``@example.com``), points both listeners at free ports on 127.0.0.1 and runs
:class:`~postroom.services.pop3.service.Pop3Service` in a background event loop
thread, as ``postroom serve pop3`` does. Plain text logins without TLS are allowed
here (most tests are about POP3, not TLS); the tests of that rule switch it off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from postroom.services.pop3.service import Pop3Service
from postroom.store import Store
from tests.servers import (
    PASSWORD,
    LineClient,
    ServiceControl,
    prepare_client_service,
    running,
)


def message(n: int, body: str = "", *, lf: bool = False) -> bytes:
    text = (f"From: sender@example.net\r\nTo: bob@example.com\r\nSubject: test {n}\r\n"
            f"Message-ID: <m{n}@example.net>\r\n\r\n{body or f'Body of message {n}.'}\r\n")
    return text.replace("\r\n", "\n").encode() if lf else text.encode()


@dataclass
class Pop3Server(ServiceControl):
    home: Path
    store: Store
    service: Pop3Service
    loop: asyncio.AbstractEventLoop
    host: str = "127.0.0.1"

    @property
    def port(self) -> int:
        return self.service.ports()["pop3"]

    @property
    def pop3s_port(self) -> int:
        return self.service.ports()["pop3s"]

    def deliver(self, mailbox: str, data: bytes) -> int:
        return self.store.messages.append("example", mailbox, "Inbox", data).uid

    def uids(self, mailbox: str = "bob") -> list[int]:
        return [m.uid for m in self.store.messages.list_messages("example", mailbox, "Inbox")]


class RawPop3(LineClient):
    """Exact bytes to the server, replies as bytes."""

    def multiline(self) -> list[bytes]:
        """The body after a +OK status line, unstuffed, without the end marker."""
        lines = []
        while (line := self.line()) != b".":
            lines.append(line[1:] if line.startswith(b".") else line)
        return lines

    def command(self, text: str | bytes) -> bytes:
        self.send((text.encode() if isinstance(text, str) else text) + b"\r\n")
        return self.line()

    def login(self, user: str = "bob@example", password: str = PASSWORD) -> bytes:
        assert self.command(f"USER {user}").startswith(b"+OK")
        return self.command(f"PASS {password}")


def _prepare(home: Path) -> Store:
    return prepare_client_service(home, "pop3")


@pytest.fixture
def pop3_server(tmp_path: Path) -> Iterator[Pop3Server]:
    store = _prepare(tmp_path / "data")
    service = Pop3Service(store, auth_failure_delay=0.0)
    with running(service, store, "pop3-test-loop") as loop:
        yield Pop3Server(tmp_path / "data", store, service, loop.loop)


@pytest.fixture
def raw(pop3_server: Pop3Server) -> Iterator[RawPop3]:
    client = RawPop3(pop3_server.host, pop3_server.port)
    assert client.line().startswith(b"+OK")
    yield client
    client.close()
