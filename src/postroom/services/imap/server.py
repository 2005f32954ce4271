"""The IMAP listeners (manual 6.3.3.2): which sockets, and the sessions they spawn.

Listeners, from the settings (a restart applies changes): ``imap.port`` (143; STARTTLS
offered, or implicit TLS with ``imap.general.ssl_default_port``) and, when
``imap.general.alternate_port_enabled``, ``imap.imaps_port`` (993; implicit TLS with
``imap.general.ssl_alternate_port``, RFC 8314), each on every address of ``imap.bind``
(or all addresses with ``imap.general.bind_all_ips``). Port 0 disables a listener.

Transport: the SMTP service's :class:`~postroom.connectors.smtp.server.Connection`
(bounded buffers, flow control, a STARTTLS switch that drops buffered plaintext), one
asyncio task per connection and no thread per connection, so an idle connection costs
a task and its buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from postroom.connectors.smtp.server import Connection
from postroom.services.imap.session import HANDSHAKE_TIMEOUT, ImapContext, ImapSession


@dataclass(frozen=True)
class ListenerSpec:
    kind: str            # "imap" or "imaps"
    host: str
    port: int
    implicit_tls: bool


def listener_specs(settings: Any) -> list[ListenerSpec]:
    get = settings.get
    hosts = ["0.0.0.0", "::"] if get("imap.general.bind_all_ips") else list(get("imap.bind"))
    ports = [("imap", int(get("imap.port")), bool(get("imap.general.ssl_default_port")))]
    if get("imap.general.alternate_port_enabled"):
        ports.append(("imaps", int(get("imap.imaps_port")),
                      bool(get("imap.general.ssl_alternate_port"))))
    return [ListenerSpec(kind, host, port, tls) for kind, port, tls in ports if port
            for host in hosts]


class ImapListeners:
    """The running listeners and their sessions."""

    def __init__(self, ctx: ImapContext) -> None:
        self.ctx = ctx
        self.servers: list[tuple[ListenerSpec, asyncio.Server]] = []
        self.sessions: dict[asyncio.Task[None], ImapSession] = {}
        self.reuse_port = False      # several accept processes share the ports

    async def start(self, specs: list[ListenerSpec]) -> None:
        loop = asyncio.get_running_loop()
        try:
            for spec in specs:
                options: dict[str, Any] = {}
                if spec.implicit_tls:
                    if self.ctx.tls is None:
                        raise RuntimeError(f"imap port {spec.port}: implicit TLS needs a "
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
        session = ImapSession(self.ctx, conn, listener=spec.kind, client_ip=client_ip,
                              server_ip=server_ip, server_port=server_port,
                              tls=spec.implicit_tls, connections=len(self.sessions) + 1)
        task = (conn.loop or asyncio.get_running_loop()).create_task(session.run())
        self.sessions[task] = session
        task.add_done_callback(lambda done: self.sessions.pop(done, None))

    async def stop(self, grace: float = 5.0) -> None:
        for _, server in self.servers:
            server.close()
        self.servers.clear()
        for task in list(self.sessions):
            task.cancel()
        for task in list(self.sessions):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, grace)
