"""The SMTP listeners and the per-connection transport glue (manual 6.2.3.3).

Listeners, from the settings (all need a restart to change): ``smtp.port`` (25, the
MX listener; implicit TLS if ``smtp.inbound.port_requires_ssl``),
``smtp.submission_port`` (587, RFC 6409, when ``smtp.inbound.submission_enabled``;
implicit TLS if ``smtp.inbound.submission_requires_ssl``) and ``smtp.smtps_port``
(465, implicit TLS, RFC 8314), each on every address of ``smtp.bind`` (or all
addresses with ``smtp.inbound.bind_all_ips``; IPv6 addresses are skipped when
``smtp.inbound.allow_ipv6`` is off). Port 0 disables a listener.

:class:`Connection` is a small ``asyncio.Protocol`` rather than streams, for two
reasons: STARTTLS must not let plaintext that arrived after the command reach the TLS
layer or the session (RFC 3207 §4, the CVE-2011-0411 family: reading is paused when
``220`` is written and anything already buffered is discarded), and reads return
whatever is buffered without a task switch when bytes are waiting (pipelined
commands). Reading pauses above :data:`HIGH_WATER` buffered bytes and writing
honours the transport's flow control, so a slow or flooding client costs bounded
memory.

A failed TLS handshake on the implicit-TLS port is the event loop's business: the
connection is dropped and the listener goes on serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from postroom.connectors.smtp.session import ServerContext, SmtpSession
from postroom.net.tls import describe

log = logging.getLogger("postroom.smtp")

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
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

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

    async def read(self, timeout: float) -> bytes:
        """Buffered bytes, waiting up to ``timeout`` seconds; ``b""`` at end of stream."""
        if not self._chunks and not self._eof:
            # A bare timer rather than ``asyncio.timeout``: this runs for every command.
            loop = self.loop or asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(timeout, _expire, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
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
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _host_port(address: object) -> tuple[str, int]:
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return "127.0.0.1", 0


@dataclass(frozen=True)
class ListenerSpec:
    """One listening socket: ``kind`` is the policy's listener name."""

    kind: str
    host: str
    port: int
    implicit_tls: bool


def listener_specs(settings: object) -> list[ListenerSpec]:
    """The sockets the settings ask for (see the module docstring)."""
    get = settings.get  # type: ignore[attr-defined]
    hosts = ["0.0.0.0", "::"] if get("smtp.inbound.bind_all_ips") else list(get("smtp.bind"))
    if not get("smtp.inbound.allow_ipv6"):
        hosts = [h for h in hosts if ipaddress.ip_address(h).version == 4]
    ports = [("mx", get("smtp.port"), bool(get("smtp.inbound.port_requires_ssl")))]
    if get("smtp.inbound.submission_enabled"):
        ports.append(("submission", get("smtp.submission_port"),
                      bool(get("smtp.inbound.submission_requires_ssl"))))
    ports.append(("smtps", get("smtp.smtps_port"), True))
    return [ListenerSpec(kind, host, int(port), tls)
            for kind, port, tls in ports if port for host in hosts]


class SmtpListeners:
    """The running listeners and the sessions they spawned."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.servers: list[tuple[ListenerSpec, asyncio.Server]] = []
        self.sessions: dict[asyncio.Task[None], SmtpSession] = {}
        self.reuse_port = False      # several accept processes share the ports

    async def start(self, specs: list[ListenerSpec]) -> None:
        loop = asyncio.get_running_loop()
        try:
            for spec in specs:
                context = None
                if spec.implicit_tls:
                    if self.ctx.tls is None:
                        raise RuntimeError(f"smtp port {spec.port}: implicit TLS needs a "
                                           "certificate in DIR/tls")
                    context = self.ctx.tls.context
                tls_options = {"ssl": context, "ssl_handshake_timeout":
                               self.ctx.handshake_timeout} if context is not None else {}
                server = await loop.create_server(
                    lambda spec=spec: Connection(lambda conn: self._spawn(conn, spec)),
                    host=spec.host, port=spec.port, backlog=1024, reuse_address=True,
                    reuse_port=self.reuse_port,
                    **tls_options)
                self.servers.append((spec, server))
        except BaseException:
            await self.stop()
            raise

    def bound(self) -> dict[str, int]:
        """Listener kind -> actual port (useful when a port was chosen by the system)."""
        return {spec.kind: server.sockets[0].getsockname()[1] for spec, server in self.servers
                if server.sockets}

    def _spawn(self, conn: Connection, spec: ListenerSpec) -> None:
        client_ip, _ = conn.peer
        server_ip, server_port = conn.local
        session = SmtpSession(self.ctx, conn, listener=spec.kind, client_ip=client_ip,
                              server_ip=server_ip, server_port=server_port,
                              tls=conn.tls_description() if spec.implicit_tls else None)
        task = (conn.loop or asyncio.get_running_loop()).create_task(session.run())
        self.sessions[task] = session
        task.add_done_callback(lambda done: self.sessions.pop(done, None))

    async def stop(self, grace: float = 5.0) -> None:
        for _, server in self.servers:
            server.close()
        self.servers.clear()
        # Idle sessions go at once; one whose message is being committed may finish
        # (so its client gets the 250 it is owed) within ``grace`` seconds.
        for task, session in list(self.sessions.items()):
            if not session.busy:
                task.cancel()
        if self.sessions:
            _, pending = await asyncio.wait(list(self.sessions), timeout=grace)
            for task in pending:
                task.cancel()
        for task in list(self.sessions):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
