"""The IMAP listeners (manual 6.3.3.2): which sockets, and the sessions they spawn.

Listeners, from the settings (a restart applies changes): ``imap.port`` (143; STARTTLS
offered, or implicit TLS with ``imap.general.ssl_default_port``) and, when
``imap.general.alternate_port_enabled``, ``imap.imaps_port`` (993; implicit TLS with
``imap.general.ssl_alternate_port``, RFC 8314), each on every address of ``imap.bind``
(or all addresses with ``imap.general.bind_all_ips``). Port 0 disables a listener.

Transport: the shared :class:`~postroom.net.listeners.Connection`
(bounded buffers, flow control, a STARTTLS switch that drops buffered plaintext), one
asyncio task per connection and no thread per connection, so an idle connection costs
a task and its buffers.
"""

from __future__ import annotations

from typing import Any

from postroom.net.listeners import Connection, Listeners, ListenerSpec
from postroom.services.imap.session import HANDSHAKE_TIMEOUT, ImapContext, ImapSession

__all__ = ["ImapListeners", "ListenerSpec", "listener_specs"]


def listener_specs(settings: Any) -> list[ListenerSpec]:
    get = settings.get
    hosts = ["0.0.0.0", "::"] if get("imap.general.bind_all_ips") else list(get("imap.bind"))
    ports = [("imap", int(get("imap.port")), bool(get("imap.general.ssl_default_port")))]
    if get("imap.general.alternate_port_enabled"):
        ports.append(("imaps", int(get("imap.imaps_port")),
                      bool(get("imap.general.ssl_alternate_port"))))
    return [ListenerSpec(kind, host, port, tls) for kind, port, tls in ports if port
            for host in hosts]


class ImapListeners(Listeners):
    """The running IMAP listeners and their sessions."""

    name = "imap"

    def __init__(self, ctx: ImapContext) -> None:
        super().__init__(ctx.tls, HANDSHAKE_TIMEOUT)
        self.ctx = ctx

    def session(self, conn: Connection, spec: ListenerSpec) -> ImapSession:
        client_ip, _ = conn.peer
        server_ip, server_port = conn.local
        return ImapSession(self.ctx, conn, listener=spec.kind, client_ip=client_ip,
                      server_ip=server_ip, server_port=server_port,
                      tls=spec.implicit_tls, connections=len(self.sessions) + 1)
