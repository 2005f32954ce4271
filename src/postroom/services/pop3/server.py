"""The POP3 listeners (manual 6.3.4.2): which sockets, and the sessions they spawn.

Listeners, from the settings (a restart applies changes): ``pop3.port`` (110; STLS
offered, or implicit TLS with ``pop3.general.ssl_default_port``) and, when
``pop3.general.alternate_port_enabled``, ``pop3.pop3s_port`` (995; implicit TLS with
``pop3.general.ssl_alternate_port``, RFC 8314), each on every address of
``pop3.bind`` (or all addresses with ``pop3.general.bind_all_ips``). Port 0 disables a
listener.

Transport: the shared :class:`~postroom.net.listeners.Connection`
(an ``asyncio.Protocol`` with bounded buffers, flow control and a STARTTLS switch that
drops buffered plaintext) serves POP3 unchanged; one event loop serves every
connection, no thread per connection. A failed TLS handshake on an implicit-TLS port
drops that connection only.
"""

from __future__ import annotations

from typing import Any

from postroom.net.listeners import Connection, Listeners, ListenerSpec
from postroom.services.pop3.session import HANDSHAKE_TIMEOUT, Pop3Context, Pop3Session

__all__ = ["ListenerSpec", "Pop3Listeners", "listener_specs"]


def listener_specs(settings: Any) -> list[ListenerSpec]:
    get = settings.get
    hosts = ["0.0.0.0", "::"] if get("pop3.general.bind_all_ips") else list(get("pop3.bind"))
    ports = [("pop3", int(get("pop3.port")), bool(get("pop3.general.ssl_default_port")))]
    if get("pop3.general.alternate_port_enabled"):
        ports.append(("pop3s", int(get("pop3.pop3s_port")),
                      bool(get("pop3.general.ssl_alternate_port"))))
    return [ListenerSpec(kind, host, port, tls) for kind, port, tls in ports if port
            for host in hosts]


class Pop3Listeners(Listeners):
    """The running POP3 listeners and their sessions."""

    name = "pop3"

    def __init__(self, ctx: Pop3Context) -> None:
        super().__init__(ctx.tls, HANDSHAKE_TIMEOUT)
        self.ctx = ctx

    def session(self, conn: Connection, spec: ListenerSpec) -> Pop3Session:
        client_ip, _ = conn.peer
        server_ip, server_port = conn.local
        return Pop3Session(self.ctx, conn, listener=spec.kind, client_ip=client_ip,
                      server_ip=server_ip, server_port=server_port,
                      tls=spec.implicit_tls, connections=len(self.sessions) + 1)
