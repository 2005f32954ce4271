"""Mail from a real SMTP client to the mailboxes: routing, every mailbox feature, NDRs,
events, archive copies and tracking, through the running services."""

from __future__ import annotations

import datetime
import json
import smtplib
import stat
import subprocess
import time
from pathlib import Path

from tests.conftest import postroom_executable
from tests.connectors.smtp.e2e.conftest import ALICE_PASSWORD, client_tls
from tests.mailflow.conftest import MailSystem


def note(subject: str, body: str = "hello", extra: str = "") -> str:
    return (f"From: Carol <carol@remote.test>\r\nTo: someone\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@remote.test>\r\n{extra}\r\n{body}\r\n")


def submit_as_alice(system: MailSystem, recipients: list[str], message: str) -> str:
    port = system.services["smtp"].ports()["submission"]  # type: ignore[attr-defined]
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("alice.example.com")
        client.starttls(context=client_tls())
        client.ehlo("alice.example.com")
        client.login("alice@example.com", ALICE_PASSWORD)
        client.mail("alice@example.com")
        for recipient in recipients:
            assert client.rcpt(recipient)[0] == 250
        code, text = client.data(message.encode())
        assert code == 250, text
    return text.decode().split()[-1]


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def outgoing_recipients(system: MailSystem) -> list[str]:
    return [r for e in system.store.queue.list("SMTP.outgoing") for r in e.envelope.recipients]


def test_a_message_is_in_the_mailbox_within_a_second(mail_system: MailSystem) -> None:
    started = time.monotonic()
    tracking = mail_system.send("carol@remote.test", ["bob@example.com"], note("fast"))
    found = mail_system.wait_for_messages("bob", timeout=10)
    elapsed = time.monotonic() - started
    assert found[0]["Subject"] == "fast"
    assert elapsed < 1.0, f"delivered after {elapsed:.2f} s"
    files = list((mail_system.home / "messages").rglob("*.eml"))
    assert any(b"Subject: fast" in f.read_bytes() for f in files)   # a plain .eml file
    mail_system.idle()
    events = mail_system.store.tracking.find(tracking)
    steps = [(e.service, e.event) for e in events]
    assert ("SMTP", "received") in steps and ("MTA", "routed") in steps
    assert any(e.event == "delivered" and "bob" in e.detail for e in events)
    track = subprocess.run([*postroom_executable(), "--home", str(mail_system.home), "track",
                            tracking, "--json"], capture_output=True, text=True, timeout=60)
    assert track.returncode == 0, track.stderr
    shown = json.dumps(json.loads(track.stdout))
    assert "received" in shown and "routed" in shown and "delivered" in shown


def test_groups_and_catch_all(mail_system: MailSystem) -> None:
    d = mail_system.store.directory
    d.create_group("example", "staff")
    d.add_group_member("example", "staff", "[SF:example/bob]")
    d.add_group_member("example", "staff", "[SF:example/alice]")
    d.add_address("staff@example.com", "[SF:example/staff]")
    mail_system.send("carol@remote.test", ["staff@example.com"], note("to staff"))
    mail_system.send("carol@remote.test", ["whoever@catch.test"], note("caught"))
    assert [m["Subject"] for m in mail_system.wait_for_messages("alice")] == ["to staff"]
    bob = mail_system.wait_for_messages("bob", 2)
    assert sorted(m["Subject"] for m in bob) == ["caught", "to staff"]


def test_redirection_to_a_local_and_an_external_address(mail_system: MailSystem) -> None:
    d = mail_system.store.directory
    d.update_mailbox("example", "bob", options={
        "redirect.enabled": True,
        "redirect.addresses": ["alice@example.com", "dave@remote.test"]})
    mail_system.send("carol@remote.test", ["bob@example.com"], note("redirected"))
    assert mail_system.wait_for_messages("alice")[0]["Subject"] == "redirected"
    mail_system.wait_for(lambda: "[SMTP:dave@remote.test]" in outgoing_recipients(mail_system))
    mail_system.idle()
    assert mail_system.messages("bob") == []                   # no keep-copy


def test_the_autoresponder_answers_once_per_sender_and_never_a_list(
        mail_system: MailSystem) -> None:
    mail_system.store.directory.update_mailbox("example", "bob", options={
        "autoresponder.enabled": True, "autoresponder.subject": "Away",
        "autoresponder.body": "Back on Monday."})
    for n in range(2):
        mail_system.send("carol@remote.test", ["bob@example.com"], note(f"hello {n}"))
    mail_system.send("news@remote.test", ["bob@example.com"],
                     note("newsletter", extra="List-Id: <news.remote.test>\r\n"))
    mail_system.wait_for_messages("bob", 3)
    mail_system.idle()
    time.sleep(0.3)
    mail_system.idle()
    replies = mail_system.store.queue.list("SMTP.outgoing")
    assert [e.envelope.recipients for e in replies] == [["[SMTP:carol@remote.test]"]]
    assert replies[0].envelope.sender == ""                    # RFC 3834: null sender
    body = mail_system.store.queue.read_body(replies[0])
    assert b"Auto-Submitted: auto-replied" in body and b"Back on Monday." in body


def test_over_quota_bounces_with_the_template_ndr_to_the_local_sender(
        mail_system: MailSystem) -> None:
    mail_system.store.directory.update_mailbox("example", "bob", quota_bytes=1000)
    submit_as_alice(mail_system, ["bob@example.com"], note("too big", "x" * 5000))
    ndr = mail_system.wait_for_messages("alice")[0]
    assert ndr.get_content_type() == "multipart/report"
    assert ndr.get_param("report-type") == "delivery-status"
    text = ndr.get_payload()[0].get_payload(decode=True).decode()
    assert "bob@example.com" in text and "[ME_" not in text    # tokens substituted
    # Bob keeps only the notice that his mailbox is full (quota_notifications).
    assert all(m["Subject"] != "too big" for m in mail_system.messages("bob"))


def test_a_disabled_mailbox_bounces(mail_system: MailSystem) -> None:
    mail_system.store.directory.update_mailbox("example", "bob", options={"disabled": True})
    submit_as_alice(mail_system, ["bob@example.com"], note("to a disabled box"))
    ndr = mail_system.wait_for_messages("alice")[0]
    assert ndr.get_content_type() == "multipart/report"
    assert "bob@example.com" in ndr.get_payload()[0].get_payload(decode=True).decode()
    assert mail_system.messages("bob") == []


def test_delivery_events_run_and_pickup_events_never_block(mail_system: MailSystem,
                                                           tmp_path: Path) -> None:
    seen = tmp_path / "delivered.txt"
    event = script(tmp_path, "event.sh", f'echo "$@" >> {seen}')
    mail_system.store.directory.update_mailbox("example", "bob", options={
        "delivery_event.enabled": True, "delivery_event.program": str(event)})
    slow = script(tmp_path, "pickup.sh",
                  'grep -q SLOW "$1" && sleep 60\ngrep -q FAIL "$1" && exit 3\nexit 0')
    mail_system.set("mta.general.pickup_event_program", str(slow))
    mail_system.set("mta.general.pickup_event_enabled", True)
    mail_system.send("carol@remote.test", ["alice@example.com"], note("SLOW one"))
    time.sleep(0.2)
    mail_system.send("carol@remote.test", ["bob@example.com"], note("FAIL two"))
    mail_system.send("carol@remote.test", ["bob@example.com"], note("plain three"))
    started = time.monotonic()
    found = mail_system.wait_for_messages("bob", 2, timeout=10)
    assert time.monotonic() - started < 10
    assert sorted(m["Subject"] for m in found) == ["FAIL two", "plain three"]
    mail_system.wait_for(lambda: seen.exists() and len(seen.read_text().splitlines()) >= 2)
    assert ".eml" in seen.read_text()


def test_archive_copies(mail_system: MailSystem) -> None:
    mail_system.set("mta.archiving.postoffice", "example")
    mail_system.set("mta.archiving.mailbox", "alice")
    mail_system.set("mta.archiving.enabled", True)
    mail_system.send("carol@remote.test", ["bob@example.com"], note("archived"))
    mail_system.wait_for_messages("bob")

    def archived() -> list[str]:
        folders = mail_system.store.messages.list_folders("example", "alice")
        return [f.name for f in folders if f.name.startswith("Archive") and f.messages]

    folders = mail_system.wait_for(archived)
    today = datetime.date.today()
    assert any(str(today.year) in name or today.strftime("%y%m%d") in name
               or today.isoformat() in name for name in folders), folders
