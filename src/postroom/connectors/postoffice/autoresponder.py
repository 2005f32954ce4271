"""Mailbox auto-responders (manual 5.5.6, 6.2.4.2; RFC 3834).

A mailbox with ``autoresponder.enabled`` answers its senders with
``autoresponder.subject`` / ``autoresponder.body`` (``autoresponder.html``: the body
is HTML), from its friendly name and address, with ``reply_to`` as Reply-To (5.5.4);
with ``autoresponder.time_window`` only between ``start_time`` and ``end_time``
(ISO 8601; without a UTC offset they are the server's local time).

Server switches: ``postoffice_connector.autoresponders_enabled`` (master switch) and
``autoresponder_frequency``: ``always`` or ``once_per_day`` — one reply per sender per
mailbox per (local) day, remembered in :class:`~.sent_marks.SentMarks` so that every
worker thread and process agrees.

Never a reply (RFC 3834 2, manual 5.5.6 "bulk or system generated"): to the null
sender; to mail with ``Auto-Submitted`` other than ``no``, any ``List-*`` header, or
``Precedence: bulk/junk/list``; to the mailbox's own addresses or the server's
notification address; to ``MAILER-DAEMON``, ``postmaster``, ``owner-*`` and
``*-request`` senders; from the ``postmaster`` mailbox (the manual forbids it).

The reply (RFC 3834 3): ``Auto-Submitted: auto-replied``, ``In-Reply-To`` and
``References`` from the original, sent with the **null sender** into ``MTA.inbound``
to ``[SMTP:original sender]`` — so it can trigger neither a bounce nor another
auto-reply.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from postroom.connectors.postoffice.headers import MessageFacts
from postroom.connectors.postoffice.mailbox_address import is_own_address
from postroom.connectors.postoffice.notifications import notification_sender
from postroom.connectors.postoffice.sent_marks import SentMarks
from postroom.store import Store
from postroom.store.directory import Mailbox
from postroom.store.queue import Envelope

INBOUND = "MTA.inbound"
MARK_PREFIX = "autoreply:"
_SYSTEM_LOCALS = ("mailer-daemon", "postmaster", "listserv", "majordomo", "noreply",
                  "no-reply")


def _parse_time(text: str, now: datetime) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None and now.tzinfo is not None:
        value = value.replace(tzinfo=now.tzinfo)
    elif value.tzinfo is not None and now.tzinfo is None:
        value = value.astimezone().replace(tzinfo=None)
    return value


def in_time_window(options: dict[str, object], now: datetime) -> bool:
    if not options.get("autoresponder.time_window"):
        return True
    start = _parse_time(str(options.get("autoresponder.start_time") or ""), now)
    end = _parse_time(str(options.get("autoresponder.end_time") or ""), now)
    return (start is None or now >= start) and (end is None or now <= end)


def reason_not_to_reply(store: Store, box: Mailbox, sender: str, facts: MessageFacts,
                        now: datetime) -> str | None:
    """Why no auto-reply goes out (None: reply), checked cheapest first."""
    if not box.options.get("autoresponder.enabled"):
        return "not enabled"
    if not store.settings.get("postoffice_connector.autoresponders_enabled"):
        return "auto-responders are switched off"
    if box.name.lower() == "postmaster":
        return "postmaster mailbox"
    if not sender:
        return "null sender"
    if facts.auto_submitted:
        return "auto-submitted message"
    if facts.list_mail:
        return "list message"
    if facts.bulk_precedence:
        return "bulk message"
    local = sender.rpartition("@")[0].lower()
    if local in _SYSTEM_LOCALS or local.startswith("owner-") or local.endswith("-request"):
        return "system sender"
    if sender.lower() == notification_sender(store).lower() or is_own_address(store, box,
                                                                              sender):
        return "own address"
    if not in_time_window(box.options, now):
        return "outside the time window"
    return None


def build_reply(box: Mailbox, sender: str, facts: MessageFacts, address: str,
                domain_hint: str) -> bytes:
    options = box.options
    msg = EmailMessage()
    name = str(options.get("friendly_name") or "")
    msg["From"] = formataddr((name, address)) if name else address
    msg["To"] = sender
    reply_to = str(options.get("reply_to") or "")
    if reply_to:
        msg["Reply-To"] = reply_to
    subject = str(options.get("autoresponder.subject") or "")
    if not subject:
        original = facts.subject
        subject = original if original.lower().startswith("re:") else f"Re: {original}"
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=domain_hint or None)
    if facts.message_id:
        msg["In-Reply-To"] = facts.message_id
        msg["References"] = f"{facts.references} {facts.message_id}".strip()
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    body = str(options.get("autoresponder.body") or "")
    if options.get("autoresponder.html"):
        msg.set_content(body, subtype="html")
    else:
        msg.set_content(body or "(automatic reply)")
    return bytes(msg).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def reply(store: Store, marks: SentMarks, box: Mailbox, sender: str, facts: MessageFacts,
          address: str, now: datetime | None = None) -> tuple[str | None, str]:
    """Send the auto-reply if one is due: (tracking id or None, reason)."""
    now = now or datetime.now().astimezone()
    reason = reason_not_to_reply(store, box, sender, facts, now)
    if reason is not None:
        return None, reason
    if store.settings.get("postoffice_connector.autoresponder_frequency") == "once_per_day":
        key = f"{MARK_PREFIX}{box.postoffice}/{box.name}:{sender.lower()}:{now:%Y-%m-%d}"
        if not marks.first(key):
            return None, "already answered today"
    data = build_reply(box, sender, facts, address, address.rpartition("@")[2])
    envelope = Envelope(sender="", recipients=[f"[SMTP:{sender}]"],
                        extra={"source": "SF", "autoreply_for": box.connector_address})
    queued = store.queue.enqueue(INBOUND, envelope, data)
    return queued.tracking_id, "sent"
