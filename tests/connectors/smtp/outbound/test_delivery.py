"""Outbound delivery end to end: real peers on 127.0.0.x:25, real DNS, real queue."""

from __future__ import annotations

import time

from tests.connectors.smtp.e2e.conftest import PASSWORD, SmtpServer
from tests.connectors.smtp.outbound.conftest import MESSAGE, Outbound


def test_sink_accepts_and_one_connection_carries_several_messages(outbound: Outbound) -> None:
    peer = outbound.peer(2)
    for n in range(20):
        outbound.send([f"zoe{n}@d2.test"])
    outbound.wait_for(lambda: len(peer.received) == 20)
    assert outbound.settled() == []
    assert peer.connections <= 5           # smtp.delivery.limit_concurrent_connections
    assert {r.recipients[0] for r in peer.received} == {f"zoe{n}@d2.test" for n in range(20)}
    outbound.set("smtp.delivery.limit_concurrent_connections", 1)
    time.sleep(0.5)                         # the idle connections have closed
    before = peer.connections
    for n in range(5):
        outbound.send([f"again{n}@d2.test"])
    outbound.wait_for(lambda: len(peer.received) == 25)
    assert peer.connections == before + 1   # one connection for the five messages
    assert b"Hello Zoe." in peer.received[0].data
    assert peer.received[0].sender == "bob@example.com"
    delivered = outbound.wait_for(lambda: len(found := outbound.events("delivered")) == 25
                                  and found)
    assert len(delivered) == 25 and "mx2.test [127.0.0.2]" in delivered[0].detail
    assert "250 2.0.0 Ok: queued" in delivered[0].detail


def test_4xx_is_retried_at_the_manual_intervals(outbound: Outbound) -> None:
    peer = outbound.peer(3, default_rcpt="451 4.7.1 try later")
    entry = outbound.send(["zoe@d3.test"])
    (waiting,) = outbound.wait_for(lambda: [e for e in outbound.outgoing()
                                            if e.last_error and e.state == "ready"])
    assert "451 4.7.1 try later" in waiting.last_error
    assert abs(waiting.next_attempt_at - (time.time() + 15 * 60)) < 30     # first retry
    assert outbound.wait_for(lambda: outbound.events("deferred"))
    # 15 minutes later (the service clock) the retry fails again: next wait 30 minutes.
    outbound.clock.advance(15 * 60)
    outbound.store.queue.retry_now(waiting.id)
    second = outbound.wait_for(lambda: [e for e in outbound.outgoing()
                                        if e.state == "ready" and e.attempts == 2])[0]
    assert abs(second.next_attempt_at - (time.time() + 30 * 60)) < 30
    # the peer recovers: the third attempt delivers and the entry is gone
    peer.default_rcpt = "250 2.1.5 Ok"
    outbound.clock.advance(30 * 60)
    outbound.store.queue.retry_now(second.id)
    outbound.wait_for(lambda: len(peer.received) == 1)
    assert outbound.settled() == []
    assert entry.tracking_id


def test_5xx_bounces_to_the_local_senders_mailbox_with_the_remote_reply(
        outbound: Outbound) -> None:
    outbound.peer(4, default_rcpt="550 5.1.1 No such user here")
    outbound.send(["nobody@d4.test"])
    (ndr,) = outbound.wait_for(lambda: outbound.inbox())
    assert b"550 5.1.1 No such user here" in ndr
    assert b"Remote-MTA: dns; mx4.test" in ndr
    assert b"Final-Recipient: rfc822; nobody@d4.test" in ndr
    assert outbound.settled() == []


def test_partial_success_delivers_once_and_retries_only_the_others(outbound: Outbound) -> None:
    peer = outbound.peer(5, rcpt_replies={"later@d5.test": "452 4.2.2 mailbox full",
                                          "gone@d5.test": "550 5.1.1 unknown"})
    outbound.send(["ok@d5.test", "later@d5.test", "gone@d5.test"])
    (waiting,) = outbound.wait_for(lambda: [e for e in outbound.outgoing()
                                            if e.state == "ready" and e.last_error])
    assert waiting.envelope.recipients == ["[SMTP:later@d5.test]"]
    assert [r.recipients for r in peer.received] == [["ok@d5.test"]]
    (ndr,) = outbound.wait_for(lambda: outbound.inbox())
    assert b"gone@d5.test" in ndr and b"later@d5.test" not in ndr
    peer.rcpt_replies.clear()
    outbound.clock.advance(15 * 60)
    outbound.store.queue.retry_now(waiting.id)
    outbound.wait_for(lambda: len(peer.received) == 2)
    assert peer.received[1].recipients == ["later@d5.test"]
    assert outbound.settled() == []


def test_a_reply_code_out_of_range_defers_instead_of_bouncing(outbound: Outbound) -> None:
    """RFC 5321 §4.2.1: no server may answer 6xx; the transaction ends as a fatal
    error, and the recipient waits for a retry rather than bouncing at once."""
    peer = outbound.peer(14, default_rcpt="650 6.0.0 no such class")
    outbound.send(["zoe@d14.test"])
    (waiting,) = outbound.wait_for(lambda: [e for e in outbound.outgoing()
                                            if e.state == "ready" and e.last_error])
    assert "out of range" in waiting.last_error
    assert outbound.inbox() == [] and peer.received == []
    peer.default_rcpt = "250 2.1.5 Ok"
    outbound.store.queue.retry_now(waiting.id)
    outbound.wait_for(lambda: len(peer.received) == 1)
    assert outbound.settled() == []


def test_a_connection_dropped_in_data_is_retried(outbound: Outbound) -> None:
    peer = outbound.peer(6, drop_in_data=True)
    outbound.send(["zoe@d6.test"])
    (waiting,) = outbound.wait_for(lambda: [e for e in outbound.outgoing()
                                            if e.state == "ready" and e.last_error])
    assert "Connection lost" in waiting.last_error
    peer.drop_in_data = False
    outbound.store.queue.retry_now(waiting.id)
    outbound.wait_for(lambda: len(peer.received) == 1)
    assert outbound.settled() == []


def test_starttls_is_used_when_offered(outbound: Outbound) -> None:
    home = outbound.home
    peer = outbound.peer(7, tls_files=(home / "tls" / "cert.pem", home / "tls" / "key.pem"))
    outbound.send(["zoe@d7.test"])
    outbound.wait_for(lambda: len(peer.received) == 1)
    assert peer.received[0].tls
    assert "(TLS)" in outbound.wait_for(lambda: outbound.events("delivered"))[0].detail


def test_null_mx_and_missing_domain_bounce_at_once(outbound: Outbound) -> None:
    outbound.dns.add("nullmx.test", "MX", "0 .")
    outbound.send(["zoe@nullmx.test"])
    outbound.send(["zoe@nowhere.test"])
    ndrs = outbound.wait_for(lambda: len(found := outbound.inbox()) == 2 and found)
    text = b"".join(ndrs)
    assert b"5.1.10" in text and b"null MX" in text
    assert b"nowhere.test does not exist" in text
    assert outbound.settled() == []


def test_per_destination_connection_limit(outbound: Outbound) -> None:
    peer = outbound.peer(8, delay=0.2)
    outbound.set("smtp.delivery.limit_concurrent_connections", 2)
    for n in range(12):
        outbound.send([f"zoe{n}@d8.test"])
    outbound.wait_for(lambda: len(peer.received) == 12, timeout=30)
    assert peer.most_open == 2


def test_success_notice_when_the_peer_has_no_dsn(outbound: Outbound) -> None:
    peer = outbound.peer(9, extensions=("8BITMIME",))
    outbound.send(["zoe@d9.test"], rcpt=[{"address": "zoe@d9.test",
                                          "target": "[SMTP:zoe@d9.test]",
                                          "notify": ["SUCCESS", "FAILURE"],
                                          "orcpt": "rfc822;zoe@d9.test"}],
                  envid="ENV42")
    outbound.wait_for(lambda: len(peer.received) == 1)
    (notice,) = outbound.wait_for(lambda: outbound.inbox())
    assert b"Action: relayed" in notice
    assert b"Original-Envelope-Id: ENV42" in notice
    assert b"Original-Recipient: rfc822; zoe@d9.test" in notice


def test_dsn_parameters_are_passed_to_a_peer_with_dsn(outbound: Outbound) -> None:
    peer = outbound.peer(10)
    outbound.send(["zoe@d10.test"], rcpt=[{"address": "zoe@d10.test",
                                           "target": "[SMTP:zoe@d10.test]",
                                           "notify": ["SUCCESS"],
                                           "orcpt": "rfc822;zoe@d10.test"}],
                  envid="ENV43", ret="HDRS")
    outbound.wait_for(lambda: len(peer.received) == 1)
    received = peer.received[0]
    assert "RET=HDRS" in received.mail_params and "ENVID=ENV43" in received.mail_params
    assert received.rcpt_params[0] == ["NOTIFY=SUCCESS", "ORCPT=rfc822;zoe@d10.test"]
    time.sleep(0.5)
    assert outbound.inbox() == []            # the peer reports success itself


def test_delay_notice_after_the_configured_time_and_final_ndr(outbound: Outbound) -> None:
    outbound.peer(11, default_rcpt="451 4.4.1 busy")
    outbound.send(["zoe@d11.test"])
    (entry,) = outbound.wait_for(lambda: [e for e in outbound.outgoing() if e.last_error])
    assert outbound.inbox() == []            # no notice before 4 hours
    outbound.clock.advance(5 * 3600)
    outbound.store.queue.retry_now(entry.id)
    (notice,) = outbound.wait_for(lambda: outbound.inbox())
    assert b"Action: delayed" in notice and b"451 4.4.1 busy" in notice
    outbound.wait_for(lambda: [e for e in outbound.outgoing() if e.state == "ready"
                               and e.next_attempt_at > time.time()])
    outbound.clock.advance(26 * 3600)        # past the 30 hour lifetime
    outbound.store.queue.retry_now()
    found = outbound.wait_for(lambda: len(got := outbound.inbox()) == 2 and got)
    assert b"Action: failed" in found[1] and b"gave up after 30 hours" in found[1]
    assert [e.state for e in outbound.settled()] == ["bad"]    # manual: to Bad Mail
    assert list((outbound.home / "badmail").glob("*.eml"))


def test_hosted_domain_recipients_never_go_out(outbound: Outbound) -> None:
    outbound.send(["alice@example.com"])
    (ndr,) = outbound.wait_for(lambda: outbound.inbox())
    assert b"5.4.6" in ndr
    assert MESSAGE.split(b"\r\n")[2] in ndr   # the original's Subject header returned


def test_smart_host_with_auth_against_our_own_smtp_service(outbound: Outbound,
                                                           smtp_server: SmtpServer) -> None:
    """All outbound mail through a real server (Postroom's SMTP service, submission
    port, AUTH required) that knows bob's password."""
    outbound.set("smtp.smart_host.host", f"127.0.0.1:{smtp_server.submission_port}")
    outbound.set("smtp.smart_host.requires_auth", True)
    outbound.set("smtp.smart_host.username", "bob@example.com")
    outbound.set("smtp.smart_host.password", PASSWORD)
    outbound.set("smtp.smart_host.tls_verify", False)     # its certificate is self-signed
    outbound.set("smtp.smart_host.enabled", True)
    outbound.send(["zoe@far-away.test"])
    (entry,) = outbound.wait_for(lambda: smtp_server.entries())
    assert entry.envelope.auth_user                        # it logged in
    assert entry.envelope.recipients == ["[SMTP:zoe@far-away.test]"]
    assert b"Hello Zoe." in smtp_server.body(entry.tracking_id)
    assert "(TLS)" in outbound.wait_for(lambda: outbound.events("delivered"))[0].detail
    assert outbound.settled() == []


def test_smart_host_with_a_wrong_password_defers(outbound: Outbound,
                                                 smtp_server: SmtpServer) -> None:
    outbound.set("smtp.smart_host.host", f"127.0.0.1:{smtp_server.submission_port}")
    outbound.set("smtp.smart_host.requires_auth", True)
    outbound.set("smtp.smart_host.username", "bob@example.com")
    outbound.set("smtp.smart_host.password", "wrong-password-1!")
    outbound.set("smtp.smart_host.tls_verify", False)
    outbound.set("smtp.smart_host.enabled", True)
    outbound.send(["zoe@far-away.test"])
    (waiting,) = outbound.wait_for(lambda: [e for e in outbound.outgoing() if e.last_error],
                                   timeout=30)
    assert "refused our login" in waiting.last_error
    assert smtp_server.entries() == []


def test_hosts_that_took_our_mail_join_the_outbound_whitelist(outbound: Outbound) -> None:
    outbound.set("smtp.outbound_whitelist.enabled", True)
    peer = outbound.peer(12)                # its own address: tests run in parallel
    outbound.send(["yan@d12.test"])
    outbound.wait_for(lambda: len(peer.received) == 1)
    whitelist = outbound.wait_for(lambda: [str(a) for a in outbound.store.settings.get(
        "smtp.outbound_whitelist.addresses") if "127.0.0.12" in str(a)])
    assert whitelist                        # manual 6.2.3.12: replies from it pass


def test_mail_from_a_domain_with_a_key_arrives_signed_and_verifies(
        outbound: Outbound) -> None:
    """End to end: the agent signs with the domain's key; the peer's copy verifies
    against the record published in DNS (dkimpy)."""
    import asyncio

    import dkim as dkimpy

    from postroom.connectors.smtp.outbound import dkim
    from postroom.net.dns import Resolver

    selector = dkim.create_selector(outbound.store, "example.com", "s1")
    outbound.dns.add(selector.record_name, "TXT", selector.record)
    peer = outbound.peer(13)
    outbound.send(["zoe@d13.test"])
    outbound.wait_for(lambda: len(peer.received) == 1)
    received = peer.received[0].data
    assert received.startswith(b"DKIM-Signature:")
    resolver = Resolver([outbound.dns.nameserver], timeout=3)

    def lookup(name: bytes, timeout: float = 5) -> bytes:
        answer = asyncio.run(resolver.resolve(name.decode().rstrip("."), "TXT"))
        return b"".join(b"".join(rr.strings) for rr in answer)

    assert dkimpy.verify(received, dnsfunc=lookup)
