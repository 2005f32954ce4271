"""Connection limits, timeouts, the IPv6 listener, the banner and VRFY/EXPN, end to end.

Manual 6.2.3.3 (maximum concurrent connections, IP bindings, IPv6), 6.2.3.6
(alternate welcome message with ``%LOCALDOMAIN%`` and ``%TIME%``), RFC 5321 §3.5.3
and §7.3 (VRFY and EXPN reveal who exists: off by default), §4.5.3.2 (timeouts).
Each test is a real client on loopback; clients come from different addresses of
127.0.0.0/8 when a test needs several "hosts".
"""

from __future__ import annotations

import contextlib
import email.utils
import smtplib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.connectors.smtp.e2e.conftest import SmtpServer
from tests.connectors.smtp.e2e.rawclient import RawClient

Client = RawClient


@contextlib.contextmanager
def clients(server: SmtpServer, sources: list[str]) -> Iterator[list[Client]]:
    opened: list[Client] = []
    try:
        for source in sources:
            opened.append(Client(server.host, server.port, source))
        yield opened
    finally:
        for client in opened:
            client.close()


def _send_through(client: Client, body: str) -> bytes:
    assert client.command("MAIL FROM:<someone@remote.test>").startswith(b"250")
    assert client.command("RCPT TO:<bob@example.com>").startswith(b"250")
    assert client.command("DATA").startswith(b"354")
    return client.command(f"Subject: {body}\r\n\r\n{body}\r\n.")


# -- concurrent connections ----------------------------------------------------------


def test_total_connection_limit(smtp_server: SmtpServer) -> None:
    smtp_server.set("smtp.inbound.max_connections", 3)
    with clients(smtp_server, ["127.0.0.2", "127.0.0.3", "127.0.0.4"]) as first:
        for client in first:
            assert client.reply().startswith(b"220 ")
        with clients(smtp_server, ["127.0.0.5"]) as [fourth]:
            assert fourth.reply().startswith(b"421 4.7.0")
            assert fourth.closed_by_server()
        for n, client in enumerate(first):     # the three keep working
            assert client.command(f"EHLO host{n}.test").startswith(b"250")
            assert _send_through(client, f"kept {n}").startswith(b"250 2.0.0 OK queued as ")
        first[0].command("QUIT")
        first[0].close()

        def admitted() -> bool:   # the slot is released once the session has ended
            with clients(smtp_server, ["127.0.0.6"]) as [again]:
                return again.reply().startswith(b"220 ")

        smtp_server.wait_for(admitted, timeout=5)
    assert len(smtp_server.entries()) == 3


def test_per_ip_connection_limit(smtp_server: SmtpServer) -> None:
    smtp_server.set("smtp.inbound.max_connections_per_ip", 3)
    with clients(smtp_server, ["127.0.0.2"] * 3) as same:
        for client in same:
            assert client.reply().startswith(b"220 ")
        with clients(smtp_server, ["127.0.0.2"]) as [fourth]:
            assert fourth.reply().startswith(b"421 4.7.0")
            assert fourth.closed_by_server()
        with clients(smtp_server, ["127.0.0.3"]) as [other_host]:
            assert other_host.reply().startswith(b"220 ")
            assert other_host.command("EHLO other.test").startswith(b"250")
        for n, client in enumerate(same):
            assert client.command(f"EHLO same{n}.test").startswith(b"250")
            assert _send_through(client, f"same {n}").startswith(b"250 2.0.0")
    assert len(smtp_server.entries()) == 3


def test_clients_that_vanish_give_their_slots_back(smtp_server: SmtpServer) -> None:
    """Connections reset mid-command or mid-DATA are released, not leaked."""
    smtp_server.set("smtp.inbound.max_connections", 3)
    for round_no in range(3):
        with clients(smtp_server, ["127.0.0.2", "127.0.0.3", "127.0.0.4"]) as opened:
            for n, client in enumerate(opened):
                assert client.reply().startswith(b"220 "), round_no
                client.command(f"EHLO gone{n}.test")
                if n == 1:
                    client.command("MAIL FROM:<someone@remote.test>")
                    client.command("RCPT TO:<bob@example.com>")
                    client.command("DATA")
                    client.sock.sendall(b"Subject: half\r\n\r\nhalf a body")
                client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))   # close with a reset

        def all_admitted() -> bool:
            with clients(smtp_server, ["127.0.0.5", "127.0.0.6", "127.0.0.7"]) as again:
                return all(c.reply().startswith(b"220 ") for c in again)

        smtp_server.wait_for(all_admitted, timeout=5)
    assert smtp_server.entries() == []


# -- timeouts ------------------------------------------------------------------------


@pytest.mark.slow   # the shortest command timeout the settings allow is 10 s
def test_idle_clients_are_disconnected_busy_ones_are_not(smtp_server: SmtpServer) -> None:
    smtp_server.set("smtp.inbound.command_timeout", 10)
    smtp_server.set("smtp.inbound.data_timeout", 10)
    results: dict[str, object] = {}

    def idle() -> None:
        client = Client(smtp_server.host, smtp_server.port, timeout=30)
        try:
            client.reply()
            client.command("EHLO idle.test")
            start = time.monotonic()
            results["idle"] = (client.reply(), time.monotonic() - start,
                               client.closed_by_server())
        finally:
            client.close()

    def stalled_in_data() -> None:
        client = Client(smtp_server.host, smtp_server.port, timeout=30)
        try:
            client.reply()
            client.command("EHLO stall.test")
            client.command("MAIL FROM:<someone@remote.test>")
            client.command("RCPT TO:<bob@example.com>")
            assert client.command("DATA").startswith(b"354")
            client.sock.sendall(b"Subject: half a message\r\n\r\nand then nothing")
            start = time.monotonic()
            results["data"] = (client.reply(), time.monotonic() - start,
                               client.closed_by_server())
        finally:
            client.close()

    def busy() -> None:
        client = Client(smtp_server.host, smtp_server.port, timeout=30)
        try:
            client.reply()
            client.command("EHLO busy.test")
            replies = []
            for _ in range(4):   # 12 s in all, a command every 3 s
                time.sleep(3)
                replies.append(client.command("NOOP"))
            results["busy"] = replies
        finally:
            client.close()

    threads = [threading.Thread(target=f) for f in (idle, stalled_in_data, busy)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(40)
    reply, waited, closed = results["idle"]  # type: ignore[misc]
    assert reply.startswith(b"421 4.4.2") and closed
    assert 9 <= waited < 14
    reply, waited, closed = results["data"]  # type: ignore[misc]
    assert reply.startswith(b"421 4.4.2") and closed
    assert 9 <= waited < 14
    assert all(r.startswith(b"250") for r in results["busy"])  # type: ignore[attr-defined]
    assert smtp_server.entries() == []
    assert not any((smtp_server.home / "tmp").glob("smtp-*"))


# -- IPv6 ----------------------------------------------------------------------------


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def _restart(server: SmtpServer) -> None:
    """Listener settings apply at the next start, as after ``postroom serve`` restarts."""
    server.call(server.service.stop())
    server.call(server.service.start())


def test_ipv6_listener_accepts_a_message(smtp_server: SmtpServer) -> None:
    if not _has_ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback (::1)")
    smtp_server.set("smtp.bind", ["127.0.0.1", "::1"])
    _restart(smtp_server)
    with smtplib.SMTP("::1", smtp_server.port, timeout=10) as client:
        code, _ = client.ehlo("v6.remote.test")
        assert code == 250
        client.mail("someone@remote.test")
        assert client.rcpt("bob@example.com")[0] == 250
        code, text = client.data(b"Subject: over IPv6\r\n\r\nhello\r\n")
    assert code == 250
    entry = smtp_server.store.queue.get(text.decode().split()[-1])
    assert entry.envelope.client_ip == "::1"
    received = smtp_server.body(entry.tracking_id).split(b"\r\nSubject:")[0]
    assert b"[IPv6:::1]" in received or b"[::1]" in received
    with smtplib.SMTP("127.0.0.1", smtp_server.port, timeout=10) as client:   # IPv4 still
        assert client.ehlo("v4.remote.test")[0] == 250


def test_ipv6_switched_off_refuses_ipv6_clients(smtp_server: SmtpServer) -> None:
    if not _has_ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback (::1)")
    smtp_server.set("smtp.bind", ["127.0.0.1", "::1"])
    smtp_server.set("smtp.inbound.allow_ipv6", False)
    _restart(smtp_server)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("::1", smtp_server.port), 5).close()
    with smtplib.SMTP("127.0.0.1", smtp_server.port, timeout=10) as client:
        assert client.ehlo("v4.remote.test")[0] == 250


# -- banner --------------------------------------------------------------------------


def _greeting(server: SmtpServer) -> bytes:
    client = Client(server.host, server.port)
    try:
        return client.reply()
    finally:
        client.close()


def test_default_banner_shows_no_version(smtp_server: SmtpServer) -> None:
    banner = _greeting(smtp_server)
    assert banner == b"220 mail.test ESMTP ready"


def test_alternate_welcome_message_tokens(smtp_server: SmtpServer) -> None:
    smtp_server.set("smtp.security.alternate_welcome_text",
                    "Welcome to %LOCALDOMAIN%; local time %TIME%.")
    banner = _greeting(smtp_server).decode()
    prefix = "220 mail.test Welcome to mail.test; local time "
    assert banner.startswith(prefix) and banner.endswith(".")
    stamp = email.utils.parsedate_to_datetime(banner[len(prefix):-1])
    assert abs((stamp - datetime.now(UTC)).total_seconds()) < 60
    assert "%" not in banner


def test_alternate_welcome_off_gives_plain_banner(smtp_server: SmtpServer) -> None:
    smtp_server.set("smtp.security.alternate_welcome_enabled", False)
    banner = _greeting(smtp_server)
    assert banner.startswith(b"220 mail.test ESMTP")
    assert not any(ch.isdigit() for ch in banner[4:].decode())   # no version number


# -- VRFY and EXPN -------------------------------------------------------------------


def _ask(server: SmtpServer, commands: list[str]) -> list[bytes]:
    client = Client(server.host, server.port)
    try:
        client.reply()
        client.command("EHLO prober.test")
        return [client.command(c) for c in commands]
    finally:
        client.close()


def test_vrfy_and_expn_are_off_and_leak_nothing(smtp_server: SmtpServer) -> None:
    client = Client(smtp_server.host, smtp_server.port)
    try:
        client.reply()
        ehlo = client.command("EHLO prober.test")
    finally:
        client.close()
    assert b"VRFY" not in ehlo and b"EXPN" not in ehlo
    replies = _ask(smtp_server, ["VRFY bob", "VRFY nobody", "VRFY <bob@example.com>",
                                 "VRFY <nobody@example.com>", "EXPN bob", "EXPN nobody"])
    assert {r[:3] for r in replies} == {b"502"}
    assert replies[0] == replies[1] == replies[2] == replies[3]    # same for all: no leak
    assert replies[4] == replies[5]


def test_vrfy_switched_on_still_does_not_confirm_mailboxes(smtp_server: SmtpServer) -> None:
    commands = list(smtp_server.store.settings.get("smtp.advanced.allowed_commands"))
    smtp_server.set("smtp.advanced.allowed_commands", [*commands, "VRFY"])
    existing, missing = _ask(smtp_server, ["VRFY bob@example.com", "VRFY nobody@example.com"])
    assert existing[:3] == b"252"
    assert existing == missing
