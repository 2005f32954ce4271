"""Pieces every end-to-end fixture needs: free loopback ports, a client TLS context
that trusts the self-signed certificate, a data directory with the usual post office,
and a real service running in a background event loop, as ``postroom serve`` runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

from postroom.store import Store
from postroom.store.initialise import initialise

PASSWORD = "Correct-Horse-42!"
ALICE_PASSWORD = "Battery-Staple-17?"


_PORTS_PER_WORKER = 1000
_PORT_BASE = 20_000        # below Linux's ephemeral range (32768-60999 by default)
_next_port = itertools.count(random.randrange(_PORTS_PER_WORKER))


def _worker() -> int:
    """This pytest-xdist worker's number (gw0, gw1 ...), 0 without xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(name[2:]) if name[2:].isdigit() else 0


def free_port() -> int:
    """A loopback port nothing listens on, for a server a test is about to start.

    Not the kernel's pick (``bind`` to port 0): that comes from the ephemeral range,
    which every outgoing connection of every test also draws from, so between this
    call and the server's bind a client socket could take it ("address already in
    use"). Instead each xdist worker has its own block below that range.
    """
    base = _PORT_BASE + (_worker() % 12) * _PORTS_PER_WORKER
    for _ in range(_PORTS_PER_WORKER):
        port = base + next(_next_port) % _PORTS_PER_WORKER
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port in this worker's block")


def client_tls() -> ssl.SSLContext:
    """The tests trust any certificate: the server's is self-signed."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def prepare_mailboxes(home: Path, *, welcome: bool = True) -> Store:
    """Post office ``example``, domain ``example.com``, mailboxes ``bob`` and ``alice``
    reachable at ``@example.com``. ``welcome=False`` removes the default message, so
    tests can count exactly."""
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
    if not welcome:
        for name in ("bob", "alice"):
            uids = [m.uid for m in store.messages.list_messages("example", name, "Inbox")]
            if uids:
                store.messages.expunge("example", name, "Inbox", uids)
    return store


def prepare_client_service(home: Path, service: str) -> Store:
    """The usual mailboxes without their welcome messages (tests count messages
    exactly) and ``service`` (``pop3``, ``imap``) on free loopback ports, plain and TLS."""
    store = prepare_mailboxes(home, welcome=False)
    listen_on_loopback(store, service, (f"{service}.port", f"{service}.{service}s_port"))
    return store


def listen_on_loopback(store: Store, service: str, port_keys: tuple[str, ...]) -> None:
    """``service``'s listeners on free ports of 127.0.0.1, plain-text logins allowed."""
    settings = store.settings
    settings.set(f"{service}.bind", ["127.0.0.1"])
    for key in port_keys:
        settings.set(key, free_port())
    settings.set(f"{service}.security.allow_plaintext_auth_without_tls", True)
    settings.set("smtp.general.local_domain_name", "mail.test")


class LoopThread:
    """An event loop in a background thread (uvloop when installed)."""

    def __init__(self, name: str) -> None:
        self.loop = new_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name,
                                        daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@contextlib.contextmanager
def running(service: Any, store: Store, name: str) -> Iterator[LoopThread]:
    """Start ``service`` in its own loop thread; stop it, the loop and the store after."""
    loop = LoopThread(name)
    try:
        loop.call(service.start())
        yield loop
    finally:
        try:
            loop.call(service.stop())
        finally:
            loop.close()
            store.close()


class ServiceControl:
    """``call`` and ``set`` for a service the test runs in a loop thread (mixed into the
    SMTP, POP3 and IMAP fixtures' dataclasses, which provide the three attributes)."""

    store: Store
    service: Any
    loop: asyncio.AbstractEventLoop

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def set(self, key: str, value: Any) -> None:
        """Change a setting and let the service apply it, as the supervisor would."""
        self.store.settings.set(key, value)

        async def apply() -> None:
            self.service.settings_changed()

        self.call(apply())


class LineClient:
    """Exact bytes to a server over a plain socket, CRLF lines back (the raw POP3 and
    IMAP clients of the tests build on it)."""

    def __init__(self, host: str, port: int, *, tls: bool = False, timeout: float = 10) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            sock = client_tls().wrap_socket(sock)
        self.sock = sock
        self.buf = b""

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._receive("closed; buffered {buf!r}")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def take(self, size: int) -> bytes:
        """The next ``size`` octets (a literal)."""
        while len(self.buf) < size:
            self._receive("closed inside a literal")
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def _receive(self, error: str) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(error.format(buf=self.buf))
        self.buf += chunk

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def starttls(self) -> None:
        self.sock = client_tls().wrap_socket(self.sock)

    def closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, ssl.SSLError):
            return True

    def close(self) -> None:
        self.sock.close()


def children(pid: int) -> list[int]:
    """The direct children of ``pid``'s main thread."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def listeners(port: int) -> int:
    """Listening IPv4 sockets on ``port`` (state 0A in /proc/net/tcp)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1].endswith(f":{port:04X}")
               and row.split()[3] == "0A")


@contextlib.contextmanager
def serving_two_processes(command: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``postroom ... serve SERVICE`` (``command``) set to two accept processes: yields
    once both listen on ``port``; the block must stop it (SIGTERM), else it is killed."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not (children(proc.pid) and listeners(port) == 2):
            assert proc.poll() is None and time.monotonic() < deadline, "no second process"
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()


def connection_ids_by_parity(home: Path, service: str) -> set[int]:
    """Connection ids in ``service``'s activity logs, modulo 2: accept processes number
    their connections apart (even, odd), so ``{0, 1}`` means both served some."""
    activity = "".join(p.read_text() for p in (home / "logs").rglob("*") if p.is_file()
                       and service in p.as_posix() and "ctivity" in p.name)
    ids = {int(line.split("\t")[3]) for line in activity.splitlines()
           if line.count("\t") >= 9 and line.split("\t")[3].isdigit()}
    return {n % 2 for n in ids}
