"""The POP3 listeners (manual 6.3.4.2): which sockets, and the sessions they spawn.

Listeners, from the settings (a restart applies changes): ``pop3.port`` (110; STLS
offered, or implicit TLS with ``pop3.general.ssl_default_port``) and, when
``pop3.general.alternate_port_enabled``, ``pop3.pop3s_port`` (995; implicit TLS with
``pop3.general.ssl_alternate_port``, RFC 8314), each on every address of
``pop3.bind`` (or all addresses with ``pop3.general.bind_all_ips``). Port 0 disables a
listener.

Transport: the SMTP service's :class:`~postroom.connectors.smtp.server.Connection`
(an ``asyncio.Protocol`` with bounded buffers, flow control and a STARTTLS switch that
drops buffered plaintext) serves POP3 unchanged; one event loop serves every
connection, no thread per connection. A failed TLS handshake on an implicit-TLS port
drops that connection only.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from postroom.connectors.smtp.server import Connection
from postroom.services.pop3.session import HANDSHAKE_TIMEOUT, Pop3Context, Pop3Session


@dataclass(frozen=True)
class ListenerSpec:
    kind: str            # "pop3" or "pop3s"
    host: str
    port: int
    implicit_tls: bool


def listener_specs(settings: Any) -> list[ListenerSpec]:
    get = settings.get
    hosts = ["0.0.0.0", "::"] if get("pop3.general.bind_all_ips") else list(get("pop3.bind"))
    ports = [("pop3", int(get("pop3.port")), bool(get("pop3.general.ssl_default_port")))]
    if get("pop3.general.alternate_port_enabled"):
        ports.append(("pop3s", int(get("pop3.pop3s_port")),
                      bool(get("pop3.general.ssl_alternate_port"))))
    return [ListenerSpec(kind, host, port, tls) for kind, port, tls in ports if port
            for host in hosts]


class Pop3Listeners:
    """The running listeners and their sessions."""

    def __init__(self, ctx: Pop3Context) -> None:
        self.ctx = ctx
        self.servers: list[tuple[ListenerSpec, asyncio.Server]] = []
        self.sessions: dict[asyncio.Task[None], Pop3Session] = {}
        self.reuse_port = False      # several accept processes share the ports

    async def start(self, specs: list[ListenerSpec]) -> None:
        loop = asyncio.get_running_loop()
        try:
            for spec in specs:
                options: dict[str, Any] = {}
                if spec.implicit_tls:
                    if self.ctx.tls is None:
                        raise RuntimeError(f"pop3 port {spec.port}: implicit TLS needs a "
                                           "certificate in DIR/tls")
                    options = {"ssl": self.ctx.tls.context,
                               "ssl_handshake_timeout": HANDSHAKE_TIMEOUT}
                server = await loop.create_server(
                    lambda spec=spec: Connection(lambda conn: self._spawn(conn, spec)),
                    host=spec.host, port=spec.port, backlog=1024, reuse_address=True,
                    reuse_port=self.reuse_port, **options)
                self.servers.append((spec, server))
        except BaseException:
            await self.stop()
            raise

    def bound(self) -> dict[str, int]:
        return {spec.kind: server.sockets[0].getsockname()[1] for spec, server in self.servers
                if server.sockets}

    def _spawn(self, conn: Connection, spec: ListenerSpec) -> None:
        client_ip, _ = conn.peer
        server_ip, server_port = conn.local
        session = Pop3Session(self.ctx, conn, listener=spec.kind, client_ip=client_ip,
                              server_ip=server_ip, server_port=server_port,
                              tls=spec.implicit_tls, connections=len(self.sessions) + 1)
        task = (conn.loop or asyncio.get_running_loop()).create_task(session.run())
        self.sessions[task] = session
        task.add_done_callback(lambda done: self.sessions.pop(done, None))

    async def stop(self, grace: float = 5.0) -> None:
        for _, server in self.servers:
            server.close()
        self.servers.clear()
        # Sessions go at once (nothing is deleted without QUIT); one in UPDATE finishes.
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
