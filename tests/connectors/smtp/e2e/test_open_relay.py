"""The classic open-relay tests, end to end: raw RCPT commands from an unprivileged client.

What relay testers (and spammers) try, sent byte for byte over a real socket to the
MX listener without AUTH (manual 6.2.3.5, RFC 5321 §3.6, §4.1.1.3, §4.1.3; the
rules are in ``policy/locality.py`` and ``policy/relay.py``). Every trick must be
refused with a 5xx reply, DATA must then have nobody to deliver to, and nothing may
reach the queue; a legitimate local recipient still works in the same session.

The client is made unprivileged the way a real deployment is: the privileged relay
range is ``127.0.0.1`` only, the server listens there, and the client's socket is
bound to ``127.0.0.2`` (all of 127.0.0.0/8 is loopback on Linux). A control test
shows that the same server relays for the privileged address, so the refusals are
the relay rules at work and not a server that refuses everything.
"""

from __future__ import annotations

import pytest

from tests.connectors.smtp.e2e.conftest import SmtpServer
from tests.connectors.smtp.e2e.rawclient import RawClient

CLIENT_IP = "127.0.0.2"

# (what it is, the RCPT TO argument). Our hosted domains: example.com (bob, alice) and
# the catch-all domain catch.test; remote.test is somebody else's.
TRICKS: list[tuple[str, str]] = [
    ("plain remote", "<far@remote.test>"),
    ("uppercase remote", "<FAR@REMOTE.TEST>"),
    ("percent hack", "<far%remote.test@example.com>"),
    ("percent hack on a mailbox", "<bob%remote.test@example.com>"),
    ("percent hack at the catch-all", "<far%remote.test@catch.test>"),
    ("bang path", "<remote.test!far@example.com>"),
    ("bang path at the catch-all", "<remote.test!far@catch.test>"),
    ("source route", "<@example.com:far@remote.test>"),
    ("two-hop source route", "<@mail.test,@example.com:far@remote.test>"),
    ("source route to a local mailbox", "<@remote.test:bob@example.com>"),
    ("quoted @", '<"far@remote.test"@example.com>'),
    ("quoted @ at the catch-all", '<"far@remote.test"@catch.test>'),
    ("quoted percent", '<"far%remote.test"@example.com>'),
    ("quoted bang", '<"remote.test!far"@example.com>'),
    ("IP literal", "<far@[192.0.2.1]>"),
    ("IP literal of our own address", "<far@[127.0.0.1]>"),
    ("IPv6 literal of loopback", "<far@[IPv6:::1]>"),
    ("decimal IP literal", "<far@[2130706433]>"),
    ("percent hack on an IP literal", "<far%remote.test@[127.0.0.1]>"),
    ("trailing dot", "<far@remote.test.>"),
    ("trailing dot on our domain", "<bob@example.com.>"),
    ("subdomain of ours", "<far@evil.example.com>"),
    ("our domain as a prefix", "<far@example.com.remote.test>"),
    ("remote postmaster", "<postmaster@remote.test>"),
    ("localhost", "<far@localhost>"),
    ("empty path", "<>"),
    ("double @", "<far@remote.test@example.com>"),
    ("percent in the domain", "<bob@example.com%remote.test>"),
    ("two addresses in one path", "<far@remote.test,bob@example.com>"),
    ("unbracketed remote", "far@remote.test"),
    ("Cyrillic look-alike of our domain", "<bob@exаmple.com>"),
    ("full-width look-alike of our domain", "<bob@ｅｘａｍｐｌｅ.com>"),
]


def Client(server: SmtpServer, source: str = CLIENT_IP) -> RawClient:
    """A raw client whose socket is bound to ``source`` before connecting."""
    return RawClient(server.host, server.port, source)


@pytest.fixture
def unprivileged(smtp_server: SmtpServer) -> SmtpServer:
    smtp_server.set("smtp.relay.privileged_ip_ranges", ["127.0.0.1"])
    return smtp_server


def test_privileged_address_may_relay(unprivileged: SmtpServer) -> None:
    """Control: the server does relay for its privileged range (127.0.0.1)."""
    client = Client(unprivileged, source="127.0.0.1")
    try:
        assert client.reply().startswith(b"220 ")
        assert client.command("EHLO trusted.test").startswith(b"250")
        assert client.command("MAIL FROM:<app@remote.test>").startswith(b"250")
        assert client.command("RCPT TO:<far@remote.test>").startswith(b"250")
    finally:
        client.close()


def test_every_open_relay_trick_is_refused(unprivileged: SmtpServer) -> None:
    # Thirty refusals in a row would get a prober dropped (see the next test); here the
    # point is each reply and the session afterwards.
    unprivileged.set("smtp.security.drop_on_failed_commands_enabled", False)
    client = Client(unprivileged)
    try:
        assert client.reply().startswith(b"220 ")
        ehlo = client.command("EHLO relaytest.example.net")
        assert b"SMTPUTF8" in ehlo
        assert client.command("MAIL FROM:<spammer@remote.test> SMTPUTF8").startswith(b"250")
        accepted = {}
        for name, path in TRICKS:
            reply = client.command(f"RCPT TO:{path}")
            if not reply.startswith(b"5"):
                accepted[name] = (path, reply)
        assert accepted == {}, f"open-relay tricks not refused: {accepted}"
        data = client.command("DATA")
        assert data[:3] in (b"503", b"554"), data
        assert client.command("RSET").startswith(b"250")
        assert unprivileged.entries() == []

        # The same session, a legitimate message; tricks mixed in are still refused
        # and do not become recipients of the accepted message.
        assert client.command("MAIL FROM:<friend@remote.test>").startswith(b"250")
        assert client.command("RCPT TO:<far%remote.test@example.com>").startswith(b"550")
        assert client.command("RCPT TO:<bob@example.com>").startswith(b"250")
        assert client.command("RCPT TO:<@example.com:far@remote.test>").startswith(b"550")
        assert client.command("DATA").startswith(b"354")
        done = client.command("Subject: legit\r\n\r\nhello bob\r\n.")
        assert done.startswith(b"250 2.0.0 OK queued as ")
        assert client.command("QUIT").startswith(b"221")
    finally:
        client.close()
    [entry] = unprivileged.entries()
    assert entry.tracking_id == done.split()[-1].decode()
    assert entry.envelope.recipients == ["[SF:example/bob]"]
    assert entry.envelope.client_ip == CLIENT_IP
    assert [r["address"] for r in entry.envelope.extra["rcpt"]] == ["bob@example.com"]


def test_relay_reply_is_the_one_testers_expect(unprivileged: SmtpServer) -> None:
    """A plain relay attempt and a routing trick both answer 550 5.7.1."""
    client = Client(unprivileged)
    try:
        client.reply()
        client.command("EHLO relaytest.example.net")
        client.command("MAIL FROM:<spammer@remote.test>")
        for path in ("<far@remote.test>", "<far%remote.test@example.com>",
                     "<remote.test!far@example.com>", "<@example.com:far@remote.test>",
                     '<"far@remote.test"@example.com>', "<far@[192.0.2.1]>"):
            reply = client.command(f"RCPT TO:{path}")
            assert reply[:9] == b"550 5.7.1", (path, reply)
    finally:
        client.close()


def test_persistent_prober_is_dropped_and_nothing_queued(unprivileged: SmtpServer) -> None:
    """With the default drop limit (20 failures) the prober is cut off with 421."""
    client = Client(unprivileged)
    replies = []
    try:
        client.reply()
        client.command("EHLO relaytest.example.net")
        client.command("MAIL FROM:<spammer@remote.test> SMTPUTF8")
        for _, path in TRICKS:
            try:
                replies.append(client.command(f"RCPT TO:{path}"))
            except ConnectionError:
                break
            if replies[-1].startswith(b"421"):
                break
    finally:
        client.close()
    assert replies[-1].startswith(b"421 4.7.0")
    assert all(r.startswith(b"5") for r in replies[:-1])
    assert len(replies) <= 21
    assert unprivileged.entries() == []


def test_tricks_through_our_own_address_literal(unprivileged: SmtpServer) -> None:
    """With domain literals allowed, ``user@[our IP]`` is local, its tricks are not."""
    unprivileged.set("smtp.security.allow_domain_literals", True)
    client = Client(unprivileged)
    try:
        client.reply()
        client.command("EHLO relaytest.example.net")
        client.command("MAIL FROM:<someone@remote.test>")
        for path in ("<far%remote.test@[127.0.0.1]>", "<remote.test!far@[127.0.0.1]>",
                     '<"far@remote.test"@[127.0.0.1]>', "<far@[192.0.2.1]>"):
            reply = client.command(f"RCPT TO:{path}")
            assert reply[:9] == b"550 5.7.1", (path, reply)
        assert client.command("RCPT TO:<bob@[127.0.0.1]>").startswith(b"250")
        assert client.command("DATA").startswith(b"354")
        done = client.command("Subject: literal\r\n\r\nvia the address literal\r\n.")
        assert done.startswith(b"250 2.0.0")
    finally:
        client.close()
    [entry] = unprivileged.entries()
    assert entry.envelope.recipients == ["[SF:example/bob]"]
