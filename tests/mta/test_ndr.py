"""Non-delivery reports as the original sender receives them (manual 6.2.3.8, RFC 3464)."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from typing import Any

import pytest

from postroom.mta.ndr import FailedRecipient, bounce
from postroom.store import Store
from postroom.store.queue import Envelope, QueueEntry

ORIGINAL = (b"From: Alice <alice@remote.example>\r\n"
            b"To: Bob <bob@example.com>\r\n"
            b"Subject: =?utf-8?q?quarterly_r=C3=A9sum=C3=A9?=\r\n"
            b"Message-ID: <orig-1@remote.example>\r\n"
            b"X-Trace: keep-me\r\n"
            b"\r\n"
            b"The body text, which must not come back by default.\r\n")

UNKNOWN = FailedRecipient("[SF:example/bob]", "bob@example.com", "5.1.1",
                          "550 5.1.1 Mailbox unknown")


def original(store: Store, body: bytes = ORIGINAL, sender: str = "[SMTP:alice@remote.example]",
             auth_user: str | None = "alice", **extra: Any) -> QueueEntry:
    envelope = Envelope(sender, ["[SF:example/bob]"], auth_user=auth_user, extra=dict(extra))
    return store.queue.enqueue("SF.outgoing", envelope, body)


def ndr_entries(store: Store) -> list[QueueEntry]:
    return [e for e in store.queue.list("MTA.inbound") if e.envelope.extra.get("source") == "ndr"]


def parse(store: Store, tracking_id: str) -> EmailMessage:
    raw = store.queue.read_body(store.queue.get(tracking_id))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def text_of(msg: EmailMessage) -> str:
    """The human-readable first part, with plain newlines."""
    return str(next(iter(msg.iter_parts())).get_content()).replace("\r\n", "\n")


def status_blocks(msg: EmailMessage) -> list[dict[str, str]]:
    part = list(msg.iter_parts())[1]
    assert part.get_content_type() == "message/delivery-status"
    return [{k: str(v) for k, v in block.items()} for block in part.get_payload()]


def test_ndr_is_an_rfc3464_report_to_the_sender(store: Store) -> None:
    entry = original(store)
    ndr_id = bounce(store, entry, [UNKNOWN], service="SF")
    assert ndr_id is not None
    queued = store.queue.get(ndr_id)
    assert queued.queue == "MTA.inbound"
    assert queued.envelope.sender == ""
    assert queued.envelope.recipients == ["[SMTP:alice@remote.example]"]
    assert queued.envelope.extra == {"source": "ndr", "bounce_of": entry.tracking_id}

    msg = parse(store, ndr_id)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["To"] == "alice@remote.example"
    assert msg["From"].addresses[0].addr_spec == "MAILER-DAEMON@mail.test"
    assert msg["From"].addresses[0].display_name == "Mail Delivery System"
    assert msg["Subject"] == "Undeliverable: quarterly résumé"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Date"] and msg["Message-ID"]
    _, _, headers = msg.iter_parts()
    assert [p.get_content_type() for p in msg.iter_parts()] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"]

    body = text_of(msg)
    assert "bob@example.com: 550 5.1.1 Mailbox unknown" in body
    assert "postmaster@mail.test" in body          # [ME_POSTMASTERADDRESS]
    assert "alice@remote.example" in body          # [ME_TOADDRESS]
    assert msg["Message-ID"] in body               # [ME_MESSAGEID]
    assert "X-Trace: keep-me" in body              # [ME_MESSAGEHEADERS]
    assert "[ME_" not in body

    per_message, per_rcpt = status_blocks(msg)
    assert per_message["Reporting-MTA"] == "dns; mail.test"
    assert "Arrival-Date" in per_message
    assert per_rcpt["Final-Recipient"] == "rfc822; bob@example.com"
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"] == "5.1.1"
    assert per_rcpt["Diagnostic-Code"] == "smtp; 550 5.1.1 Mailbox unknown"

    returned = headers.get_payload(decode=True).decode()
    assert "Message-ID: <orig-1@remote.example>" in returned
    assert "X-Trace: keep-me" in returned
    assert "must not come back" not in returned


def test_tracking_records_the_bounce(store: Store) -> None:
    entry = original(store)
    ndr_id = bounce(store, entry, [UNKNOWN], service="SF")
    store.tracking.flush()
    events = store.tracking.find(entry.tracking_id)
    assert [(e.service, e.event, e.recipient, e.sender) for e in events] == [
        ("SF", "bounced", "bob@example.com", "alice@remote.example")]
    assert ndr_id in events[0].detail and "5.1.1" in events[0].detail


def test_remote_mta_orcpt_and_several_recipients(store: Store) -> None:
    entry = original(store, rcpt=[
        {"address": "carol@far.example", "target": "[SMTP:carol@far.example]",
         "notify": ["FAILURE", "DELAY"], "orcpt": "rfc822;Carol+2Bsales@far.example"},
        {"address": "dave@far.example", "target": "[SMTP:dave@far.example]",
         "notify": None, "orcpt": None}])
    failed = [FailedRecipient("[SMTP:carol@far.example]", "carol@far.example", "5.2.2",
                              "552 5.2.2 Over quota", remote_mta="mx.far.example"),
              FailedRecipient("[SMTP:dave@far.example]", "dave@far.example", "5.1.1",
                              "550 no such user\r\nInjected: header")]
    msg = parse(store, bounce(store, entry, failed, service="SMTP-out") or "")
    _, carol, dave = status_blocks(msg)
    assert carol["Original-Recipient"] == "rfc822; Carol+sales@far.example"
    assert carol["Remote-MTA"] == "dns; mx.far.example"
    assert carol["Status"] == "5.2.2"
    assert dave["Final-Recipient"] == "rfc822; dave@far.example"
    assert "Injected" not in dave        # no header injection from a remote reply
    assert "Remote-MTA" not in dave


@pytest.mark.parametrize("sender", ["", "<>"])
def test_no_ndr_to_the_null_sender(store: Store, sender: str) -> None:
    entry = original(store, sender=sender)
    assert bounce(store, entry, [UNKNOWN], service="SF") is None
    assert ndr_entries(store) == []
    store.tracking.flush()
    [event] = store.tracking.find(entry.tracking_id)
    assert event.event == "failed" and "null sender" in event.detail


def test_never_a_bounce_of_a_bounce(store: Store) -> None:
    first = original(store)
    ndr_id = bounce(store, first, [UNKNOWN], service="SF") or ""
    ndr = store.queue.get(ndr_id)
    # The NDR itself fails (e.g. the sender's domain has no mail server).
    assert bounce(store, ndr, [UNKNOWN], service="SMTP-out") is None
    # A delivery report sent with a real sender (broken remote MTA) is not bounced either.
    report = (b"From: MAILER-DAEMON@far.example\r\nTo: alice@remote.example\r\n"
              b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n"
              b"\r\n--x--\r\n")
    assert bounce(store, original(store, report), [UNKNOWN], service="SF") is None
    auto = (b"From: Mailer-Daemon <mailer-daemon@far.example>\r\n"
            b"Auto-Submitted: auto-replied\r\nSubject: failure\r\n\r\nx\r\n")
    assert bounce(store, original(store, auto), [UNKNOWN], service="SF") is None
    assert len(ndr_entries(store)) == 1


def test_settings_and_policy_suppress_ndrs(store: Store) -> None:
    entry = original(store)
    assert bounce(store, entry, [UNKNOWN], service="SF", policy="never") is None
    store.settings.set("smtp.delivery.disable_ndr", True)
    assert bounce(store, entry, [UNKNOWN], service="SF") is None
    # the post office connector's "enabled" does not follow the SMTP settings
    assert bounce(store, entry, [UNKNOWN], service="SF", policy="enabled") is not None
    store.settings.set("smtp.delivery.disable_ndr", False)
    anonymous = original(store, auth_user=None)
    assert bounce(store, anonymous, [UNKNOWN], service="SF") is None   # authenticated only
    store.settings.set("smtp.delivery.ndr_authenticated_only", False)
    assert bounce(store, anonymous, [UNKNOWN], service="SF") is not None
    with pytest.raises(ValueError, match="policy"):
        bounce(store, entry, [UNKNOWN], service="SF", policy="sometimes")


def test_drop_folder_messages_count_as_authenticated(store: Store) -> None:
    entry = original(store, auth_user=None, source="pickup")
    assert bounce(store, entry, [UNKNOWN], service="SF") is not None


def test_notify_never_and_notify_without_failure(store: Store) -> None:
    entry = original(store, rcpt=[
        {"address": "bob@example.com", "target": "[SF:example/bob]", "notify": ["NEVER"],
         "orcpt": None},
        {"address": "eve@example.com", "target": "[SF:example/eve]", "notify": ["SUCCESS"],
         "orcpt": None},
        {"address": "fay@example.com", "target": "[SF:example/fay]", "notify": ["FAILURE"],
         "orcpt": None}])
    eve = FailedRecipient("[SF:example/eve]", "eve@example.com", "5.1.1", "550 unknown")
    fay = FailedRecipient("[SF:example/fay]", "fay@example.com", "5.1.1", "550 unknown")
    assert bounce(store, entry, [UNKNOWN, eve], service="SF") is None
    msg = parse(store, bounce(store, entry, [UNKNOWN, eve, fay], service="SF") or "")
    finals = [b.get("Final-Recipient") for b in status_blocks(msg)[1:]]
    assert finals == ["rfc822; fay@example.com"]
    assert "bob@example.com: 550" not in text_of(msg)


def test_ret_full_returns_the_whole_message(store: Store) -> None:
    entry = original(store, ret="FULL", envid="QQ+2B1")
    msg = parse(store, bounce(store, entry, [UNKNOWN], service="SF") or "")
    third = list(msg.iter_parts())[2]
    assert third.get_content_type() == "message/rfc822"
    inner = third.get_content()
    assert inner["Message-ID"] == "<orig-1@remote.example>"
    assert "must not come back by default" in inner.get_content()
    assert status_blocks(msg)[0]["Original-Envelope-Id"] == "QQ+1"


def test_ret_full_of_a_large_message_returns_headers_only(store: Store) -> None:
    big = ORIGINAL + b"x" * 100 + b"\r\n" + (b"y" * 998 + b"\r\n") * 1100
    entry = original(store, big, ret="FULL")
    msg = parse(store, bounce(store, entry, [UNKNOWN], service="SF") or "")
    assert list(msg.iter_parts())[2].get_content_type() == "text/rfc822-headers"


def test_message_without_headers_and_with_nul_bytes(store: Store) -> None:
    entry = original(store, b"just text\x00 with a NUL\r\n\xff\xfe 8-bit garbage\r\n")
    msg = parse(store, bounce(store, entry, [UNKNOWN], service="SF") or "")
    assert msg["Subject"] == "Undeliverable:"
    headers = list(msg.iter_parts())[2]
    assert headers.get_content_type() == "text/rfc822-headers"
    assert headers.get_payload(decode=True).strip() == b""
    assert not msg.defects


def test_broken_8bit_headers_are_returned_safely(store: Store) -> None:
    body = (b"From: \xe9ve <eve@remote.example>\r\nSubject: caf\xe9\x00\r\n"
            b"X-Long: " + b"a" * 1500 + b"\r\n\r\nbody\r\n")
    entry = original(store, body)
    raw = store.queue.read_body(store.queue.get(bounce(store, entry, [UNKNOWN],
                                                       service="SF") or ""))
    assert b"\x00" not in raw
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    returned = list(msg.iter_parts())[2].get_payload(decode=True)
    assert b"X-Long: " + b"a" * 1500 in returned


def test_general_error_uses_smtp_ndr_template(store: Store) -> None:
    entry = original(store)
    general = FailedRecipient("[SMTP:bob@far.example]", "", "4.4.7",
                              "message expired after 30 hours")
    msg = parse(store, bounce(store, entry, [general], service="SMTP-out") or "")
    text = text_of(msg)
    assert "error while" in text and "transmitting" in text      # SMTP-NDR.TXT
    assert "message expired after 30 hours" in text
    assert status_blocks(msg)[1]["Final-Recipient"] == "rfc822; bob@far.example"


def test_admin_template_override_in_data_directory(store: Store) -> None:
    folder = store.home.root / "templates"
    folder.mkdir()
    (folder / "SMTP-NDR-FAILEDRECIPS.TXT").write_text(
        "Subject: Returned mail for [ME_TOADDRESS]\n\n"
        "Dear [ME_TOADDRESS], these failed:\n[ME_FAILEDRECIPIENTS]\n"
        "Ask [ME_POSTMASTERADDRESS]. [ME_UNKNOWN] stays.\n")
    msg = parse(store, bounce(store, original(store), [UNKNOWN], service="SF") or "")
    assert msg["Subject"] == "Returned mail for alice@remote.example"
    text = text_of(msg)
    assert text.startswith("Dear alice@remote.example, these failed:\n"
                           "bob@example.com: 550 5.1.1 Mailbox unknown")
    assert "[ME_UNKNOWN] stays." in text


def test_template_setting_wins_and_tokens_are_not_substituted_twice(store: Store) -> None:
    store.settings.set("smtp.delivery.ndr_template_failed_recipients",
                       "Failed: [ME_FAILEDRECIPIENTS] / [ME_DATE]")
    sneaky = FailedRecipient("[SF:example/bob]", "bob@example.com", "5.1.1",
                             "550 [ME_POSTMASTERADDRESS] unknown")
    msg = parse(store, bounce(store, original(store), [sneaky], service="SF") or "")
    text = text_of(msg)
    assert text.startswith("Failed: bob@example.com: 550 [ME_POSTMASTERADDRESS] unknown")
    assert re.search(r"/ \w{3}, \d{1,2} \w{3} \d{4} [\d:]{8} GMT$", text.strip())   # [ME_DATE]


def test_copy_of_every_ndr(store: Store) -> None:
    store.settings.set("smtp.delivery.ndr_copy_enabled", True)
    store.settings.set("smtp.delivery.ndr_copy_address", "audit@example.com")
    queued = store.queue.get(bounce(store, original(store), [UNKNOWN], service="SF") or "")
    assert queued.envelope.recipients == ["[SMTP:alice@remote.example]",
                                          "[SMTP:audit@example.com]"]


def test_notification_address_and_local_domain_name(store: Store) -> None:
    store.settings.set("smtp.general.local_domain_name", "mx.example.org")
    store.settings.set("smtp.general.notification_address", "help@example.org")
    msg = parse(store, bounce(store, original(store), [UNKNOWN], service="SF") or "")
    assert msg["From"].addresses[0].addr_spec == "help@example.org"
    assert status_blocks(msg)[0]["Reporting-MTA"] == "dns; mx.example.org"
    assert "help@example.org" in text_of(msg)


def test_nothing_failed_means_no_ndr(store: Store) -> None:
    assert bounce(store, original(store), [], service="SF") is None
    assert ndr_entries(store) == []


def test_post_office_template_of_a_local_sender(store: Store) -> None:
    store.directory.create_postoffice(
        "company", {"ndr.failed_recipients_template": "Company notice: [ME_FAILEDRECIPIENTS]"})
    store.directory.create_domain("company.example", "company")
    store.directory.create_mailbox("company", "alice", "Tr0ub4dor&3x")
    local = original(store, sender="[SMTP:alice@company.example]")
    msg = parse(store, bounce(store, local, [UNKNOWN], service="SF") or "")
    assert text_of(msg).startswith("Company notice: bob@example.com: 550 5.1.1")
    remote = parse(store, bounce(store, original(store), [UNKNOWN], service="SF") or "")
    assert not text_of(remote).startswith("Company notice")
