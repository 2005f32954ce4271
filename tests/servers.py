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
import threading
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
