"""Who may connect, and which client addresses are trusted: IP lists (manual 6.2.3.3,
6.2.3.5, 6.2.3.12, 6.2.3.16 and the v9 country blocking of 2.4).

IP patterns are administrator input, already checked by the settings model: a single
address, a CIDR range (``10.0.0.0/8``, ``2001:db8::/32``) or a dotted IPv4 wildcard
(``192.168.*.*``, each ``*`` standing for one whole octet). The client IP comes from
the socket; IPv4-mapped IPv6 is compared as IPv4 (see :mod:`.session`).

Stages:

* connect: the access control list (deny-listed, or allow-listed only), IPv6 off,
  country codes (needs ``SessionFacts.country`` from an administrator-supplied
  database; without it the check does nothing). Refusals answer 554 5.7.1 and drop,
  as RFC 5321 §3.1 allows instead of the 220 greeting.
* rcpt: IPs reported as spam sources by webmail users (6.2.3.16) get 550 5.7.1 at
  RCPT TO, as the manual says; white-listed IPs skip it (the chain sees to that).

Settings read: ``smtp.inbound.access_control_mode``, ``smtp.inbound.access_control_list``,
``smtp.inbound.allow_ipv6``, ``smtp.country_blocking.country_codes``,
``smtp.relay.allow_privileged_ips``, ``smtp.relay.privileged_ip_ranges``,
``smtp.whitelist.*``, ``smtp.outbound_whitelist.*``, ``smtp.ip_blocking.*``.

Known limits: an invalid pattern that reached the store from an older version is
skipped (it matches nothing) rather than stopping the server.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from postroom.connectors.smtp.policy import verdict as v
from postroom.connectors.smtp.policy.options import SettingsReader, read
from postroom.connectors.smtp.policy.session import IPAddress, SessionFacts, client_address
from postroom.connectors.smtp.policy.verdict import Verdict

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ANSWERS = 4096          # remembered answers per compiled list


class IpPatterns:
    """A compiled list of IP patterns: addresses, CIDR ranges and ``a.b.*.*`` wildcards."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.networks: list[Network] = []
        self.hosts: set[IPAddress] = set()  # single addresses: a set lookup, for long lists
        self.wildcards: list[tuple[str, ...]] = []
        # Answers by client address: the same few clients are checked several times per
        # message (privileged, white list, deny list ...), and a range test costs
        # microseconds each. Bounded, since addresses come from the network.
        self._answers: dict[IPAddress, bool] = {}
        for raw in patterns:
            pattern = raw.strip()
            if "*" in pattern:
                parts = tuple(pattern.split("."))
                if len(parts) == 4 and all(p == "*" or (p.isdigit() and int(p) < 256)
                                           for p in parts):
                    self.wildcards.append(tuple(p if p == "*" else str(int(p)) for p in parts))
                continue
            try:
                network = ipaddress.ip_network(pattern, strict=False)
            except ValueError:
                continue
            if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
                mapped = network.network_address.ipv4_mapped
                if mapped is not None:  # ::ffff:a.b.c.d written by the administrator
                    network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
            if network.num_addresses == 1:
                self.hosts.add(network.network_address)
                continue
            self.networks.append(network)

    def matches(self, ip: str | IPAddress) -> bool:
        address = client_address(ip)
        found = self._answers.get(address)
        if found is None:
            if len(self._answers) >= ANSWERS:
                self._answers.clear()
            found = self._answers[address] = self._match(address)
        return found

    def _match(self, address: IPAddress) -> bool:
        if address in self.hosts:
            return True
        if any(address in network for network in self.networks
               if network.version == address.version):
            return True
        if address.version == 4 and self.wildcards:
            octets = str(address).split(".")
            return any(all(p == "*" or p == o for p, o in zip(w, octets, strict=True))
                       for w in self.wildcards)
        return False


@lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> IpPatterns:
    return IpPatterns(patterns)


def ip_in(patterns: Iterable[str], ip: str | IPAddress) -> bool:
    """Whether ``ip`` matches any of ``patterns`` (compiled lists are cached)."""
    return _compiled(tuple(patterns)).matches(ip)


_BY_SETTING: dict[int, tuple[object, IpPatterns]] = {}


def ip_in_setting(settings: SettingsReader, key: str, ip: str | IPAddress) -> bool:
    """``ip_in`` for the list setting ``key``, compiled once per settings load.

    Why: the checks run several times per message, and a list such as the automatic
    outbound white list can hold thousands of addresses; copying and hashing it on
    every call cost more than the match. The cache is keyed on the settings' own list
    object (:meth:`~postroom.settings.server.Settings.get_shared`), which a reload
    replaces, so a change applies at the next call."""
    shared = getattr(settings, "get_shared", None)
    if shared is None:
        return ip_in(read(settings, key), ip)
    value = shared(key)
    hit = _BY_SETTING.get(id(value))
    if hit is None or hit[0] is not value:
        if len(_BY_SETTING) >= 256:
            _BY_SETTING.clear()
        hit = _BY_SETTING[id(value)] = (value, IpPatterns(value))
    return hit[1].matches(ip)


def is_privileged(settings: SettingsReader, ip: IPAddress) -> bool:
    """The client may relay without authenticating (6.2.3.5 privileged IP ranges)."""
    return bool(read(settings, "smtp.relay.allow_privileged_ips")) and ip_in_setting(
        settings, "smtp.relay.privileged_ip_ranges", ip)


def is_whitelisted(settings: SettingsReader, ip: IPAddress) -> bool:
    """On the SMTP white list or the automatic outbound white list (6.2.3.12).

    A white-listed IP is not checked against DNS blacklists or SPF, is not
    automatically added to the deny list, and is not refused as spam-reported.
    """
    if read(settings, "smtp.whitelist.enabled") and ip_in_setting(
            settings, "smtp.whitelist.addresses", ip):
        return True
    return bool(read(settings, "smtp.outbound_whitelist.enabled")) and ip_in_setting(
        settings, "smtp.outbound_whitelist.addresses", ip)


LOCAL_NETWORKS = IpPatterns([
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
    "169.254.0.0/16", "::1/128", "fc00::/7", "fe80::/10",
])
"""RFC 1918, RFC 6598 shared, link-local and unique-local ranges. Not ``is_private``:
Python counts the documentation ranges (RFC 5737) as private too."""


@lru_cache(maxsize=4096)
def is_local_network(ip: IPAddress) -> bool:
    """Loopback, private and link-local addresses: "local IPs" of the PTR check (6.2.3.6).

    Cached per address (the ranges never change): asked twice per message, and
    ``ipaddress`` takes about a microsecond per range."""
    return LOCAL_NETWORKS.matches(ip)


def check_connect(settings: SettingsReader, session: SessionFacts) -> Verdict | None:
    """Access control list, IPv6 switch and country blocking, before the greeting."""
    ip = session.client_ip
    listed = ip_in_setting(settings, "smtp.inbound.access_control_list", ip)
    mode = read(settings, "smtp.inbound.access_control_mode")
    if mode == "allow_listed_only" and not listed:
        return Verdict.refuse(v.IP_DENIED, "ip-not-allowed", detail=str(ip), drop=True)
    if mode != "allow_listed_only" and listed:
        return Verdict.refuse(v.IP_DENIED, "ip-denied", detail=str(ip), drop=True)
    if ip.version == 6 and not read(settings, "smtp.inbound.allow_ipv6"):
        return Verdict.refuse(v.IP_DENIED, "ipv6-disabled", detail=str(ip), drop=True)
    if session.country:
        blocked = {c.strip().upper() for c in read(settings, "smtp.country_blocking.country_codes")}
        if session.country.strip().upper() in blocked:
            return Verdict.refuse(v.IP_DENIED, "country-blocked",
                                  detail=session.country.upper(), drop=True)
    return None


def check_reported_ip(settings: SettingsReader, session: SessionFacts) -> Verdict | None:
    """RCPT stage: refuse IPs that webmail users reported as spam sources (6.2.3.16)."""
    if not read(settings, "smtp.ip_blocking.refuse_reported_ips"):
        return None
    if ip_in_setting(settings, "smtp.ip_blocking.blocked_addresses", session.client_ip):
        return Verdict.refuse(v.REPORTED_IP, "reported-ip", detail=str(session.client_ip))
    return None
