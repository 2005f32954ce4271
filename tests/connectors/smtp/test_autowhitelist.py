"""The automatic outbound white list (manual 6.2.3.12), through the real SMTP service.

A host we delivered mail to (``remember_peer``, called by the delivery agent) is then
trusted inbound: not refused as a reported spam source, not checked by DNS blacklist
or SPF style checks, not held to the per-IP connection limit. Clients connect from
different 127.0.0.0/8 addresses to play different hosts.
"""

from __future__ import annotations

from typing import Any

from postroom.connectors.smtp.policy import Verdict
from postroom.connectors.smtp.policy import verdict as v
from postroom.connectors.smtp.policy.autowhitelist import (
    MAX_ENTRIES,
    is_remembered,
    remember_peer,
)
from postroom.store import Store
from tests.connectors.smtp.e2e.conftest import SmtpServer, smtp_server  # noqa: F401
from tests.connectors.smtp.e2e.rawclient import RawClient

PEER = "127.0.0.7"        # "an MX we delivered to"
STRANGER = "127.0.0.8"


def rcpt_reply(server: SmtpServer, source: str) -> bytes:
    client = RawClient(server.host, server.port, source)
    try:
        assert client.reply().startswith(b"220")
        assert client.command("EHLO mx.remote.test").startswith(b"250")
        assert client.command("MAIL FROM:<someone@remote.test>").startswith(b"250")
        reply = client.command("RCPT TO:<bob@example.com>")
        if reply.startswith(b"250"):
            assert client.command("DATA").startswith(b"354")
            assert client.command("Subject: hi\r\n\r\nhello\r\n.").startswith(b"250")
        return reply
    finally:
        client.close()


def learn(server: SmtpServer, ip: str) -> bool:
    added = remember_peer(server.store, ip)
    server.set("smtp.outbound_whitelist.enabled", True)  # and let the service re-read
    return added


def test_reported_ip_refused_until_we_delivered_to_it(smtp_server: SmtpServer) -> None:  # noqa: F811
    smtp_server.set("smtp.ip_blocking.refuse_reported_ips", True)
    smtp_server.set("smtp.ip_blocking.blocked_addresses", [PEER, STRANGER])
    assert rcpt_reply(smtp_server, PEER).startswith(b"550")
    assert learn(smtp_server, PEER) is False            # the feature is off: nothing learnt
    assert smtp_server.store.settings.get("smtp.outbound_whitelist.addresses") == []
    assert learn(smtp_server, PEER) is True
    assert smtp_server.store.settings.get("smtp.outbound_whitelist.addresses") == [PEER]
    assert rcpt_reply(smtp_server, PEER).startswith(b"250")
    assert rcpt_reply(smtp_server, STRANGER).startswith(b"550")   # only the peer
    assert len(smtp_server.entries()) == 1
    # Switching the feature off takes the trust away, the list stays for later.
    smtp_server.set("smtp.outbound_whitelist.enabled", False)
    assert rcpt_reply(smtp_server, PEER).startswith(b"550")


class Blacklist:
    """Stands for a DNS blacklist check (the chain's seam for DNSBL and SPF)."""

    bypassed_by_whitelist = True

    def on_mail(self, session: Any, path: Any, facts: Any) -> Verdict:
        return Verdict.refuse(v.REPORTED_IP, "dnsbl-listed", detail=str(session.client_ip))


def test_blacklist_checks_skipped_for_remembered_hosts(smtp_server: SmtpServer) -> None:  # noqa: F811
    policy = smtp_server.service.listeners.ctx.policy
    policy.extra_checks.append(Blacklist())
    client = RawClient(smtp_server.host, smtp_server.port, PEER)
    try:
        client.reply()
        client.command("EHLO mx.remote.test")
        assert client.command("MAIL FROM:<someone@remote.test>").startswith(b"5")
    finally:
        client.close()
    smtp_server.set("smtp.outbound_whitelist.enabled", True)
    assert learn(smtp_server, f"::ffff:{PEER}") is True   # mapped form is the same host
    assert is_remembered(smtp_server.store, PEER)
    assert rcpt_reply(smtp_server, PEER).startswith(b"250")


def test_per_ip_connection_limit_does_not_apply(smtp_server: SmtpServer) -> None:  # noqa: F811
    smtp_server.set("smtp.inbound.max_connections_per_ip", 1)
    first = RawClient(smtp_server.host, smtp_server.port, PEER)
    try:
        assert first.reply().startswith(b"220")
        second = RawClient(smtp_server.host, smtp_server.port, PEER)
        assert second.reply().startswith(b"421")
        second.close()
        smtp_server.set("smtp.outbound_whitelist.enabled", True)
        learn(smtp_server, PEER)
        third = RawClient(smtp_server.host, smtp_server.port, PEER)
        assert third.reply().startswith(b"220")
        third.close()
    finally:
        first.close()


def test_known_ranges_and_junk_are_not_added(store: Store) -> None:
    store.settings.set("smtp.outbound_whitelist.enabled", True)
    store.settings.set("smtp.outbound_whitelist.addresses", ["192.0.2.0/24"])
    assert remember_peer(store, "192.0.2.44") is False      # covered by the manual range
    assert remember_peer(store, "not-an-ip") is False
    assert remember_peer(store, "[2001:db8::25]") is True
    assert remember_peer(store, "2001:db8::25") is False    # already there
    assert store.settings.get("smtp.outbound_whitelist.addresses") == [
        "192.0.2.0/24", "2001:db8::25"]


def test_full_list_stops_growing(store: Store) -> None:
    store.settings.set("smtp.outbound_whitelist.enabled", True)
    full = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(MAX_ENTRIES)]
    store.settings.set("smtp.outbound_whitelist.addresses", full)
    assert remember_peer(store, "198.51.100.1") is False
    assert len(store.settings.get("smtp.outbound_whitelist.addresses")) == MAX_ENTRIES
    assert is_remembered(store, full[-1])
