"""Connection stage and IP lists (manual 6.2.3.3, 6.2.3.12, 6.2.3.16, 2.4)."""

from __future__ import annotations

import pytest

from postroom.connectors.smtp.policy import Action, InboundPolicy
from postroom.connectors.smtp.policy.access import IpPatterns

from .conftest import Overlay, rcpt, session


@pytest.mark.parametrize(("pattern", "ip", "match"), [
    ("192.168.*.*", "192.168.0.1", True),
    ("192.168.*.*", "192.169.0.1", False),
    ("192.*.1.*", "192.5.1.200", True),
    ("192.*.1.*", "192.5.2.200", False),
    ("010.0.0.*", "10.0.0.3", True),
    ("10.0.0.0/8", "10.9.9.9", True),
    ("10.0.0.0/8", "::ffff:10.9.9.9", True),
    ("::ffff:10.0.0.0/104", "10.1.2.3", True),
    ("2001:db8::/32", "2001:db8::1", True),
    ("2001:db8::/32", "10.0.0.1", False),
    ("203.0.113.9", "203.0.113.9", True),
    ("not an ip", "203.0.113.9", False),
])
def test_ip_patterns(pattern: str, ip: str, match: bool) -> None:
    assert IpPatterns([pattern]).matches(ip) is match


def test_deny_list_at_connect(policy: InboundPolicy, settings: Overlay) -> None:
    assert policy.on_connect(session()).accepted
    settings.set("smtp.inbound.access_control_list", ["203.0.113.*"])
    verdict = policy.on_connect(session())
    assert verdict.action is Action.REPLY_AND_DROP and verdict.reason == "ip-denied"
    assert verdict.reply is not None and verdict.reply.to_bytes() == b"554 5.7.1 Access denied\r\n"
    assert policy.on_connect(session("198.51.100.1")).accepted


def test_each_change_of_a_list_applies_to_the_next_connection(
        policy: InboundPolicy, settings: Overlay) -> None:
    """The compiled lists are cached per settings load: every change counts at once."""
    for listed in (["203.0.113.9"], ["198.51.100.0/24"], ["203.0.113.*", "10.0.0.1"], []):
        settings.set("smtp.inbound.access_control_list", listed)
        for ip in ("203.0.113.9", "198.51.100.7"):
            expected = any(IpPatterns([pattern]).matches(ip) for pattern in listed)
            assert policy.on_connect(session(ip)).accepted is not expected, (listed, ip)


def test_allow_list_only(policy: InboundPolicy, settings: Overlay) -> None:
    settings.set("smtp.inbound.access_control_mode", "allow_listed_only")
    settings.set("smtp.inbound.access_control_list", ["198.51.100.0/24"])
    assert policy.on_connect(session("198.51.100.1")).accepted
    assert policy.on_connect(session()).reason == "ip-not-allowed"


def test_refused_connections_are_not_counted(policy: InboundPolicy, settings: Overlay) -> None:
    settings.set("smtp.inbound.access_control_list", ["203.0.113.9"])
    policy.on_connect(session())
    assert policy.connections.total == 0


def test_ipv6_and_country_blocking(policy: InboundPolicy, settings: Overlay) -> None:
    assert policy.on_connect(session("2001:db8::5")).accepted
    settings.set("smtp.inbound.allow_ipv6", False)
    assert policy.on_connect(session("2001:db8::5")).reason == "ipv6-disabled"
    assert policy.on_connect(session("::ffff:203.0.113.9")).accepted   # IPv4 really
    settings.set("smtp.country_blocking.country_codes", ["XX", "yy"])
    assert policy.on_connect(session(country="YY")).reason == "country-blocked"
    assert policy.on_connect(session(country="ZZ")).accepted
    assert policy.on_connect(session()).accepted          # no country known: no check


def test_reported_ips_refused_at_rcpt_unless_whitelisted(policy: InboundPolicy,
                                                         settings: Overlay) -> None:
    settings.set("smtp.ip_blocking.blocked_addresses", ["203.0.113.9"])
    local = rcpt("bob@example.com")
    assert policy.on_rcpt(session(), local).accepted           # refusing is off by default
    settings.set("smtp.ip_blocking.refuse_reported_ips", True)
    verdict = policy.on_rcpt(session(), local)
    assert verdict.reason == "reported-ip" and verdict.reply is not None
    assert verdict.reply.code == 550
    settings.set("smtp.outbound_whitelist.enabled", True)
    settings.set("smtp.outbound_whitelist.addresses", ["203.0.113.9"])
    assert policy.on_rcpt(session(), local).accepted
