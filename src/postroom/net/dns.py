"""Asynchronous DNS lookups for mail: MX, addresses, PTR, TXT and DNSBL, with hard deadlines.

Who asks: outbound SMTP (which hosts receive mail for a domain, RFC 5321 §5.1),
inbound policy (does the sender's domain resolve, reverse DNS of the client,
DNS blocklists, manual 6.2.3 "SMTP Security" and "Reverse DNS blacklisting"),
SPF and DKIM (TXT records).  Each answer is a small typed value, and every
failure is one of three kinds a policy must tell apart, because the reply code
depends on it (RFC 5321 §4.2.5, RFC 7208 §2.6.6): the name does not exist
(:class:`NxDomain`, permanent), the name exists but has no such record
(:class:`NoData`, permanent), or the question could not be answered now
(:class:`DnsTemporaryError` and its :class:`DnsTimeout`: SERVFAIL, REFUSED,
silence, unreachable network) which must become a 4xx, never a 5xx.

Deadlines: dnspython's ``lifetime`` is only checked between attempts, so each
query is also wrapped in ``asyncio.timeout()``: a lookup never takes longer
than the resolver's ``timeout`` whatever the network does.

Settings: ``dns.nameservers`` — a list of ``IP``, ``IP:PORT`` or
``[IPv6]:PORT``; empty means the system's resolver (``/etc/resolv.conf``).
Answers are kept in a bounded LRU cache for their TTL, negative answers too
(for the SOA minimum, RFC 2308).

Untrusted input: domain names come from HELO, MAIL FROM, RCPT TO and message
headers; IP addresses from the peer.  Names are checked and IDNA-encoded
(UTS #46) before any query, and a bad one raises :class:`DnsInputError`
naming the field; answers from the network are only read through dnspython's
parsed records.

Known limits: no DNSSEC validation (the AD bit is not trusted); equal-preference
MX hosts are shuffled on each call (RFC 5321 §5.1); ``domain_exists`` answers
False for a domain that publishes a null MX (RFC 7505 §4.2 lets a server refuse
such senders).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import random
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, Protocol

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import idna

__all__ = [
    "DnsError",
    "DnsInputError",
    "DnsTemporaryError",
    "DnsTimeout",
    "DnsblResult",
    "MxHost",
    "MxHosts",
    "NoData",
    "NxDomain",
    "Resolver",
    "parse_nameserver",
]

DEFAULT_TIMEOUT = 5.0
DEFAULT_CACHE_SIZE = 10_000
EDNS_PAYLOAD = 1232  # DNS flag day 2020: avoids IP fragmentation; larger answers go over TCP


class _SettingsReader(Protocol):
    def get(self, key: str) -> Any: ...


class DnsError(Exception):
    """A lookup that gave no usable answer.  ``temporary`` says whether to try later."""

    temporary = False

    def __init__(self, name: str, rdtype: str, message: str) -> None:
        super().__init__(f"{name} {rdtype}: {message}")
        self.name = name
        self.rdtype = rdtype


class NxDomain(DnsError):
    """The name does not exist (NXDOMAIN): permanent."""


class NoData(DnsError):
    """The name exists but has no record of the type asked (NOERROR, empty): permanent."""


class DnsTemporaryError(DnsError):
    """SERVFAIL, REFUSED, unreachable servers: the answer may come later (reply 4xx)."""

    temporary = True


class DnsTimeout(DnsTemporaryError):
    """No answer within the deadline."""


class DnsInputError(ValueError):
    """A name, address or setting that cannot be looked up; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class MxHost(NamedTuple):
    preference: int
    host: str


@dataclasses.dataclass(frozen=True, slots=True)
class MxHosts:
    """Hosts to deliver to, best first; iterate it like a list of :class:`MxHost`.

    ``implicit``: the domain has no MX records and its own address stands in
    (RFC 5321 §5.1).  ``null_mx``: the domain says it accepts no mail
    (RFC 7505, ``MX 0 .``); ``hosts`` is then empty.
    """

    hosts: tuple[MxHost, ...]
    implicit: bool = False
    null_mx: bool = False

    def __iter__(self) -> Iterator[MxHost]:
        return iter(self.hosts)

    def __len__(self) -> int:
        return len(self.hosts)

    def __getitem__(self, index: int) -> MxHost:
        return self.hosts[index]


@dataclasses.dataclass(frozen=True, slots=True)
class DnsblResult:
    """A DNS blocklist's answer for one IP (RFC 5782).

    ``codes`` are the A records returned (``127.0.0.2`` ...); ``reason`` the
    list's TXT text if it publishes one.
    """

    zone: str
    listed: bool
    codes: tuple[str, ...] = ()
    reason: str | None = None


def parse_nameserver(text: str) -> tuple[str, int]:
    """``"192.0.2.1"``, ``"192.0.2.1:5353"``, ``"[2001:db8::1]:53"``, ``"::1"`` -> (ip, port)."""
    value = text.strip()
    port = 53
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise DnsInputError("dns.nameservers", f"{text!r}: write [IPv6]:PORT")
        port_text = rest[1:] if rest else ""
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    else:
        host, port_text = value, ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise DnsInputError("dns.nameservers", f"{text!r} is not an IP address") from None
    if value.startswith("[") and address.version != 6:
        raise DnsInputError("dns.nameservers", f"{text!r}: brackets are for IPv6 addresses only")
    has_port = (value.startswith("[") and "]:" in value) or value.count(":") == 1
    if has_port:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise DnsInputError("dns.nameservers", f"{text!r}: port must be 1-65535")
        port = int(port_text)
    return str(address), port


def _ascii_domain(domain: str, field: str) -> str:
    """IDNA-encode and check a domain name given by a client or an administrator."""
    name = domain.strip().rstrip(".")
    if not name:
        raise DnsInputError(field, "empty domain name")
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as error:
            raise DnsInputError(field, f"{domain!r} is not a valid domain: {error}") from None
    try:
        dns.name.from_text(name)
    except dns.exception.DNSException as error:
        raise DnsInputError(field, f"{domain!r} is not a valid domain: {error}") from None
    if any(c.isspace() or c in '\\"()<>@,;' for c in name):
        raise DnsInputError(field, f"{domain!r} is not a valid domain")
    return name.lower()


def _ip(text: str, field: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        raise DnsInputError(field, f"{text!r} is not an IP address") from None


def _host(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def _reverse_labels(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """``192.0.2.1`` -> ``1.2.0.192``; IPv6 -> 32 nibbles (RFC 5782 §2.1, §2.4)."""
    pointer = address.reverse_pointer
    return pointer.removesuffix(".in-addr.arpa").removesuffix(".ip6.arpa")


class Resolver:
    """The server's resolver: one per process, shared by every service.

    ``nameservers`` comes from the ``dns.nameservers`` setting (a list, or text
    separated by commas or spaces); empty = the system resolver.  ``timeout`` is
    the hard deadline of one query; ``attempt_timeout`` how long to wait for one
    server before trying the next (or the same one again).
    """

    def __init__(
        self,
        nameservers: Sequence[str] | str = (),
        *,
        timeout: float = DEFAULT_TIMEOUT,
        attempt_timeout: float | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if isinstance(nameservers, str):
            nameservers = nameservers.replace(",", " ").split()
        if timeout <= 0:
            raise DnsInputError("dns.timeout", "must be more than 0 seconds")
        servers = [parse_nameserver(text) for text in nameservers]
        if servers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(address, port) for address, port in servers
            ]
        else:
            try:
                resolver = dns.asyncresolver.Resolver(configure=True)
            except dns.resolver.NoResolverConfiguration:
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = ["127.0.0.1"]
        resolver.lifetime = timeout
        resolver.timeout = min(attempt_timeout or max(timeout / 2, 0.5), timeout)
        resolver.use_edns(0, 0, EDNS_PAYLOAD)
        resolver.cache = dns.resolver.LRUCache(cache_size) if cache_size > 0 else None
        resolver.search = []
        self.timeout = timeout
        self.nameservers = tuple(f"{address}:{port}" for address, port in servers)
        self._resolver = resolver

    @classmethod
    def from_settings(cls, settings: _SettingsReader, **options: Any) -> Resolver:
        """The resolver the ``dns.nameservers`` setting describes."""
        return cls(settings.get("dns.nameservers") or (), **options)

    @property
    def cache(self) -> dns.resolver.LRUCache | None:
        return self._resolver.cache  # type: ignore[return-value]

    async def resolve(self, name: str, rdtype: str) -> dns.resolver.Answer:
        """Ask for ``rdtype`` records of ``name``; raise a typed :class:`DnsError` if none."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._resolver.resolve(
                    dns.name.from_text(name), rdtype, search=False, lifetime=self.timeout
                )
        except TimeoutError:
            raise DnsTimeout(name, rdtype, f"no answer within {self.timeout:g} s") from None
        except dns.resolver.NXDOMAIN:
            raise NxDomain(name, rdtype, "no such domain (NXDOMAIN)") from None
        except dns.resolver.NoAnswer:
            raise NoData(name, rdtype, "no records of this type") from None
        except dns.resolver.NoNameservers as error:
            raise DnsTemporaryError(name, rdtype, f"no server answered: {error}") from None
        except dns.exception.Timeout:
            raise DnsTimeout(name, rdtype, f"no answer within {self.timeout:g} s") from None
        except dns.resolver.YXDOMAIN:
            raise DnsError(name, rdtype, "name too long after DNAME substitution") from None
        except (dns.exception.DNSException, OSError) as error:
            raise DnsTemporaryError(name, rdtype, f"lookup failed: {error}") from None

    async def mx_hosts(self, domain: str) -> MxHosts:
        """Where mail for ``domain`` goes: MX hosts by preference, else the implicit MX.

        Raises :class:`NxDomain` if the domain does not exist.  With neither MX
        nor address records the result is empty and ``implicit``.
        """
        name = _ascii_domain(domain, "domain")
        try:
            answer = await self.resolve(name, "MX")
        except NoData:
            if await self._has_address(name):
                return MxHosts((MxHost(0, name),), implicit=True)
            return MxHosts((), implicit=True)
        records = [(int(rr.preference), rr.exchange) for rr in answer]
        real = [(pref, exchange) for pref, exchange in records if exchange != dns.name.root]
        if not real:  # RFC 7505: "MX 0 ." and nothing else
            return MxHosts((), null_mx=True)
        # RFC 5321 §5.1: lowest preference first, equal preferences in random order
        real.sort(key=lambda item: (item[0], random.random()))
        return MxHosts(tuple(MxHost(pref, _host(exchange)) for pref, exchange in real))

    async def addresses(self, host: str) -> list[str]:
        """IPv4 then IPv6 addresses of ``host`` (A and AAAA asked together).

        Empty when the name exists without addresses; :class:`NxDomain` when it
        does not exist; a temporary error only if neither family gave an answer.
        """
        name = _ascii_domain(host, "host")
        results = await asyncio.gather(
            self.resolve(name, "A"), self.resolve(name, "AAAA"), return_exceptions=True
        )
        found: list[str] = []
        errors: list[DnsError] = []
        for result in results:
            if isinstance(result, DnsError):
                errors.append(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                found.extend(rr.address for rr in result)
        if found:
            return found
        for error in errors:
            if error.temporary:
                raise error
        for error in errors:
            if isinstance(error, NxDomain):
                raise error
        return []

    async def _has_address(self, name: str) -> bool:
        try:
            return bool(await self.addresses(name))
        except NxDomain:
            return False

    async def ptr(self, ip: str) -> list[str]:
        """Reverse DNS names of ``ip`` (IPv4 ``in-addr.arpa``, IPv6 ``ip6.arpa`` nibbles)."""
        address = _ip(ip, "ip")
        try:
            answer = await self.resolve(address.reverse_pointer, "PTR")
        except NoData:
            return []
        return [_host(rr.target) for rr in answer]

    async def txt(self, name: str) -> list[str]:
        """TXT records of ``name``, each one's strings joined without spaces (RFC 7208 §3.3)."""
        query = _ascii_domain(name, "name")
        try:
            answer = await self.resolve(query, "TXT")
        except NoData:
            return []
        return [b"".join(rr.strings).decode("utf-8", "replace") for rr in answer]

    async def domain_exists(self, domain: str) -> bool:
        """Can ``domain`` receive mail (MX, or A/AAAA)?  Temporary failures raise.

        Used for "sender domain must resolve" (manual 6.2.3 SMTP Security).
        """
        try:
            return bool(await self.mx_hosts(domain))
        except NxDomain:
            return False

    async def dnsbl_listed(self, ip: str, zone: str) -> DnsblResult:
        """Is ``ip`` listed in the DNS blocklist ``zone`` (RFC 5782)?

        Listed when the list answers an address in 127.0.0.0/8, except
        127.255.255.0/24, which large lists use to say "query refused" rather
        than "listed".  Temporary failures raise: the caller decides whether an
        unanswered list blocks (4xx) or is skipped.
        """
        address = _ip(ip, "ip")
        zone_name = _ascii_domain(zone, "zone")
        query = f"{_reverse_labels(address)}.{zone_name}"
        try:
            answer = await self.resolve(query, "A")
        except (NxDomain, NoData):
            return DnsblResult(zone_name, listed=False)
        codes = tuple(rr.address for rr in answer)
        listed = any(
            ipaddress.ip_address(code) in _LOOPBACK_NET
            and ipaddress.ip_address(code) not in _DNSBL_ERROR_NET
            for code in codes
        )
        reason = None
        if listed:
            try:
                reason = "; ".join(await self.txt(query)) or None
            except DnsError:
                reason = None
        return DnsblResult(zone_name, listed=listed, codes=codes, reason=reason)


_LOOPBACK_NET = ipaddress.ip_network("127.0.0.0/8")
_DNSBL_ERROR_NET = ipaddress.ip_network("127.255.255.0/24")
