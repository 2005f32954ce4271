"""Limits (manual 6.2.3.3, 6.2.3.6): recipients per message and per hour, failed
commands, concurrent connections; time moved by a fake clock."""

from __future__ import annotations

from postroom.connectors.smtp.policy import Action, InboundPolicy
from postroom.connectors.smtp.policy.limits import SlidingWindow

from .conftest import FakeClock, Overlay, authed, rcpt, sender, session

LOCAL = rcpt("bob@example.com")


def test_recipients_per_message(policy: InboundPolicy, settings: Overlay) -> None:
    settings.set("smtp.security.max_recipients_per_message", 3)
    s = session()
    for _ in range(3):
        assert policy.on_rcpt(s, LOCAL).accepted
        s.counters.recipients += 1
    verdict = policy.on_rcpt(s, LOCAL)
    assert verdict.reply is not None
    assert (verdict.reply.code, verdict.reply.enhanced) == (452, "4.5.3")
    assert verdict.action is Action.TEMPORARY
    s.new_transaction()
    assert policy.on_rcpt(s, LOCAL).accepted
    settings.set("smtp.security.max_recipients_per_message_enabled", False)
    s.counters.recipients = 10_000
    assert policy.on_rcpt(s, LOCAL).accepted


def test_recipients_per_hour_sliding_window(policy: InboundPolicy, settings: Overlay,
                                            clock: FakeClock) -> None:
    settings.set("smtp.security.max_recipients_per_hour_enabled", True)
    settings.set("smtp.security.max_recipients_per_hour", 5)
    s = authed(mail_from=sender("bob@example.com"))
    remote = rcpt("friend@remote.example")
    for _ in range(5):
        assert policy.on_rcpt(s, remote).accepted
        clock.advance(60)                       # one per minute: t = 0, 60, ... 240
    refused = policy.on_rcpt(s, remote)
    assert refused.reason == "hourly-limit" and refused.action is Action.TEMPORARY
    assert refused.reply is not None and refused.reply.code == 450
    clock.advance(3600 - 300)                  # the first recipient leaves the window
    assert policy.on_rcpt(s, remote).accepted
    assert policy.on_rcpt(s, remote).reason == "hourly-limit"
    # another client IP and another user have their own budgets
    other = authed("198.51.100.77", mail_from=sender("bob@example.com"))
    other.authenticated = ("example", "alice")
    assert policy.on_rcpt(other, remote).accepted


def test_refused_recipients_do_not_use_the_hourly_budget(policy: InboundPolicy,
                                                         settings: Overlay) -> None:
    settings.set("smtp.security.max_recipients_per_hour_enabled", True)
    settings.set("smtp.security.max_recipients_per_hour", 2)
    s = session(mail_from=sender("x@remote.example"))
    for _ in range(5):
        assert policy.on_rcpt(s, rcpt("nobody@example.com")).reason == "unknown-user"
    assert policy.on_rcpt(s, LOCAL).accepted


def test_sliding_window_bounds_keys() -> None:
    clock = FakeClock()
    window = SlidingWindow(10, clock, max_keys=3)
    for key in "abcd":
        window.add(key)
    assert window.count("a") == 0 and window.count("d") == 1
    clock.advance(10)
    assert window.count("d") == 0


def test_drop_after_failed_commands_and_deny_ip(policy: InboundPolicy,
                                                settings: Overlay) -> None:
    settings.set("smtp.security.drop_on_failed_commands_count", 3)
    settings.set("smtp.security.add_to_denied_ips_enabled", True)
    settings.set("smtp.security.add_to_denied_ips_count", 2)
    s = session()
    for count in (1, 2):
        s.counters.failed_commands = count
        assert policy.on_failed_command(s).accepted
    s.counters.failed_commands = 3
    first = policy.on_failed_command(s)
    assert first.drop and first.reply is not None and first.reply.code == 421
    assert "add-ip-to-deny-list" not in first.flags
    second = policy.on_failed_command(session(counters=s.counters))
    assert second.drop and "add-ip-to-deny-list" in second.flags


def test_whitelisted_ip_is_dropped_but_never_auto_blocked(policy: InboundPolicy,
                                                          settings: Overlay) -> None:
    settings.set("smtp.security.drop_on_failed_commands_count", 1)
    settings.set("smtp.security.add_to_denied_ips_enabled", True)
    settings.set("smtp.security.add_to_denied_ips_count", 1)
    settings.set("smtp.whitelist.enabled", True)
    settings.set("smtp.whitelist.addresses", ["203.0.113.0/24"])
    s = session()
    s.counters.failed_commands = 1
    verdict = policy.on_failed_command(s)
    assert verdict.drop and "add-ip-to-deny-list" not in verdict.flags


def test_concurrent_connections(policy: InboundPolicy, settings: Overlay) -> None:
    settings.set("smtp.inbound.max_connections", 3)
    settings.set("smtp.inbound.max_connections_per_ip", 2)
    a1, a2, a3 = session(), session(), session()
    assert policy.on_connect(a1).accepted and policy.on_connect(a2).accepted
    per_ip = policy.on_connect(a3)
    assert per_ip.reason == "too-many-connections-ip" and per_ip.drop
    assert per_ip.reply is not None and (per_ip.reply.code, per_ip.reply.enhanced) == (421, "4.7.0")
    # loopback is privileged: no per-IP limit, but the total still counts
    assert policy.on_connect(session("127.0.0.1")).accepted
    assert policy.on_connect(session("198.51.100.3")).reason == "too-many-connections"
    policy.on_disconnect(a1)
    assert policy.on_connect(a3).accepted
    assert policy.connections.total == 3


def test_whitelisted_ip_has_no_per_ip_hourly_budget(policy: InboundPolicy,
                                                    settings: Overlay) -> None:
    settings.set("smtp.security.max_recipients_per_hour_enabled", True)
    settings.set("smtp.security.max_recipients_per_hour", 2)
    settings.set("smtp.whitelist.enabled", True)
    settings.set("smtp.whitelist.addresses", ["203.0.113.9"])
    for n in range(4):   # four senders from one white-listed relay
        s = session(mail_from=sender(f"user{n}@remote.example"))
        assert policy.on_rcpt(s, LOCAL).accepted
    s = session(mail_from=sender("user0@remote.example"))
    assert policy.on_rcpt(s, LOCAL).accepted
    assert policy.on_rcpt(s, LOCAL).reason == "hourly-limit"     # the sender's budget
