"""The drop folder and the three SMTP logs."""

from __future__ import annotations

import os
import smtplib

from tests.connectors.smtp.e2e.conftest import PASSWORD, SmtpServer, client_tls


def test_drop_folder_file_is_queued_and_removed(smtp_server: SmtpServer) -> None:
    pickup = smtp_server.home / "pickup"
    message = (b"From: Bob <bob@example.com>\r\nTo: alice@example.com, far@remote.test\r\n"
               b"Bcc: secret@example.com, hidden@catch.test\r\nSubject: dropped\r\n\r\nHi\r\n")
    temp = pickup / ".writing"
    temp.write_bytes(message)
    os.rename(temp, pickup / "one.eml")
    entries = smtp_server.wait_for(smtp_server.entries)
    assert not (pickup / "one.eml").exists()
    entry = entries[0]
    assert entry.envelope.sender == "[SMTP:bob@example.com]"
    # secret@example.com is unknown (dropped), the catch-all takes hidden@catch.test
    assert entry.envelope.recipients == ["[SF:example/alice]", "[SMTP:far@remote.test]",
                                         "[SF:example/bob]"]
    body = smtp_server.body(entry.tracking_id)
    assert b"Bcc:" not in body and b"secret@" not in body
    assert body.startswith(b"Received: from pickup by mail.test")
    assert b"\r\nMessage-ID: <" in body and b"\r\nDate: " in body
    assert body.endswith(b"Subject: dropped\r\n\r\nHi\r\n")


def test_drop_folder_file_without_recipients_goes_to_badmail(smtp_server: SmtpServer) -> None:
    (smtp_server.home / "pickup" / "bad.eml").write_bytes(b"Subject: nobody\r\n\r\nx\r\n")
    badmail = smtp_server.home / "badmail"
    smtp_server.wait_for(lambda: list(badmail.glob("pickup-*bad.eml")))
    assert smtp_server.entries() == []


def test_logs_record_the_session_with_secrets_masked(smtp_server: SmtpServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.submission_port, timeout=10) as client:
        client.starttls(context=client_tls())
        client.ehlo("logged.test")
        client.docmd("AUTH", "PLAIN AGJvYkBleGFtcGxlLmNvbQBDb3JyZWN0LUhvcnNlLTQyIQ==")
        client.mail("bob@example.com")
        client.rcpt("bob@example.com")
        code, text = client.data(b"Subject: logged\r\n\r\nx\r\n")
        assert code == 250
    tracking = text.decode().split()[-1]
    folder = smtp_server.home / "logs" / "SMTP"

    def read(pattern: str) -> str:
        files = list(folder.glob(pattern))
        return "".join(f.read_text() for f in files)

    activity = smtp_server.wait_for(lambda: read("SMTP-Activity-*.log"))
    debug = read("SMTP-Debug-*.log")
    w3c = read("ex*.log")
    for text_ in (activity, debug, w3c):
        assert "AGJvYkBleGFtcGxlLmNvbQBDb3JyZWN0LUhvcnNlLTQyIQ" not in text_
        assert PASSWORD not in text_
    assert "\tSMTP-IN\t" in activity and "\tMAIL\tFROM:<bob@example.com>\t250" in activity
    assert tracking in activity
    assert "AUTH PLAIN ****" in debug
    assert f"message {tracking} queued" in debug
    assert "#Fields: date time c-ip" in w3c and " RCPT " in w3c


def test_logs_can_be_switched_off_live(smtp_server: SmtpServer) -> None:
    smtp_server.set("smtp.logging.activity_enabled", False)
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.noop()
    folder = smtp_server.home / "logs" / "SMTP"
    assert not list(folder.glob("SMTP-Activity-*.log"))
    assert list(folder.glob("SMTP-Debug-*.log"))


def test_a_file_queued_before_a_crash_is_not_queued_again(smtp_server: SmtpServer) -> None:
    """The crash window: the message was committed, the file not yet removed."""
    from postroom.store.queue import Envelope

    pickup = smtp_server.home / "pickup"
    temp = pickup / ".writing"
    temp.write_bytes(b"From: bob@example.com\r\nTo: alice@example.com\r\n\r\nonce\r\n")
    st = temp.stat()
    key = f"pickup:again.eml:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"   # once_key()
    first = smtp_server.store.queue.enqueue_async(
        "MTA.inbound", Envelope(sender="", recipients=["[SF:example/alice]"]),
        temp.read_bytes(), once_key=key).result()
    os.rename(temp, pickup / "again.eml")        # the "restarted" server finds the file
    smtp_server.wait_for(lambda: not (pickup / "again.eml").exists())
    assert [e.tracking_id for e in smtp_server.entries()] == [first.tracking_id]
    assert not list((smtp_server.home / "badmail").glob("*.eml"))
