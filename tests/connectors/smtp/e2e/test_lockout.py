"""SMTP AUTH and POP3 share the account lockout (manual 5.8.2), counted per mailbox."""

from __future__ import annotations

import smtplib

import pytest

from postroom.auth.lockout import Lockout
from tests.connectors.smtp.e2e.conftest import PASSWORD, SmtpServer, client_tls


def _login(server: SmtpServer, password: str) -> int:
    with smtplib.SMTP(server.host, server.submission_port, timeout=10) as client:
        client.starttls(context=client_tls())
        try:
            client.login("bob@example.com", password)
        except smtplib.SMTPAuthenticationError as refused:
            return refused.smtp_code
    return 235


def test_failed_smtp_logins_lock_the_account_for_every_service(
        smtp_server: SmtpServer) -> None:
    smtp_server.set("localhost.policies.lockout_enabled", True)
    smtp_server.set("localhost.policies.lockout_failed_attempts", 5)
    assert _login(smtp_server, PASSWORD) == 235
    bob = smtp_server.store.directory.get_mailbox("example", "bob")
    # smtplib tries CRAM-MD5, PLAIN and LOGIN in turn: three failures per login().
    assert _login(smtp_server, "wrong-password") == 535
    rows = smtp_server.store.conn.execute(
        "SELECT client_ip FROM auth_failure WHERE mailbox_id=?", (bob.id,)).fetchall()
    assert [row[0] for row in rows] == ["127.0.0.1"] * 3   # with the client's address
    assert not Lockout(smtp_server.store).is_locked(bob.id)
    assert _login(smtp_server, "wrong-password") == 535
    assert _login(smtp_server, PASSWORD) == 535          # locked, even the right one
    assert Lockout(smtp_server.store).is_locked(bob.id)    # what POP3 and IMAP check


@pytest.fixture(autouse=True)
def _fast(smtp_server: SmtpServer) -> None:
    smtp_server.service.auth_failure_delay = 0.0
