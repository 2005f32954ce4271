"""The open-relay battery: classic tricks that try to make a remote recipient pass as
local, each refused for an unauthenticated client from a non-privileged address, with
a real store hosting example.com (mailbox bob). The same recipients are accepted for
an authenticated client where relaying them means something."""

from __future__ import annotations

import pytest

from postroom.connectors.smtp.address import NULL_PATH, Path
from postroom.connectors.smtp.policy import Action, InboundPolicy

from .conftest import Overlay, authed, rcpt, session

# (label, recipient, accepted for an authenticated client)
TRICKS: list[tuple[str, Path, bool]] = [
    ("plain remote", rcpt("user@remote.example"), True),
    ("percent hack", rcpt("user%remote.example@example.com"), False),
    ("double percent hack", rcpt("user%remote.example%example.com@example.com"), False),
    ("percent hack at our literal", rcpt("user%remote.example@[198.51.100.25]"), False),
    ("bang path", rcpt("remote.example!user@example.com"), False),
    ("bang path, remote first", rcpt("remote.example!bob@example.com"), False),
    ("source route through us", rcpt("@example.com:user@remote.example"), True),
    ("source route to a local mailbox", rcpt("@remote.example:bob@example.com"), True),
    ("multi-hop source route", rcpt("@example.com,@remote.example:user@third.example"), True),
    ("quoted local part with @", rcpt('"user@remote.example"@example.com'), False),
    ("quoted local part with %", rcpt('"user%remote.example"@example.com'), False),
    ("quoted local part with !", rcpt('"remote.example!user"@example.com'), False),
    ("IP literal of another host", rcpt("user@[192.0.2.1]"), True),
    ("IPv6 literal of another host", rcpt("user@[IPv6:2001:db8::1]"), True),
    ("loopback literal", rcpt("user@[127.0.0.1]"), False),
    ("IPv6 loopback literal", rcpt("user@[IPv6:::1]"), False),
    ("IPv4-mapped loopback literal", rcpt("user@[IPv6:::ffff:127.0.0.1]"), False),
    ("unspecified literal", rcpt("user@[0.0.0.0]"), False),
    ("our own literal, literals off", rcpt("bob@[198.51.100.25]"), False),
    ("local domain with trailing dot", Path("bob", "example.com."), False),
    ("remote domain with trailing dot", Path("user", "remote.example."), False),
    ("upper-case remote domain", rcpt("USER@REMOTE.EXAMPLE"), True),
    ("subdomain of a local domain", rcpt("user@mail.example.com"), True),
    ("local domain as a prefix", rcpt("user@example.com.remote.example"), True),
    ("local domain as a suffix", rcpt("user@evilexample.com"), True),
    ("empty recipient", NULL_PATH, False),
    ("postmaster of a remote domain", rcpt("postmaster@remote.example"), True),
    ("Cyrillic look-alike of the local domain", rcpt("bob@\u0435xample.com"), True),
    ("full-width look-alike of the local domain", Path("bob", "\uff45xample.com"), False),
    ("ideographic full stop", Path("bob", "example\u3002com"), False),
    ("empty label", Path("bob", "example..com"), False),
]


@pytest.mark.parametrize(("label", "path", "_auth"), TRICKS, ids=[t[0] for t in TRICKS])
def test_trick_refused_for_unauthenticated_client(policy: InboundPolicy, label: str,
                                                  path: Path, _auth: bool) -> None:
    s = session(mail_from=rcpt("someone@remote.example"))
    verdict = policy.on_rcpt(s, path)
    assert not verdict.accepted, label
    assert verdict.reply is not None and verdict.reply.code in (550, 553)
    assert verdict.action is Action.REPLY


@pytest.mark.parametrize(("label", "path", "auth_accepts"), TRICKS, ids=[t[0] for t in TRICKS])
def test_same_recipient_for_authenticated_client(policy: InboundPolicy, label: str,
                                                 path: Path, auth_accepts: bool) -> None:
    verdict = policy.on_rcpt(authed(mail_from=rcpt("bob@example.com")), path)
    assert verdict.accepted is auth_accepts, (label, verdict)


def test_relay_refusal_is_550_5_7_1(policy: InboundPolicy) -> None:
    verdict = policy.on_rcpt(session(), rcpt("user%remote.example@example.com"))
    assert verdict.reply is not None
    assert (verdict.reply.code, verdict.reply.enhanced) == (550, "5.7.1")
    assert (verdict.reason, verdict.detail) == ("relay-trick", "percent-hack")
    plain = policy.on_rcpt(session(), rcpt("user@remote.example"))
    assert plain.reason == "relay-denied" and plain.reply is not None
    assert plain.reply.to_bytes() == b"550 5.7.1 Relaying denied\r\n"


@pytest.mark.parametrize("text", ["bob@example.com", "BOB@EXAMPLE.COM", "Bob@Example.Com",
                                  '"bob"@example.com', "postmaster"])
def test_hosted_recipients_accepted_for_anyone(policy: InboundPolicy, text: str) -> None:
    verdict = policy.on_rcpt(session(), rcpt(text))
    assert verdict.accepted, verdict
    if text != "postmaster":
        assert verdict.target == "[SF:example/bob]"


def test_unknown_local_user_is_550_5_1_1(policy: InboundPolicy) -> None:
    verdict = policy.on_rcpt(session(), rcpt("nobody@example.com"))
    assert verdict.reply is not None
    assert (verdict.reply.code, verdict.reply.enhanced, verdict.reason) == (
        550, "5.1.1", "unknown-user")


def test_exactly_mapped_percent_address_is_local(hosted, policy: InboundPolicy) -> None:
    hosted.directory.add_address("sales%eu@example.com", "[SF:example/bob]")
    verdict = policy.on_rcpt(session(), rcpt("sales%eu@example.com"))
    assert verdict.accepted and verdict.target == "[SF:example/bob]"


def test_catch_all_does_not_swallow_routing_tricks(hosted, policy: InboundPolicy) -> None:
    hosted.directory.update_domain("example.com", {"catch_all": "bob@example.com"})
    assert policy.on_rcpt(session(), rcpt("anyone@example.com")).accepted
    for text in ("user%remote.example@example.com", "remote.example!user@example.com",
                 '"user@remote.example"@example.com'):
        verdict = policy.on_rcpt(session(), rcpt(text))
        assert verdict.reason == "relay-trick", text
        # an authenticated client gets "unknown user", never delivery to the catch-all
        assert policy.on_rcpt(authed(), rcpt(text)).reason == "unknown-user"


def test_domain_literal_of_our_ip_when_allowed(policy: InboundPolicy,
                                               settings: Overlay) -> None:
    settings.set("smtp.security.allow_domain_literals", True)
    assert policy.on_rcpt(session(), rcpt("bob@[198.51.100.25]")).target == "[SF:example/bob]"
    assert policy.on_rcpt(session(), rcpt("nobody@[198.51.100.25]")).reason == "unknown-user"
    # a NAT address listed in the Advanced... extra IPs
    assert policy.on_rcpt(session(), rcpt("bob@[192.0.2.77]")).reason == "relay-trick"
    settings.set("smtp.security.domain_literal_extra_ips", ["192.0.2.77"])
    assert policy.on_rcpt(session(), rcpt("bob@[192.0.2.77]")).accepted
    # loopback is ours only when the client came in over loopback
    assert not policy.on_rcpt(session(), rcpt("bob@[127.0.0.1]")).accepted
