"""Delay and success notices to the sender (RFC 3464 reports; RFC 3461 DSN requests).

Failure notices are NDRs (:func:`postroom.mta.ndr.bounce`, the manual's templates).
This module writes the two other kinds the outbound connector owes:

* **delayed** (manual 6.2.3.8 "Delay notifications"): some recipients could not be
  reached yet; the server keeps trying until the failed message lifetime ends.
  Sent per ``smtp.delivery.delay_notifications`` / ``delay_notification_after``
  (:mod:`.schedule`) to the recipients whose DSN ``NOTIFY`` asked for ``DELAY`` or
  gave no ``NOTIFY`` at all (RFC 3461 §4.1 leaves the default to us; like Postfix we
  treat it as ``FAILURE,DELAY``).
* **relayed** (RFC 3461 §4.1, ``NOTIFY=SUCCESS``): the message was handed to a server
  that does not speak DSN, so we tell the sender ourselves. A peer that advertises DSN
  got the ``NOTIFY`` parameter and reports final delivery itself; we send nothing.

Both carry ``Original-Envelope-Id`` (ENVID) and per recipient ``Original-Recipient``
(ORCPT), ``Final-Recipient``, ``Action``, ``Status``, ``Remote-MTA`` and
``Diagnostic-Code``; the third part holds the original's headers only (``RET`` asks
for the whole message in *failure* notices, RFC 3461 §4.3).

Never sent (backscatter, loops): to the null sender; about a report or bounce;
when ``smtp.delivery.disable_ndr`` is on; when ``smtp.delivery.ndr_authenticated_only``
is on and the sender did not authenticate (drop folder mail counts as authenticated).
Notices enter ``MTA.inbound`` with the null sender, so the MTA delivers them to a
local sender's mailbox or back out.

Untrusted input: remote replies and the original headers (control characters removed;
at most 1 MB of header block read).
"""

from __future__ import annotations

import email.utils
import quopri
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from postroom.connectors.smtp.outbound.message import notify_of, rcpt_info
from postroom.mta.ndr import header_block, is_report, plain_address, server_name
from postroom.store.queue import Envelope, QueueEntry

_TEXT = {
    "delayed": ("Delivery delayed: {subject}",
                "This is an automatic message from the mail delivery system.\r\n\r\n"
                "Your message has not been delivered yet to the recipients below. The server\r\n"
                "will keep trying until {until}; you need not send it again. You will be\r\n"
                "told if it finally cannot be delivered.\r\n\r\n{lines}\r\n"),
    "relayed": ("Delivery report: {subject}",
                "This is an automatic message from the mail delivery system.\r\n\r\n"
                "As you asked, this confirms that your message was handed on to the\r\n"
                "recipients' mail servers below. Those servers do not send delivery\r\n"
                "reports, so this is the last notice you will get for them.\r\n\r\n"
                "{lines}\r\n"),
}


@dataclass(frozen=True)
class NoticeRecipient:
    recipient: str          # [SMTP:addr]
    status: str             # 4.4.1 / 2.0.0
    diagnostic: str         # the remote reply or our error
    remote_mta: str | None


def suppressed(store: Any, entry: QueueEntry) -> bool:
    """No delay or success notice may go to this sender (see the module docstring)."""
    envelope = entry.envelope
    if not plain_address(envelope.sender) or envelope.extra.get("source") == "ndr":
        return True
    settings = store.settings
    if settings.get("smtp.delivery.disable_ndr"):
        return True
    return bool(settings.get("smtp.delivery.ndr_authenticated_only")
                and not envelope.auth_user and envelope.extra.get("source") != "pickup")


def wants(entry: QueueEntry, recipient: str, kind: str) -> bool:
    notify = notify_of(rcpt_info(entry, recipient))
    if "NEVER" in notify:
        return False
    if kind == "delayed":
        return not notify or "DELAY" in notify
    return "SUCCESS" in notify


def send_notice(store: Any, entry: QueueEntry, kind: str,
                recipients: Sequence[NoticeRecipient], *, until: float | None = None,
                now: float) -> str | None:
    """Queue a ``delayed`` or ``relayed`` notice; return its tracking id (None: none due)."""
    if not recipients or suppressed(store, entry):
        return None
    try:
        with store.queue.open_body(entry) as body:
            headers = header_block(body.read(1024 * 1024))
    except (OSError, ValueError):
        headers = b""
    parsed = BytesHeaderParser(policy=compat32).parsebytes(headers + b"\r\n")
    if is_report(parsed):
        return None
    sender = plain_address(entry.envelope.sender)
    hostname = server_name(store)
    notification = str(store.settings.get("smtp.general.notification_address") or "")
    from_address = notification or f"MAILER-DAEMON@{hostname}"
    subject_template, text_template = _TEXT[kind]
    subject = _ascii(str(parsed.get("Subject", "") or ""), 200)
    lines = "\r\n".join(f"  {plain_address(r.recipient)}: {_ascii(r.diagnostic, 300)}"
                        for r in recipients)
    when = email.utils.formatdate(until, localtime=False, usegmt=True) if until else "later"
    text = text_template.format(until=when, lines=lines)
    boundary = f"=_dsn_{secrets.token_hex(12)}"
    message_id = email.utils.make_msgid("dsn", domain=hostname)
    status = _status_part(hostname, entry, kind, recipients, now, until)
    head = (f"From: Mail Delivery System <{from_address}>\r\n"
            f"To: {sender}\r\n"
            f"Subject: {subject_template.format(subject=subject).strip()}\r\n"
            f"Date: {email.utils.formatdate(now, usegmt=True)}\r\n"
            f"Message-ID: {message_id}\r\n"
            "Auto-Submitted: auto-replied\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status;\r\n"
            f" boundary=\"{boundary}\"\r\n\r\n")
    parts = [b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + text.encode("ascii"),
             b"Content-Type: message/delivery-status\r\n\r\n" + status,
             _headers_part(headers)]
    out = [head.encode("utf-8"), b"This is a delivery status notification (RFC 3464).\r\n"]
    for part in parts:
        out.append(f"\r\n--{boundary}\r\n".encode())
        out.append(part)
    out.append(f"\r\n--{boundary}--\r\n".encode())
    envelope = Envelope(sender="", recipients=[f"[SMTP:{sender}]"],
                        extra={"source": "ndr", "notice_of": entry.tracking_id,
                               "notice": kind})
    return str(store.queue.enqueue("MTA.inbound", envelope, b"".join(out)).tracking_id)


def _ascii(text: str, limit: int) -> str:
    cleaned = "".join(c if " " <= c <= "~" else " " for c in text)
    return " ".join(cleaned.split())[:limit]


def _status_part(hostname: str, entry: QueueEntry, kind: str,
                 recipients: Sequence[NoticeRecipient], now: float,
                 until: float | None) -> bytes:
    first = [f"Reporting-MTA: dns; {_ascii(hostname, 255)}"]
    envid = entry.envelope.extra.get("envid")
    if envid:
        first.append(f"Original-Envelope-Id: {_ascii(_xtext_decode(str(envid)), 100)}")
    first.append(f"Arrival-Date: {email.utils.formatdate(entry.created_at, usegmt=True)}")
    blocks = [first]
    for r in recipients:
        info = rcpt_info(entry, r.recipient)
        block = []
        orcpt = str(info.get("orcpt") or "")
        kind_, _, value = orcpt.partition(";")
        if value:
            block.append(f"Original-Recipient: {_ascii(kind_, 20)}; "
                         f"{_ascii(_xtext_decode(value), 300)}")
        block.append(f"Final-Recipient: rfc822; {_ascii(plain_address(r.recipient), 300)}")
        block.append(f"Action: {kind}")
        block.append(f"Status: {r.status}")
        if r.remote_mta:
            block.append(f"Remote-MTA: dns; {_ascii(r.remote_mta, 255)}")
        if r.diagnostic:
            block.append(f"Diagnostic-Code: smtp; {_ascii(r.diagnostic, 500)}")
        block.append(f"Last-Attempt-Date: {email.utils.formatdate(now, usegmt=True)}")
        if kind == "delayed" and until:
            block.append(f"Will-Retry-Until: {email.utils.formatdate(until, usegmt=True)}")
        blocks.append(block)
    return ("\r\n\r\n".join("\r\n".join(b) for b in blocks) + "\r\n").encode("ascii")


def _headers_part(headers: bytes) -> bytes:
    if headers.isascii():
        return b"Content-Type: text/rfc822-headers\r\n\r\n" + headers
    return (b"Content-Type: text/rfc822-headers; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            + quopri.encodestring(headers.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n"))


def _xtext_decode(text: str) -> str:
    return re.sub(r"\+([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)
