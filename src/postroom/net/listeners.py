"""Listening sockets and the per-connection transport every network service uses.

:class:`Connection` is a small ``asyncio.Protocol`` rather than streams, for two
reasons: STARTTLS (SMTP RFC 3207, POP3 STLS RFC 2595, IMAP STARTTLS) must not let
plaintext that arrived after the command reach the TLS layer or the session (RFC 3207
§4, the CVE-2011-0411 family: reading is paused when the go-ahead is written and
anything already buffered is discarded), and reads return whatever is buffered
without a task switch when bytes are waiting (pipelined commands). Reading pauses
above :data:`HIGH_WATER` buffered bytes and writing honours the transport's flow
control, so a slow or flooding client costs bounded memory.

:class:`Listeners` opens a service's sockets (with ``SO_REUSEPORT`` when several
accept processes share them, ``services/accept_processes.py``), starts one task per
connection for the session the service makes (:meth:`Listeners.session`), and stops
them: idle sessions at once, a session that says it is ``busy`` (a message being
committed, POP3's UPDATE state) within a grace period. A failed TLS handshake on an
implicit-TLS port drops that connection only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from postroom.net.tls import ServerTls, describe

log = logging.getLogger("postroom.net")

HIGH_WATER = 1024 * 1024
READ_LIMIT = 256 * 1024


class Connection(asyncio.Protocol):
    """One client socket, with ``read``/``write``/``drain``/``start_tls`` for the session."""

    def __init__(self, on_made: Callable[[Connection], None]) -> None:
        self._on_made = on_made
        self.transport: asyncio.Transport | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._eof = False
        self._closed = False
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._write_paused = False
        self._timer: asyncio.TimerHandle | None = None      # the idle timer (see read)
        self._deadline = 0.0
        self.answer_now: Callable[[bytes], bool] | None = None
        """Set by a session while it waits in :meth:`read`: bytes that arrive are given
        to it at once, in the transport's callback, instead of waking its task (a task
        switch per command: a few µs of every POP3 command). It consumes them all and
        returns True to go on waiting, or False to end the read (which then returns
        ``b""`` with :attr:`handed_over` set: not the end of the stream). It must not
        raise."""
        self._handed_over = False
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:
            self.transport = transport  # type: ignore[assignment]  # uvloop: not a subclass
            # Kept: get_running_loop() costs a getpid() system call on every call.
            self.loop = asyncio.get_running_loop()
            try:
                self._on_made(self)
            except Exception:
                log.exception("cannot start an SMTP session")
                transport.close()

    def data_received(self, data: bytes) -> None:
        answer, waiter = self.answer_now, self._waiter
        if answer is not None and waiter is not None and not waiter.done() \
                and not self._chunks and not self._eof:
            # The session is waiting for these bytes: it may answer them here, without
            # the task switch (see ``answer_now``).
            if not answer(data):
                self._handed_over = True
                self._wake()
            return
        self._chunks.append(data)
        self._size += len(data)
        if self._size > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        # Keep the socket open to send the replies still pending (TLS transports close
        # on EOF whatever we answer, and warn if we answer True).
        return self.transport is None or self.transport.get_extra_info("ssl_object") is None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._eof = True
        self._wake()
        self._stop_timer()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def _idle_check(self) -> None:
        """The idle timer fired: time out the waiting read if its deadline has passed,
        else wait on for it (nothing waiting: the next read arms a new timer)."""
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done() or self.loop is None:
            return
        if self.loop.time() >= self._deadline:
            waiter.set_exception(TimeoutError())
        else:
            self._timer = self.loop.call_at(self._deadline, self._idle_check)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- what the session uses -----------------------------------------------------------

    @property
    def peer(self) -> tuple[str, int]:
        assert self.transport is not None
        return _host_port(self.transport.get_extra_info("peername"))

    @property
    def local(self) -> tuple[str, int]:
        assert self.transport is not None
        return _host_port(self.transport.get_extra_info("sockname"))

    def tls_description(self) -> str | None:
        assert self.transport is not None
        return describe(self.transport.get_extra_info("ssl_object"))

    @property
    def handed_over(self) -> bool:
        """The last :meth:`read` ended because ``answer_now`` handed over (see there)."""
        return self._handed_over

    @property
    def write_paused(self) -> bool:
        """The client is not reading what we send: write nothing more before draining."""
        return self._write_paused

    def extend_read(self, timeout: float) -> None:
        """The waiting read's idle timeout starts again (``answer_now`` answered)."""
        if self.loop is not None:
            self._deadline = self.loop.time() + timeout

    async def read(self, timeout: float) -> bytes:
        """Buffered bytes, waiting up to ``timeout`` seconds; ``b""`` at end of stream.

        The idle timer is lazy: this runs for every command, and a timer made and
        cancelled per read cost 1.6 µs. One timer per connection stays armed; when it
        fires early (the client spoke since), it re-arms itself for the deadline of the
        read then waiting, so it fires at most about once per timeout period."""
        self._handed_over = False
        if not self._chunks and not self._eof:
            loop = self.loop or asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            deadline = self._deadline = loop.time() + timeout
            timer = self._timer
            if timer is None or timer.when() > deadline:
                if timer is not None:
                    timer.cancel()
                self._timer = loop.call_at(deadline, self._idle_check)
            try:
                await waiter
            finally:
                self._waiter = None
        if not self._chunks:
            return b""
        data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        if self._paused and self.transport is not None and not self._closed:
            self._paused = False
            self.transport.resume_reading()
        return data

    def write(self, data: bytes) -> None:
        if self._closed or self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        self.transport.write(data)

    async def drain(self) -> None:
        if self._write_paused and not self._closed:
            self._drain = asyncio.get_running_loop().create_future()
            await self._drain
        if self._closed:
            raise ConnectionResetError("the client closed the connection")

    async def start_tls(self, context: ssl.SSLContext, timeout: float) -> str | None:
        """Switch to TLS after our ``220``; buffered plaintext is discarded first."""
        assert self.transport is not None
        self.transport.pause_reading()
        self._chunks.clear()
        self._size = 0
        self._paused = False
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(self.transport, self, context, server_side=True,
                                         ssl_handshake_timeout=timeout)
        if transport is None:
            raise ConnectionResetError("the client closed the connection during TLS")
        self.transport = transport  # type: ignore[assignment]
        return self.tls_description()

    def close(self) -> None:
        self._stop_timer()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def _host_port(address: object) -> tuple[str, int]:
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return "127.0.0.1", 0


@dataclass(frozen=True)
class ListenerSpec:
    """One listening socket: ``kind`` names the listener for the service's policy."""

    kind: str
    host: str
    port: int
    implicit_tls: bool


class Session(Protocol):
    async def run(self) -> None: ...


class Listeners:
    """A service's running listeners and the sessions they spawned."""

    name = "service"            # for messages ("smtp port 465: ...")

    def __init__(self, tls: ServerTls | None, handshake_timeout: float) -> None:
        self.tls = tls
        self.handshake_timeout = handshake_timeout
        self.servers: list[tuple[ListenerSpec, asyncio.Server]] = []
        self.sessions: dict[asyncio.Task[None], Any] = {}
        self.reuse_port = False      # several accept processes share the ports

    def session(self, conn: Connection, spec: ListenerSpec) -> Session:
        """The service's session for a new connection (subclasses)."""
        raise NotImplementedError

    async def start(self, specs: list[ListenerSpec]) -> None:
        loop = asyncio.get_running_loop()
        try:
            for spec in specs:
                options: dict[str, Any] = {}
                if spec.implicit_tls:
                    if self.tls is None:
                        raise RuntimeError(f"{self.name} port {spec.port}: implicit TLS "
                                           "needs a certificate in DIR/tls")
                    options = {"ssl": self.tls.context,
                               "ssl_handshake_timeout": self.handshake_timeout}
                server = await loop.create_server(
                    lambda spec=spec: Connection(lambda conn: self._spawn(conn, spec)),
                    host=spec.host, port=spec.port, backlog=1024, reuse_address=True,
                    reuse_port=self.reuse_port, **options)
                self.servers.append((spec, server))
        except BaseException:
            await self.stop()
            raise

    def bound(self) -> dict[str, int]:
        """Listener kind -> actual port (useful when a port was chosen by the system)."""
        return {spec.kind: server.sockets[0].getsockname()[1] for spec, server in self.servers
                if server.sockets}

    def _spawn(self, conn: Connection, spec: ListenerSpec) -> None:
        session = self.session(conn, spec)
        task = (conn.loop or asyncio.get_running_loop()).create_task(session.run())
        self.sessions[task] = session
        task.add_done_callback(lambda done: self.sessions.pop(done, None))

    async def stop(self, grace: float = 5.0) -> None:
        for _, server in self.servers:
            server.close()
        self.servers.clear()
        # Idle sessions go at once; a busy one (a message being committed, so its
        # client gets the reply it is owed) may finish within ``grace`` seconds.
        for task, session in list(self.sessions.items()):
            if not getattr(session, "busy", False):
                task.cancel()
        if self.sessions:
            _, pending = await asyncio.wait(list(self.sessions), timeout=grace)
            for task in pending:
                task.cancel()
        for task in list(self.sessions):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
