"""STARTTLS, implicit TLS and AUTH with real clients (smtplib, aiosmtplib)."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl

import aiosmtplib
import pytest

from tests.connectors.smtp.e2e.conftest import (
    ALICE_PASSWORD,
    PASSWORD,
    SmtpServer,
    client_tls,
)

MESSAGE = b"From: bob@example.com\r\nTo: far@remote.test\r\nSubject: out\r\n\r\nBody\r\n"


def test_starttls_then_auth_plain_allows_relay(smtp_server: SmtpServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.ehlo("client.test")
        assert client.has_extn("starttls")
        code, _ = client.starttls(context=client_tls())
        assert code == 220
        client.ehlo("client.test")
        assert not client.has_extn("starttls")
        client.login("bob@example.com", PASSWORD)   # smtplib picks CRAM-MD5 or PLAIN
        client.mail("bob@example.com")
        assert client.rcpt("far@remote.test")[0] == 250
        code, text = client.data(MESSAGE)
    assert code == 250
    entry = smtp_server.store.queue.get(text.decode().split()[-1])
    assert entry.envelope.recipients == ["[SMTP:far@remote.test]"]
    assert entry.envelope.auth_user == "bob@example"
    assert entry.envelope.extra["tls"].startswith("TLSv1.")
    received = smtp_server.body(entry.tracking_id).split(b"\r\nFrom:")[0]
    assert b"with ESMTPSA id " + entry.tracking_id.encode() in received
    assert b"version=TLSv1." in received


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_auth_mechanisms_with_aiosmtplib(smtp_server: SmtpServer, mechanism: str) -> None:
    async def run() -> tuple[int, str]:
        client = aiosmtplib.SMTP(hostname=smtp_server.host, port=smtp_server.submission_port,
                                 tls_context=client_tls(), start_tls=True, timeout=10)
        await client.connect()
        try:
            await client.ehlo()
            assert mechanism in client.server_auth_methods or mechanism.lower() in \
                client.server_auth_methods
            method = {"PLAIN": client.auth_plain, "LOGIN": client.auth_login,
                      "CRAM-MD5": client.auth_crammd5}[mechanism]
            user = "alice@example" if mechanism == "LOGIN" else "alice@example.com"
            response = await method(user, ALICE_PASSWORD)
            assert response.code == 235
            errors, text = await client.sendmail("alice@example.com", ["bob@example.com"],
                                                 b"Subject: hi\r\n\r\nhello\r\n")
            assert errors == {}
            return 250, text
        finally:
            await client.quit()

    _, text = asyncio.run(run())
    entry = smtp_server.store.queue.get(text.split()[-1])
    assert entry.envelope.auth_user == "alice@example"
    body = smtp_server.body(entry.tracking_id)
    assert b"\r\nDate: " in body and b"\r\nMessage-ID: <" in body   # added on submission


def test_wrong_password_is_refused_535(smtp_server: SmtpServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.submission_port, timeout=10) as client:
        client.starttls(context=client_tls())
        client.ehlo("client.test")
        code, text = client.docmd("AUTH", "PLAIN " + _plain("bob@example.com", "wrong"))
        assert (code, text[:5]) == (535, b"5.7.8")
        code, _ = client.docmd("AUTH", "PLAIN " + _plain("bob@example.com", PASSWORD))
        assert code == 235


def _plain(user: str, password: str) -> str:
    import base64
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def test_cram_md5_not_offered_without_recoverable_passwords(smtp_server: SmtpServer) -> None:
    smtp_server.set("messaging_manager.security.encrypt_passwords", False)
    with smtplib.SMTP(smtp_server.host, smtp_server.submission_port, timeout=10) as client:
        client.starttls(context=client_tls())
        client.ehlo("client.test")
        assert "CRAM-MD5" not in client.esmtp_features["auth"]
        code, _ = client.docmd("AUTH", "CRAM-MD5")
        assert code == 504


def test_submission_port_requires_auth(smtp_server: SmtpServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.submission_port, timeout=10) as client:
        client.starttls(context=client_tls())
        client.ehlo("client.test")
        code, text = client.mail("bob@example.com")
        assert (code, text[:5]) == (530, b"5.7.0")
        client.login("bob@example.com", PASSWORD)
        assert client.mail("bob@example.com")[0] == 250


def test_implicit_tls_on_smtps_port(smtp_server: SmtpServer) -> None:
    with smtplib.SMTP_SSL(smtp_server.host, smtp_server.smtps_port, timeout=10,
                          context=client_tls()) as client:
        client.ehlo("client.test")
        assert not client.has_extn("starttls")
        client.login("bob@example.com", PASSWORD)
        client.mail("bob@example.com")
        client.rcpt("far@remote.test")
        code, _ = client.data(MESSAGE)
        assert code == 250


def test_tls_handshake_garbage_does_not_stop_the_server(smtp_server: SmtpServer) -> None:
    with socket.create_connection((smtp_server.host, smtp_server.smtps_port), 5) as sock:
        sock.sendall(b"EHLO this is not TLS\r\n" * 50)
        sock.settimeout(5)

        try:
            while sock.recv(4096):
                pass
        except (ConnectionError, TimeoutError):
            pass
    with socket.create_connection((smtp_server.host, smtp_server.port), 5) as sock:
        sock.sendall(b"STARTTLS\r\n")
        sock.settimeout(5)
        replies = b""
        while replies.count(b"\r\n") < 2:
            replies += sock.recv(4096)
        greeting, reply = replies.split(b"\r\n")[:2]
        assert greeting.startswith(b"220 mail.test")
        assert reply.startswith(b"220 2.0.0")
        sock.sendall(b"this is not a TLS record\r\n" * 20)
        try:
            while sock.recv(4096):
                pass
        except (ConnectionError, TimeoutError):
            pass
    with smtplib.SMTP_SSL(smtp_server.host, smtp_server.smtps_port, timeout=10,
                          context=client_tls()) as client:
        assert client.ehlo("client.test")[0] == 250
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        assert client.noop()[0] == 250


def test_plaintext_after_starttls_is_discarded(smtp_server: SmtpServer) -> None:
    """RFC 3207 §4: commands pipelined after STARTTLS in plaintext must not run."""
    raw = socket.create_connection((smtp_server.host, smtp_server.port), 5)
    raw.settimeout(5)
    assert raw.recv(4096).startswith(b"220 ")
    raw.sendall(b"EHLO client.test\r\n")
    while not raw.recv(4096).rstrip().split(b"\r\n")[-1].startswith(b"250 "):
        pass
    raw.sendall(b"STARTTLS\r\nMAIL FROM:<injected@remote.test>\r\n")
    assert raw.recv(4096).startswith(b"220 2.0.0")
    tls = client_tls().wrap_socket(raw, server_hostname="mail.test")
    try:
        tls.sendall(b"RCPT TO:<bob@example.com>\r\n")
        assert tls.recv(4096).startswith(b"503")   # no MAIL was accepted
    finally:
        tls.close()


def test_server_certificate_is_the_data_directory_one(smtp_server: SmtpServer) -> None:
    with smtplib.SMTP_SSL(smtp_server.host, smtp_server.smtps_port, timeout=10,
                          context=client_tls()) as client:
        assert isinstance(client.sock, ssl.SSLSocket)
        der = client.sock.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der)
    assert pem.split()[2:5] == (smtp_server.home / "tls" / "cert.pem").read_text().split()[2:5]
