"""HELO/EHLO checks and the PTR record check (manual 6.2.3.6)."""

from __future__ import annotations

import pytest

from postroom.connectors.smtp.policy import Action, Facts, InboundPolicy

from .conftest import Overlay, authed, sender, session

RESOLVES = Facts(sender_domain_resolves=True)


@pytest.mark.parametrize(("blocked", "name", "dropped"), [
    (["ylmf-pc"], "ylmf-pc", True),
    (["ylmf-pc"], "YLMF-PC", True),
    (["ylmf-pc"], "mail.ylmf-pc.example", False),
    (["*.dynamic.example"], "host-1-2.dynamic.example", True),
    (["*.dynamic.example"], "mail.example.org", False),
    ([], "ylmf-pc", False),
])
def test_ehlo_blocking(policy: InboundPolicy, settings: Overlay, blocked: list[str],
                       name: str, dropped: bool) -> None:
    settings.set("smtp.security.ehlo_block_strings", blocked)
    verdict = policy.on_helo(session(), name)
    assert (verdict.action is Action.REPLY_AND_DROP) is dropped
    if dropped:
        assert verdict.reason == "ehlo-blocked" and verdict.reply is not None
        assert verdict.reply.code == 554


@pytest.mark.parametrize(("name", "reason"), [
    ("[203.0.113.9]", ""),
    ("[IPv6:2001:db8::1]", ""),
    ("[300.1.1.1]", "helo-syntax"),
    ("[mail.example.org]", "helo-syntax"),
    ("[203.0.113.9", "helo-syntax"),
    ("mail.remote.example", ""),
    ("mx.example.com", "helo-impersonation"),
    ("MX.EXAMPLE.COM.", "helo-impersonation"),
    ("[198.51.100.25]", "helo-impersonation"),  # the address the client connected to
])
def test_helo_names(policy: InboundPolicy, settings: Overlay, name: str, reason: str) -> None:
    settings.set("smtp.general.local_domain_name", "mx.example.com")
    assert policy.on_helo(session(), name).reason == reason
    # a privileged client (a local script saying EHLO with our name) is fine
    if reason == "helo-impersonation":
        assert policy.on_helo(session("127.0.0.1", server_ip="198.51.100.25"), name).accepted
        settings.set("smtp.security.reject_helo_impersonation", False)
        assert policy.on_helo(session(), name).accepted


@pytest.mark.parametrize(("mode", "ptr", "failed", "reason", "flag"), [
    ("off", (), False, "", False),
    ("reject", (), False, "no-ptr", False),
    ("reject", ("host.remote.example",), False, "", False),
    ("reject", None, True, "ptr-dns-failure", False),
    ("flag_spam", (), False, "", True),
    ("flag_spam", ("host.remote.example",), False, "", False),
    ("flag_spam", None, True, "", False),
])
def test_ptr_check(policy: InboundPolicy, settings: Overlay, mode: str,
                   ptr: tuple[str, ...] | None, failed: bool, reason: str, flag: bool) -> None:
    settings.set("smtp.security.ptr_check", mode)
    s = session(ptr_names=ptr, ptr_lookup_failed=failed)
    assert policy.wants_ptr_lookup(s) is (mode != "off")
    verdict = policy.on_mail(s, sender("x@remote.example"), RESOLVES)
    assert verdict.reason == reason
    assert ("no-ptr" in verdict.flags) is flag
    if reason == "no-ptr":
        assert verdict.reply is not None
        assert (verdict.reply.code, verdict.reply.enhanced) == (550, "5.7.25")


def test_ptr_check_skips_authenticated_and_local_clients(policy: InboundPolicy,
                                                         settings: Overlay) -> None:
    settings.set("smtp.security.ptr_check", "reject")
    for s in (authed(ptr_names=()), session("192.168.1.20", ptr_names=()),
              session("127.0.0.1", ptr_names=())):
        assert not policy.wants_ptr_lookup(s)
        from_ = sender("bob@example.com") if s.is_authenticated else sender("x@remote.example")
        assert policy.on_mail(s, from_, RESOLVES).accepted
