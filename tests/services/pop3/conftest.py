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
import socket
import ssl
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from postroom.services.pop3.service import Pop3Service
from postroom.store import Store
from postroom.store.initialise import initialise

PASSWORD = "Correct-Horse-42!"
ALICE_PASSWORD = "Battery-Staple-17?"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def message(n: int, body: str = "", *, lf: bool = False) -> bytes:
    text = (f"From: sender@example.net\r\nTo: bob@example.com\r\nSubject: test {n}\r\n"
            f"Message-ID: <m{n}@example.net>\r\n\r\n{body or f'Body of message {n}.'}\r\n")
    return text.replace("\r\n", "\n").encode() if lf else text.encode()


@dataclass
class Pop3Server:
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

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def set(self, key: str, value: Any) -> None:
        self.store.settings.set(key, value)

        async def apply() -> None:
            self.service.settings_changed()

        self.call(apply())

    def deliver(self, mailbox: str, data: bytes) -> int:
        return self.store.messages.append("example", mailbox, "Inbox", data).uid

    def uids(self, mailbox: str = "bob") -> list[int]:
        return [m.uid for m in self.store.messages.list_messages("example", mailbox, "Inbox")]


class RawPop3:
    """Exact bytes to the server, replies as bytes."""

    def __init__(self, host: str, port: int, *, tls: bool = False, timeout: float = 10) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            sock = client_tls().wrap_socket(sock)
        self.sock = sock
        self.buf = b""

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; buffered {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def multiline(self) -> list[bytes]:
        """The body after a +OK status line, unstuffed, without the end marker."""
        lines = []
        while (line := self.line()) != b".":
            lines.append(line[1:] if line.startswith(b".") else line)
        return lines

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, text: str | bytes) -> bytes:
        self.send((text.encode() if isinstance(text, str) else text) + b"\r\n")
        return self.line()

    def starttls(self) -> None:
        self.sock = client_tls().wrap_socket(self.sock)

    def login(self, user: str = "bob@example", password: str = PASSWORD) -> bytes:
        assert self.command(f"USER {user}").startswith(b"+OK")
        return self.command(f"PASS {password}")

    def closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, ssl.SSLError):
            return True

    def close(self) -> None:
        self.sock.close()


def _prepare(home: Path) -> Store:
    initialise(home, hostname="mail.test")
    store = Store.open(home)
    d = store.directory
    d.create_postoffice("example")
    d.create_domain("example.com", "example")
    d.create_mailbox("example", "bob", PASSWORD)
    d.create_mailbox("example", "alice", ALICE_PASSWORD)
    for address, target in (("bob@example.com", "[SF:example/bob]"),
                            ("alice@example.com", "[SF:example/alice]")):
        if d.resolve(address) is None:
            d.add_address(address, target)
    for name in ("bob", "alice"):     # no welcome message: tests count exactly
        uids = [m.uid for m in store.messages.list_messages("example", name, "Inbox")]
        if uids:
            store.messages.expunge("example", name, "Inbox", uids)
    settings = store.settings
    settings.set("pop3.bind", ["127.0.0.1"])
    settings.set("pop3.port", free_port())
    settings.set("pop3.pop3s_port", free_port())
    settings.set("pop3.security.allow_plaintext_auth_without_tls", True)
    settings.set("smtp.general.local_domain_name", "mail.test")
    return store


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


@pytest.fixture
def pop3_server(tmp_path: Path) -> Iterator[Pop3Server]:
    store = _prepare(tmp_path / "data")
    loop = new_loop()
    thread = threading.Thread(target=loop.run_forever, name="pop3-test-loop", daemon=True)
    thread.start()
    service = Pop3Service(store, auth_failure_delay=0.0)
    server = Pop3Server(tmp_path / "data", store, service, loop)
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


@pytest.fixture
def raw(pop3_server: Pop3Server) -> Iterator[RawPop3]:
    client = RawPop3(pop3_server.host, pop3_server.port)
    assert client.line().startswith(b"+OK")
    yield client
    client.close()
