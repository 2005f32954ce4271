"""MAIL FROM checks (manual 6.2.3.6, 6.2.3.11): facts in, verdicts out."""

from __future__ import annotations

import pytest

from postroom.connectors.smtp.address import NULL_PATH
from postroom.connectors.smtp.policy import Action, Facts, InboundPolicy

from .conftest import PASSWORD, Overlay, authed, sender, session

RESOLVES = Facts(sender_domain_resolves=True)


@pytest.mark.parametrize(("resolves", "code", "enhanced", "reason"), [
    (False, 550, "5.1.8", "sender-domain-unresolvable"),
    (None, 451, "4.4.3", "sender-domain-dns-failure"),
])
def test_sender_domain_must_resolve(policy: InboundPolicy, resolves: bool | None, code: int,
                                    enhanced: str, reason: str) -> None:
    path = sender("x@nowhere.example")
    assert policy.wants_sender_domain_lookup(path)
    verdict = policy.on_mail(session(), path, Facts(sender_domain_resolves=resolves))
    assert verdict.reply is not None
    assert (verdict.reply.code, verdict.reply.enhanced, verdict.reason) == (code, enhanced, reason)
    assert verdict.action is (Action.TEMPORARY if code == 451 else Action.REPLY)
    assert policy.on_mail(session(), path, RESOLVES).accepted


def test_sender_domain_check_can_be_turned_off(policy: InboundPolicy, settings: Overlay) -> None:
    settings.set("smtp.security.sender_domain_must_resolve", False)
    path = sender("x@nowhere.example")
    assert not policy.wants_sender_domain_lookup(path)
    assert policy.on_mail(session(), path, Facts(sender_domain_resolves=False)).accepted


def test_no_lookup_needed_for_hosted_null_or_literal_senders(policy: InboundPolicy) -> None:
    for path in (sender("bob@example.com"), NULL_PATH, sender("x@[192.0.2.1]")):
        assert not policy.wants_sender_domain_lookup(path)


def test_null_sender_is_always_accepted(policy: InboundPolicy, settings: Overlay) -> None:
    settings.set("smtp.blocked_senders", ["*"])
    assert policy.on_mail(session(), NULL_PATH).accepted
    assert policy.on_mail(authed(), NULL_PATH).accepted


@pytest.mark.parametrize(("patterns", "address", "blocked"), [
    (["spammer@bad.example"], "Spammer@Bad.Example", True),
    (["*@bad.example"], "anyone@bad.example", True),
    (["@bad.example"], "anyone@bad.example", True),
    (["bad.example"], "anyone@bad.example", True),
    (["bad.example"], "anyone@sub.bad.example", False),
    (["*.bad.example"], "anyone@sub.bad.example", True),
    (["promo-*@*"], "promo-42@shop.example", True),
    (["spammer@bad.example"], "friend@bad.example", False),
])
def test_blocked_senders(policy: InboundPolicy, settings: Overlay, patterns: list[str],
                         address: str, blocked: bool) -> None:
    settings.set("smtp.blocked_senders", patterns)
    verdict = policy.on_mail(session(), sender(address), RESOLVES)
    assert (verdict.reason == "blocked-sender") is blocked
    if blocked:
        assert verdict.reply is not None
        assert (verdict.reply.code, verdict.reply.enhanced) == (553, "5.7.1")


@pytest.mark.parametrize(("mode", "client", "accepted"), [
    ("allow_all", "unauthenticated", True),
    ("allow_all", "privileged", True),
    ("authorized_only", "unauthenticated", False),
    ("authorized_only", "privileged", True),
    ("authorized_only", "authenticated", True),
    ("deny_impersonation", "unauthenticated", False),
    ("deny_impersonation", "privileged", False),
    ("deny_impersonation", "authenticated", True),
])
def test_spoofing_modes_with_own_address(policy: InboundPolicy, settings: Overlay, mode: str,
                                         client: str, accepted: bool) -> None:
    settings.set("smtp.security.address_spoofing", mode)
    s = {"unauthenticated": session(), "privileged": session("127.0.0.1"),
         "authenticated": authed()}[client]
    verdict = policy.on_mail(s, sender("bob@example.com"))
    assert verdict.accepted is accepted, verdict
    if not accepted:
        assert verdict.reason == "spoofing" and verdict.reply is not None
        assert (verdict.reply.code, verdict.reply.enhanced) == (553, "5.7.1")


def test_impersonating_another_mailbox(hosted, policy: InboundPolicy, settings: Overlay) -> None:
    hosted.directory.create_mailbox("example", "alice", PASSWORD)
    if hosted.directory.resolve("alice@example.com") is None:
        hosted.directory.add_address("alice@example.com", "[SF:example/alice]")
    as_alice = sender("alice@example.com")
    assert policy.on_mail(authed(), as_alice).accepted             # default: same post office
    settings.set("smtp.security.address_spoofing", "deny_impersonation")
    assert policy.on_mail(authed(), as_alice).reason == "spoofing"
    settings.set("smtp.security.address_spoofing", "authorized_only")
    settings.set("smtp.security.auth_sender_must_use_own_address", True)
    assert policy.on_mail(authed(), as_alice).reason == "spoofing"
    assert policy.on_mail(authed(), sender("bob@example.com")).accepted


def test_authenticated_sender_must_use_postoffice_address(hosted, policy: InboundPolicy,
                                                          settings: Overlay) -> None:
    verdict = policy.on_mail(authed(), sender("bob@gmail.example"), RESOLVES)
    assert verdict.reason == "spoofing" and verdict.detail == "not post office address"
    hosted.directory.create_postoffice("other")
    hosted.directory.create_domain("other.example", "other")
    hosted.directory.create_mailbox("other", "carol", PASSWORD)
    if hosted.directory.resolve("carol@other.example") is None:
        hosted.directory.add_address("carol@other.example", "[SF:other/carol]")
    assert policy.on_mail(authed(), sender("carol@other.example")).reason == "spoofing"
    settings.set("smtp.security.auth_sender_must_use_postoffice_address", False)
    assert policy.on_mail(authed(), sender("bob@gmail.example"), RESOLVES).accepted


def test_fixed_relay_credential_has_no_post_office(policy: InboundPolicy) -> None:
    s = session(authenticated=("", "relayuser"), tls=True)
    assert policy.on_mail(s, sender("app@remote.example"), RESOLVES).accepted
