"""Relay rules (manual 6.2.3.5) and hosted-recipient rules at RCPT TO."""

from __future__ import annotations

import pytest

from postroom.connectors.smtp.policy import Facts, InboundPolicy, PopLogins, pop_before_smtp_allowed
from postroom.connectors.smtp.policy.session import client_address

from .conftest import FakeClock, Overlay, authed, rcpt, sender, session

REMOTE = rcpt("friend@remote.example")


def test_loopback_is_privileged_by_default(policy: InboundPolicy) -> None:
    for ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        verdict = policy.on_rcpt(session(ip), REMOTE)
        assert verdict.accepted and "relay-rule:privileged-ip" in verdict.flags, ip


@pytest.mark.parametrize(("ranges", "ip", "relays"), [
    (["192.168.*.*"], "192.168.4.20", True),
    (["192.168.*.*"], "192.169.4.20", False),
    (["10.0.0.0/8"], "10.200.1.1", True),
    (["10.0.0.0/8"], "::ffff:10.200.1.1", True),
    (["10.0.0.0/8"], "11.0.0.1", False),
    (["2001:db8::/32"], "2001:db8:1::5", True),
    (["2001:db8::/32"], "2001:db9::5", False),
    (["203.0.113.9"], "203.0.113.9", True),
    (["203.0.113.9"], "203.0.113.10", False),
])
def test_privileged_ranges(policy: InboundPolicy, settings: Overlay, ranges: list[str],
                           ip: str, relays: bool) -> None:
    settings.set("smtp.relay.privileged_ip_ranges", ranges)
    assert policy.on_rcpt(session(ip), REMOTE).accepted is relays


def test_privileged_switch_off(policy: InboundPolicy, settings: Overlay) -> None:
    settings.set("smtp.relay.allow_privileged_ips", False)
    assert policy.on_rcpt(session("127.0.0.1"), REMOTE).reason == "relay-denied"


def test_authenticated_relay_follows_settings(policy: InboundPolicy, settings: Overlay) -> None:
    assert policy.on_rcpt(authed(), REMOTE).accepted
    settings.set("smtp.relay.allow_authenticated", False)
    assert policy.on_rcpt(authed(), REMOTE).reason == "relay-denied"
    settings.set("smtp.relay.allow_authenticated", True)
    settings.set("smtp.relay.enabled", False)   # nobody relays, local mail still flows
    assert policy.on_rcpt(authed(), REMOTE).reason == "relay-denied"
    assert policy.on_rcpt(session("127.0.0.1"), REMOTE).reason == "relay-denied"
    assert policy.on_rcpt(session(), rcpt("bob@example.com")).accepted


def test_live_settings_change_flips_the_decision(hosted, policy: InboundPolicy) -> None:
    client = session("192.0.2.50")
    assert not policy.on_rcpt(client, REMOTE).accepted
    # an administrator changes the setting through the store (as the CLI does)
    hosted.settings.set("smtp.relay.privileged_ip_ranges", ["192.0.2.0/24"])
    assert policy.on_rcpt(client, REMOTE).accepted
    hosted.settings.reset("smtp.relay.privileged_ip_ranges")
    assert not policy.on_rcpt(client, REMOTE).accepted


def test_local_sender_relay_is_off_by_default(policy: InboundPolicy, settings: Overlay) -> None:
    client = session(mail_from=sender("bob@example.com"))
    assert policy.on_rcpt(client, REMOTE).reason == "relay-denied"
    settings.set("smtp.relay.allow_local_sender", True)
    verdict = policy.on_rcpt(client, REMOTE)
    assert verdict.accepted and "relay-rule:local-sender" in verdict.flags
    # a remote sender still may not relay
    assert not policy.on_rcpt(session(mail_from=sender("x@remote.example")), REMOTE).accepted


@pytest.mark.parametrize(("age", "allowed"), [
    (0, True), (60, True), (15 * 60, True), (15 * 60 + 1, False), (-30, True), (-3600, False),
])
def test_pop_before_smtp_window(age: float, allowed: bool) -> None:
    now = 1_000_000.0
    assert pop_before_smtp_allowed(now - age, now, 15 * 60) is allowed
    assert pop_before_smtp_allowed(None, now, 15 * 60) is False


def test_pop_before_smtp_in_the_chain(policy: InboundPolicy, settings: Overlay,
                                      clock: FakeClock) -> None:
    logins = PopLogins()
    ip = client_address("203.0.113.9")
    logins.record(ip, clock())
    facts = Facts(last_pop_login_at=logins.last_login(ip))
    assert not policy.on_rcpt(session(), REMOTE, facts).accepted   # off by default
    settings.set("smtp.relay.pop_before_smtp_enabled", True)
    settings.set("smtp.relay.pop_before_smtp_duration", 10)
    verdict = policy.on_rcpt(session(), REMOTE, facts)
    assert verdict.accepted and "relay-rule:pop-before-smtp" in verdict.flags
    clock.advance(10 * 60 + 1)
    assert policy.on_rcpt(session(), REMOTE, facts).reason == "relay-denied"
    assert logins.last_login(client_address("198.51.100.1")) is None


def test_blocked_addresses_are_refused_as_nonexistent(policy: InboundPolicy,
                                                      settings: Overlay) -> None:
    settings.set("smtp.blocked_addresses", ["bob@example.com", "*@remote.example"])
    verdict = policy.on_rcpt(session(), rcpt("BOB@example.com"))
    assert verdict.reason == "blocked-recipient" and verdict.reply is not None
    assert (verdict.reply.code, verdict.reply.enhanced) == (550, "5.1.1")
    assert policy.on_rcpt(authed(), REMOTE).reason == "blocked-recipient"


def test_catch_all_and_disable_all_catchalls(hosted, policy: InboundPolicy,
                                             settings: Overlay) -> None:
    hosted.directory.update_domain("example.com", {"catch_all": "bob@example.com"})
    verdict = policy.on_rcpt(session(), rcpt("whoever@example.com"))
    assert verdict.accepted and "catchall" in verdict.flags
    assert verdict.target == "[SF:example/bob]"
    settings.set("smtp.security.disable_all_catchalls", True)
    assert policy.on_rcpt(session(), rcpt("whoever@example.com")).reason == "unknown-user"
    assert policy.on_rcpt(session(), rcpt("bob@example.com")).accepted


def test_disabled_domain_refuses_its_recipients(hosted, policy: InboundPolicy) -> None:
    hosted.directory.update_domain("example.com", {"disabled": True})
    assert policy.on_rcpt(session(), rcpt("bob@example.com")).reason == "unknown-user"


def test_postmaster_and_abuse_addresses_of_a_domain(hosted, policy: InboundPolicy) -> None:
    assert policy.on_rcpt(session(), rcpt("abuse@example.com")).reason == "unknown-user"
    hosted.directory.update_domain("example.com", {"abuse_address": "bob@example.com",
                                                   "postmaster_address": "bob@example.com"})
    for text in ("abuse@example.com", "Postmaster@example.com"):
        verdict = policy.on_rcpt(session(), rcpt(text))
        assert verdict.accepted and verdict.target == "[SF:example/bob]", text


def test_smart_hosted_domain_accepts_any_local_part(hosted, policy: InboundPolicy) -> None:
    hosted.directory.update_domain("example.com", {"smart_host.enabled": True,
                                                   "smart_host.host": "backup.example.net"})
    verdict = policy.on_rcpt(session(), rcpt("anyone@example.com"))
    assert verdict.accepted and "relay" in verdict.flags
    hosted.directory.update_domain("example.com",
                                   {"smart_host.authenticated_relay_only": True})
    assert policy.on_rcpt(session(), rcpt("anyone@example.com")).reason == "relay-denied"
    assert policy.on_rcpt(authed(), rcpt("anyone@example.com")).accepted


def test_domain_blacklist_of_the_recipient_domain(hosted, policy: InboundPolicy) -> None:
    hosted.directory.update_domain("example.com", {"blacklist": ["spam.example"]})
    for text in ("x@spam.example", "x@mx.spam.example"):
        verdict = policy.on_rcpt(session(mail_from=sender(text)), rcpt("bob@example.com"))
        assert verdict.reason == "domain-blacklist", text
    ok = policy.on_rcpt(session(mail_from=sender("x@notspam.example")), rcpt("bob@example.com"))
    assert ok.accepted
