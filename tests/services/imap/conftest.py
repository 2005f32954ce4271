"""IMAP fixtures: the real service on loopback, mail placed in the store, a raw client.

``imap_server`` initialises a data directory (post office ``example`` with domain
``example.com``; mailboxes ``bob`` and ``alice``), points both listeners at free ports
on 127.0.0.1 and runs :class:`~postroom.services.imap.service.ImapService` in a
background event loop thread, as ``postroom serve imap`` does. Plain text logins
without TLS are allowed here; the tests of LOGINDISABLED switch that off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from postroom.services.imap.service import ImapService
from postroom.store import Store
from tests.servers import (
    PASSWORD,
    LineClient,
    ServiceControl,
    prepare_client_service,
    running,
)


def message(n: int, body: str = "", *, subject: str = "", sender: str = "sender@example.net"
            ) -> bytes:
    return (f"From: {sender}\r\nTo: bob@example.com\r\nSubject: {subject or f'test {n}'}\r\n"
            f"Date: Mon, 2 Mar 2026 10:0{n % 10}:00 +0000\r\n"
            f"Message-ID: <m{n}@example.net>\r\n\r\n{body or f'Body of message {n}.'}\r\n"
            ).encode()


@dataclass
class ImapServer(ServiceControl):
    home: Path
    store: Store
    service: ImapService
    loop: asyncio.AbstractEventLoop
    host: str = "127.0.0.1"

    @property
    def port(self) -> int:
        return self.service.ports()["imap"]

    @property
    def imaps_port(self) -> int:
        return self.service.ports()["imaps"]

    def deliver(self, data: bytes, mailbox: str = "bob", folder: str = "Inbox",
                flags: tuple[str, ...] = ()) -> int:
        return self.store.messages.append("example", mailbox, folder, data, flags).uid

    def messages(self, folder: str = "Inbox", mailbox: str = "bob") -> list[Any]:
        return self.store.messages.list_messages("example", mailbox, folder)

    def claim_recent(self, folder: str = "Inbox", mailbox: str = "bob") -> None:
        """As if an earlier session had selected the folder: its messages so far are no
        longer \\Recent (RFC 3501 §2.3.2), for tests that compare FLAGS exactly."""
        self.store.messages.claim_recent("example", mailbox, folder, 2 ** 32)


class RawImap(LineClient):
    """Exact bytes to the server; responses as lines (literals inline)."""

    def __init__(self, host: str, port: int, *, tls: bool = False, timeout: float = 10) -> None:
        super().__init__(host, port, tls=tls, timeout=timeout)
        self.greeting = self.line()

    def line(self) -> bytes:
        """One response line; a literal it announces is read and appended."""
        line = super().line()
        if line.endswith(b"}") and b"{" in line:
            size = int(line[line.rindex(b"{") + 1:-1])
            return line + b"\r\n" + self.take(size) + self.line()
        return line

    def command(self, text: str | bytes, tag: str = "a") -> list[bytes]:
        """Send ``tag text``; all lines up to and including the tagged response."""
        data = text.encode() if isinstance(text, str) else text
        self.send(tag.encode() + b" " + data + b"\r\n")
        return self.until(tag)

    def until(self, tag: str) -> list[bytes]:
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag.encode() + b" "):
                return lines

    def login(self, user: str = "bob@example", password: str = PASSWORD) -> list[bytes]:
        return self.command(f'LOGIN {user} "{password}"', "l")


def _prepare(home: Path) -> Store:
    return prepare_client_service(home, "imap")


@pytest.fixture
def imap_server(tmp_path: Path) -> Iterator[ImapServer]:
    store = _prepare(tmp_path / "data")
    service = ImapService(store, auth_failure_delay=0.0)
    with running(service, store, "imap-test-loop") as loop:
        yield ImapServer(tmp_path / "data", store, service, loop.loop)


@pytest.fixture
def raw(imap_server: ImapServer) -> Iterator[RawImap]:
    client = RawImap(imap_server.host, imap_server.port)
    yield client
    client.close()


@pytest.fixture
def bob(raw: RawImap) -> RawImap:
    assert raw.login()[-1].startswith(b"l OK")
    return raw
