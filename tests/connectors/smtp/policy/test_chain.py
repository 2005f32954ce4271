"""The composed policy: stage order, the seam for later checks (greylisting, SPF,
DNSBL), white-list bypass, end of data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from postroom.connectors.smtp.policy import Action, Facts, InboundPolicy, Recipient, Verdict
from postroom.connectors.smtp.policy.session import SessionFacts
from postroom.connectors.smtp.wire import Reply

from .conftest import Overlay, authed, rcpt, sender, session

GREYLISTED = Reply(451, "4.7.1", "Greylisted, try again later")
LISTED = Reply(554, "5.7.1", "Listed in a DNS blacklist")


@dataclass
class Greylist:
    """A stand-in later check: defers every first recipient, records what it saw."""

    seen: list[str] = field(default_factory=list)

    def on_rcpt(self, session: SessionFacts, recipient: Recipient, facts: Facts) -> Verdict | None:
        self.seen.append(recipient.address)
        if len(self.seen) == 1:
            return Verdict.refuse(GREYLISTED, "greylisted")
        return None


@dataclass
class Blacklist:
    bypassed_by_whitelist = True
    calls: int = 0

    def on_connect(self, session: SessionFacts) -> Verdict | None:
        self.calls += 1
        return Verdict.refuse(LISTED, "dnsbl", drop=True)


@dataclass
class SpamMarker:
    def on_mail(self, session: SessionFacts, path: Any, facts: Facts) -> Verdict | None:
        return Verdict.accept(flags=("spf-softfail",))

    def on_end_of_data(self, session: SessionFacts, headers: Any, size: int) -> Verdict | None:
        return Verdict.accept(flags=("scanned",))


def test_extra_rcpt_check_runs_after_the_built_in_checks(policy: InboundPolicy) -> None:
    greylist = Greylist()
    policy.extra_checks.append(greylist)
    s = session(mail_from=sender("x@remote.example"))
    assert policy.on_rcpt(s, rcpt("friend@remote.example")).reason == "relay-denied"
    assert greylist.seen == []                     # never asked about refused recipients
    first = policy.on_rcpt(s, rcpt("Bob@Example.com"))
    assert first.action is Action.TEMPORARY and first.reason == "greylisted"
    assert greylist.seen == ["Bob@example.com"]
    second = policy.on_rcpt(s, rcpt("bob@example.com"))
    assert second.accepted and second.target == "[SF:example/bob]"


def test_whitelisted_ips_skip_blacklist_checks(policy: InboundPolicy, settings: Overlay) -> None:
    dnsbl = Blacklist()
    policy.extra_checks.append(dnsbl)
    refused = policy.on_connect(session())
    assert refused.reason == "dnsbl" and refused.drop
    assert policy.connections.total == 0           # refused sessions hold no slot
    settings.set("smtp.whitelist.enabled", True)
    settings.set("smtp.whitelist.addresses", ["203.0.113.0/24"])
    assert policy.on_connect(session()).accepted
    assert dnsbl.calls == 1
    # the white list does not override the administrator's own deny list
    settings.set("smtp.inbound.access_control_list", ["203.0.113.9"])
    assert policy.on_connect(session()).reason == "ip-denied"


def test_accepting_flags_are_merged(policy: InboundPolicy, settings: Overlay) -> None:
    policy.extra_checks.append(SpamMarker())
    settings.set("smtp.security.ptr_check", "flag_spam")
    verdict = policy.on_mail(session(ptr_names=()), sender("x@remote.example"),
                             Facts(sender_domain_resolves=True))
    assert verdict.accepted and verdict.flags == {"no-ptr", "spf-softfail"}


def test_end_of_data_size_and_required_headers(policy: InboundPolicy,
                                               settings: Overlay) -> None:
    settings.set("smtp.inbound.advertised_max_message_size", 1000)
    too_big = policy.on_end_of_data(session(), {}, 1001)
    assert too_big.reason == "size-exceeded" and too_big.reply is not None
    assert (too_big.reply.code, too_big.reply.enhanced) == (552, "5.3.4")
    assert policy.on_end_of_data(session(), [("Subject", "hi")], 1000).flags == frozenset()
    verdict = policy.on_end_of_data(authed(), [("Subject", "hi"), ("Date", "today")], 10)
    assert verdict.flags == {"add-message-id"}
    settings.set("smtp.inbound.enforce_max_message_size", False)
    assert policy.on_end_of_data(session(), {}, 5000).accepted
    policy.extra_checks.append(SpamMarker())
    assert policy.on_end_of_data(session(), {}, 5).flags == {"scanned"}


def test_data_stage_has_only_extra_checks(policy: InboundPolicy) -> None:
    assert policy.on_data(session()).accepted

    class Refuse:
        def on_data(self, session: SessionFacts) -> Verdict | None:
            return Verdict.refuse(Reply(554, "5.7.1", "No"), "script")

    policy.extra_checks.append(Refuse())
    assert policy.on_data(session()).reason == "script"


def test_refusals_reject_non_error_replies() -> None:
    try:
        Verdict.refuse(Reply(250, "2.0.0", "OK"), "oops")
    except ValueError as exc:
        assert "4xx or 5xx" in str(exc)
    else:
        raise AssertionError("a 250 refusal was accepted")


def test_a_whole_unauthenticated_inbound_session(policy: InboundPolicy) -> None:
    s = session(ptr_names=("mail.remote.example",))
    assert policy.on_connect(s).accepted
    assert policy.on_helo(s, "mail.remote.example").accepted
    path = sender("news@remote.example")
    assert policy.wants_sender_domain_lookup(path)
    assert policy.on_mail(s, path, Facts(sender_domain_resolves=True)).accepted
    s.mail_from = path
    assert policy.on_rcpt(s, rcpt("bob@example.com")).accepted
    s.counters.recipients += 1
    assert policy.on_rcpt(s, rcpt("friend@elsewhere.example")).reason == "relay-denied"
    assert policy.on_data(s).accepted
    assert policy.on_end_of_data(s, {"Message-ID": "<1@x>"}, 120).accepted
    policy.on_disconnect(s)
    assert policy.connections.total == 0
