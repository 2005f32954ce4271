"""The accept path with smtplib: 250 carries the tracking id only once the message is
in the queue, with the exact body behind our Received header."""

from __future__ import annotations

import smtplib

from tests.connectors.smtp.e2e.conftest import SmtpServer

MESSAGE = (b"From: someone@remote.test\r\nTo: bob@example.com\r\nSubject: hi\r\n"
           b"Message-ID: <1@remote.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n"
           b"Hello Bob.\r\n.leading dot\r\n")


def test_message_to_local_mailbox_is_queued_with_tracking_id(smtp_server: SmtpServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        code, banner = client.ehlo("client.remote.test")
        assert code == 250
        assert b"mail.test" in banner
        client.mail("someone@remote.test")
        client.rcpt("bob@example.com")
        code, text = client.data(MESSAGE)
    assert code == 250
    tracking = text.decode().split()[-1]
    entry = smtp_server.store.queue.get(tracking)
    assert entry.queue == "MTA.inbound"
    assert entry.envelope.sender == "[SMTP:someone@remote.test]"
    assert entry.envelope.recipients == ["[SF:example/bob]"]
    assert entry.envelope.client_ip == "127.0.0.1"
    assert entry.envelope.extra["helo"] == "client.remote.test"
    body = smtp_server.body(tracking)
    received, _, rest = body.partition(b"\r\nFrom: ")
    assert received.startswith(b"Received: from client.remote.test ([127.0.0.1])")
    assert f"id {tracking}".encode() in received
    assert b"for <bob@example.com>" in received
    assert b"From: " + rest == MESSAGE


def _send(server: SmtpServer, sender: str, recipients: list[str], body: bytes = MESSAGE,
          ) -> tuple[int, bytes]:
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.ehlo("client.remote.test")
        client.mail(sender)
        for rcpt in recipients:
            code, text = client.rcpt(rcpt)
            if code >= 400:
                return code, text
        return client.data(body)


def test_unknown_local_user_is_refused_550_511(smtp_server: SmtpServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.ehlo("client.remote.test")
        client.mail("someone@remote.test")
        code, text = client.rcpt("nobody@example.com")
        assert (code, text[:5]) == (550, b"5.1.1")
        assert client.rcpt("bob@example.com")[0] == 250   # the session goes on
    assert smtp_server.entries() == []


def test_catchall_domain_accepts_any_local_part_once(smtp_server: SmtpServer) -> None:
    code, text = _send(smtp_server, "someone@remote.test",
                       ["anything@catch.test", "other@catch.test"])
    assert code == 250
    entry = smtp_server.store.queue.get(text.decode().split()[-1])
    assert entry.envelope.recipients == ["[SF:example/bob]"]   # one copy for the catch-all
    body = smtp_server.body(entry.tracking_id)
    assert b"for <anything@catch.test>, <other@catch.test>;" in body.split(b"\r\nFrom:")[0]


def test_alternate_catchall_header(smtp_server: SmtpServer) -> None:
    smtp_server.set("smtp.advanced.alternate_catchall_header_enabled", True)
    code, text = _send(smtp_server, "someone@remote.test", ["x@catch.test", "y@catch.test"])
    assert code == 250
    body = smtp_server.body(text.decode().split()[-1])
    assert b"X-Catchall-Recipient: x@catch.test, y@catch.test\r\n" in body


def test_relay_denied_without_authentication(smtp_server: SmtpServer) -> None:
    code, text = _send(smtp_server, "someone@remote.test", ["far@remote.test"])
    assert (code, text[:5]) == (550, b"5.7.1")
    assert smtp_server.entries() == []


def test_sender_domain_that_does_not_resolve_is_refused(smtp_server: SmtpServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.ehlo("client.remote.test")
        code, text = client.mail("someone@nowhere.test")
        assert (code, text[:5]) == (550, b"5.1.8")


def test_message_over_size_is_refused_and_session_goes_on(smtp_server: SmtpServer) -> None:
    smtp_server.set("smtp.inbound.advertised_max_message_size", 2000)
    big = MESSAGE + b"x" * 3000 + b"\r\n"
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.ehlo("client.remote.test")
        assert client.esmtp_features["size"] == "2000"
        client.mail("someone@remote.test")
        client.rcpt("bob@example.com")
        code, text = client.data(big)
        assert (code, text[:5]) == (552, b"5.3.4")
        assert smtp_server.entries() == []
        client.mail("someone@remote.test")
        client.rcpt("bob@example.com")
        assert client.data(MESSAGE)[0] == 250
    assert len(smtp_server.entries()) == 1


def test_live_size_change_applies_to_the_next_session(smtp_server: SmtpServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.ehlo("a.remote.test")
        assert client.esmtp_features["size"] == "52428800"
    smtp_server.set("smtp.inbound.advertised_max_message_size", 12345)
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.ehlo("a.remote.test")
        assert client.esmtp_features["size"] == "12345"
        assert client.mail("someone@remote.test", ["SIZE=20000"])[0] == 552
