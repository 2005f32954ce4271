"""Where a message for a destination domain goes: MX hosts or a smart host.

Manual 6.2.3.9 (smart host), 5.4.2 (a domain that "acts as smart host"), 2.4 (v9:
domains bound to an IP smart-host all their outbound mail), RFC 5321 §5.1 (MX
order, implicit MX), RFC 7505 (null MX).

The decision for one ``SMTP.outgoing`` entry (:func:`route_for`), first match wins:

1. The destination is a **hosted domain**: with ``smart_host.enabled`` (a backup MX
   or a domain whose mailboxes live elsewhere) its mail goes to that domain's
   ``smart_host.host``:``smart_host.port``; without it the entry should never have
   reached this queue (the MTA delivers local mail itself), so it is bounced with
   5.4.6 and logged as a routing error rather than sent out to loop back to us.
2. The **sender's domain** is hosted and sets ``smart_host.bound_ip_host`` (the v9
   "smarthost outbound mail for domains bound to an IP address"; Postroom has no
   per-domain source IP, so the option reads "mail from this domain goes through this
   host"): that host.
3. The server-wide smart host (``smtp.smart_host.enabled``, ``smtp.smart_host.host``
   as ``HOST`` or ``HOST:PORT``, AUTH with ``smtp.smart_host.username``/``password``).
   With ``smtp.smart_host.domain_smarthost_priority`` off it wins over 1. and 2.
4. Otherwise the MX hosts of the destination domain (looked up when a connection is
   opened, :func:`mx_hops`).

The result's :attr:`Route.key` says which entries may share a connection and count
against one per-destination connection limit: all mail for one domain over MX, all
mail through one smart host.

TLS: towards MX hosts STARTTLS is opportunistic (``smtp.outbound.tls``) and
certificates are not checked unless ``smtp.outbound.tls_verify`` is on; towards a
smart host ``smtp.smart_host.tls`` / ``smtp.smart_host.tls_verify`` apply (verified
by default: the smart host gets our password).

Untrusted input: the destination domain comes from a remote client's RCPT TO (it is
IDNA-encoded and checked by the resolver before any query); MX answers come from the
network and are only used as host names to resolve.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from postroom.net.dns import MxHosts, NxDomain, Resolver

MX_PORT = 25


class RouteFailure(Exception):
    """No route now (``permanent`` False: retry) or ever (True: NDR)."""

    def __init__(self, status: str, text: str, *, permanent: bool) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.permanent = permanent

    @property
    def reply(self) -> str:
        code = "550" if self.permanent else "451"
        return f"{code} {self.status} {self.text}"


@dataclass(frozen=True)
class Route:
    """How to reach the destination of one entry."""

    key: str                      # entries with the same key share connections
    domain: str                   # destination domain (lower case)
    smart_host: str | None        # host name or IP; None: deliver to the MX hosts
    port: int = MX_PORT
    tls: str = "opportunistic"    # opportunistic | starttls | implicit | none
    tls_verify: bool = False
    username: str = ""
    password: str = ""
    local_error: RouteFailure | None = None   # set: bounce at once, send nothing


@dataclass(frozen=True)
class Hop:
    """One server address to try, in order."""

    host: str                     # the name (for SNI, certificate checks and logs)
    address: str                  # the IP address to connect to
    port: int


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
        return host, int(port) if port.isdigit() else default_port
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        if port.isdigit():
            return host.strip(), int(port)
    return text, default_port


def route_for(settings: Any, directory: Any, domain: str, sender: str) -> Route:
    """The route for mail to ``domain`` from ``sender`` (see the module docstring)."""
    domain = domain.lower().rstrip(".")
    record = _domain(directory, domain)
    if record is not None and not (record.options.get("smart_host.enabled")
                                   and record.options.get("smart_host.host")):
        failure = RouteFailure("5.4.6", f"Routing loop: {domain} is a domain of this server "
                                        "and has no smart host", permanent=True)
        return Route(f"local:{domain}", domain, None, local_error=failure)
    server = _server_smart_host(settings)
    if server is not None and not settings.get("smtp.smart_host.domain_smarthost_priority"):
        return server
    if record is not None:
        host, port = split_host_port(str(record.options["smart_host.host"]),
                                     int(record.options.get("smart_host.port") or MX_PORT))
        return _smart(settings, f"domain:{host}:{port}", domain, host, port, auth=False)
    sender_domain = sender.rpartition("@")[2].lower() if "@" in sender else ""
    record = _domain(directory, sender_domain) if sender_domain else None
    if record is not None and record.options.get("smart_host.bound_ip_host"):
        host, port = split_host_port(str(record.options["smart_host.bound_ip_host"]), MX_PORT)
        return _smart(settings, f"bound:{host}:{port}", domain, host, port, auth=False)
    if server is not None:
        return server
    return Route(f"mx:{domain}", domain, None, tls="opportunistic" if settings.get(
        "smtp.outbound.tls") else "none", tls_verify=bool(settings.get("smtp.outbound.tls_verify")))


def _domain(directory: Any, name: str) -> Any:
    try:
        return directory.get_domain(name)
    except ValueError:          # DirectoryError: not a name we could hold
        return None


def _server_smart_host(settings: Any) -> Route | None:
    if not settings.get("smtp.smart_host.enabled"):
        return None
    text = str(settings.get("smtp.smart_host.host") or "").strip()
    if not text:
        return None
    host, port = split_host_port(text, MX_PORT)
    return _smart(settings, f"smart:{host}:{port}", "", host, port, auth=True)


def _smart(settings: Any, key: str, domain: str, host: str, port: int, *, auth: bool) -> Route:
    username = password = ""
    if auth and settings.get("smtp.smart_host.requires_auth"):
        username = str(settings.get("smtp.smart_host.username") or "")
        password = str(settings.get("smtp.smart_host.password") or "")
    return Route(key, domain, host, port, tls=str(settings.get("smtp.smart_host.tls")),
                 tls_verify=bool(settings.get("smtp.smart_host.tls_verify")),
                 username=username, password=password)


async def hops(resolver: Resolver, route: Route) -> list[Hop]:
    """The addresses to try for ``route``, best first; :class:`RouteFailure` if none."""
    if route.smart_host is not None:
        return await _host_hops(resolver, route.smart_host, route.port)
    return await mx_hops(resolver, route.domain)


async def mx_hops(resolver: Resolver, domain: str) -> list[Hop]:
    try:
        found: MxHosts = await resolver.mx_hosts(domain)
    except NxDomain:
        raise RouteFailure("5.1.2", f"Domain {domain} does not exist (NXDOMAIN)",
                           permanent=True) from None
    except ValueError as exc:          # DnsInputError: not a domain name
        raise RouteFailure("5.1.2", f"Bad destination domain {domain!r}: {exc}",
                           permanent=True) from None
    except Exception as exc:           # temporary DNS trouble
        raise RouteFailure("4.4.3", f"DNS lookup of {domain} failed: {exc}",
                           permanent=False) from None
    if found.null_mx:
        raise RouteFailure("5.1.10", f"Domain {domain} accepts no mail (null MX, RFC 7505)",
                           permanent=True)
    if not found.hosts:
        raise RouteFailure("5.4.4", f"Domain {domain} has no MX and no address record",
                           permanent=True)
    result: list[Hop] = []
    last_error: Exception | None = None
    for mx in found.hosts:
        try:
            result.extend(await _host_hops(resolver, mx.host, MX_PORT))
        except RouteFailure as exc:
            last_error = exc
    if not result:
        raise RouteFailure("4.4.3", f"No address for any MX host of {domain}"
                                    + (f" ({last_error})" if last_error else ""),
                           permanent=False)
    return result


async def _host_hops(resolver: Resolver, host: str, port: int) -> list[Hop]:
    try:
        return [Hop(host, str(ipaddress.ip_address(host)), port)]
    except ValueError:
        pass
    try:
        addresses = await resolver.addresses(host)
    except Exception as exc:
        raise RouteFailure("4.4.3", f"Cannot resolve {host}: {exc}", permanent=False) from None
    if not addresses:
        raise RouteFailure("4.4.3", f"{host} has no address", permanent=False)
    return [Hop(host, address, port) for address in addresses]
