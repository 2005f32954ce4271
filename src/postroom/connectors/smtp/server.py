"""The SMTP listeners (manual 6.2.3.3).

Listeners, from the settings (all need a restart to change): ``smtp.port`` (25, the
MX listener; implicit TLS if ``smtp.inbound.port_requires_ssl``),
``smtp.submission_port`` (587, RFC 6409, when ``smtp.inbound.submission_enabled``;
implicit TLS if ``smtp.inbound.submission_requires_ssl``) and ``smtp.smtps_port``
(465, implicit TLS, RFC 8314), each on every address of ``smtp.bind`` (or all
addresses with ``smtp.inbound.bind_all_ips``; IPv6 addresses are skipped when
``smtp.inbound.allow_ipv6`` is off). Port 0 disables a listener. The transport and
the listener mechanics are shared with POP3 and IMAP (:mod:`postroom.net.listeners`).
"""

from __future__ import annotations

import ipaddress

from postroom.connectors.smtp.session import ServerContext, SmtpSession
from postroom.net.listeners import Connection, Listeners, ListenerSpec

__all__ = ["Connection", "ListenerSpec", "SmtpListeners", "listener_specs"]


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


class SmtpListeners(Listeners):
    """The running SMTP listeners and the sessions they spawned."""

    name = "smtp"

    def __init__(self, ctx: ServerContext) -> None:
        super().__init__(ctx.tls, ctx.handshake_timeout)
        self.ctx = ctx

    def session(self, conn: Connection, spec: ListenerSpec) -> SmtpSession:
        client_ip, _ = conn.peer
        server_ip, server_port = conn.local
        return SmtpSession(self.ctx, conn, listener=spec.kind, client_ip=client_ip,
                           server_ip=server_ip, server_port=server_port,
                           tls=conn.tls_description() if spec.implicit_tls else None)
