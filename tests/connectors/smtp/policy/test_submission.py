"""Authentication requirements (manual 6.2.3.3, 6.2.3.7; RFC 6409, RFC 4954)."""

from __future__ import annotations

import pytest

from postroom.connectors.smtp.policy import Facts, InboundPolicy

from .conftest import Overlay, authed, rcpt, sender, session

RESOLVES = Facts(sender_domain_resolves=True)


@pytest.mark.parametrize("listener", ["submission", "smtps"])
def test_submission_requires_auth_before_mail(policy: InboundPolicy, listener: str) -> None:
    verdict = policy.on_mail(session(listener=listener, tls=True), sender("x@remote.example"),
                             RESOLVES)
    assert verdict.reason == "auth-required" and verdict.reply is not None
    assert (verdict.reply.code, verdict.reply.enhanced) == (530, "5.7.0")
    assert policy.on_mail(authed(listener=listener), sender("bob@example.com")).accepted
    # a privileged script may submit without AUTH
    assert policy.on_mail(session("127.0.0.1", listener=listener),
                          sender("bob@example.com")).accepted


def test_port_25_auth_requirement_is_a_setting(policy: InboundPolicy, settings: Overlay) -> None:
    path = sender("x@remote.example")
    assert policy.on_mail(session(), path, RESOLVES).accepted
    settings.set("smtp.inbound.port_requires_auth", True)
    assert policy.on_mail(session(), path, RESOLVES).reason == "auth-required"
    settings.set("smtp.inbound.submission_requires_auth", False)
    assert policy.on_mail(session(listener="submission"), path, RESOLVES).accepted


def test_plaintext_auth_needs_tls(policy: InboundPolicy, settings: Overlay) -> None:
    plain = session()
    assert policy.auth_mechanisms(plain) == ("CRAM-MD5",)
    verdict = policy.on_auth(plain, "plain")
    assert verdict.reason == "plaintext-auth-without-tls" and verdict.reply is not None
    assert (verdict.reply.code, verdict.reply.enhanced) == (538, "5.7.11")
    assert policy.on_auth(session(tls=True), "PLAIN").accepted
    assert policy.on_auth(session(tls=True), "LOGIN").accepted
    assert policy.auth_mechanisms(session(tls=True)) == ("PLAIN", "LOGIN", "CRAM-MD5")
    assert policy.on_auth(session("127.0.0.1"), "PLAIN").accepted
    settings.set("smtp.security.allow_plaintext_auth_without_tls", True)
    assert policy.on_auth(plain, "LOGIN").accepted


def test_disabled_or_unknown_mechanisms(policy: InboundPolicy, settings: Overlay) -> None:
    s = session(tls=True)
    assert policy.on_auth(s, "CRAM-MD5").accepted
    settings.set("smtp.general.cram_md5_enabled", False)
    assert policy.on_auth(s, "CRAM-MD5").reason == "auth-mechanism-disabled"
    assert policy.on_auth(s, "NTLM").reason == "auth-mechanism-disabled"


def test_inbound_authentication_modes(hosted, policy: InboundPolicy, settings: Overlay) -> None:
    local, remote = rcpt("bob@example.com"), rcpt("friend@remote.example")
    settings.set("smtp.advanced.inbound_authentication", "all")
    verdict = policy.on_rcpt(session(), local)
    assert verdict.reason == "inbound-auth-required" and verdict.reply is not None
    assert verdict.reply.code == 530
    assert policy.on_rcpt(authed(), local).accepted
    assert policy.on_rcpt(authed(), remote).accepted
    settings.set("smtp.advanced.inbound_authentication", "per_postoffice")
    assert policy.on_rcpt(session(), local).accepted
    hosted.directory.update_postoffice("example",
                                       {"restrictions.require_authenticated_inbound": True})
    assert policy.on_rcpt(session(), local).reason == "inbound-auth-required"
    assert policy.on_rcpt(session("127.0.0.1"), local).accepted
