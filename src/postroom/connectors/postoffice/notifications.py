"""System notices of the post office connector: quota reached, post office usage.

Manual 6.2.4.2 ("Notifications when quota is reached": sender, sender and mailbox,
nobody) and 5.3.5 (post office usage threshold: notify a mailbox).

Loop safety (RFC 3834 2, RFC 5321 4.5.5): a notice to a remote sender goes into
``MTA.inbound`` with the **null sender** and ``Auto-Submitted: auto-generated``, so
it can be neither bounced nor auto-replied to. A notice to a local mailbox is
appended straight into its Inbox (``ignore_quota``: the point is to tell a full
mailbox that it is full) with a ``delivery_id``, so it never passes through the
connector again and is never itself the subject of a notice.

From address: ``smtp.general.notification_address``, else ``postmaster@`` the SMTP
local domain name (or this host's name).
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from postroom.store import Store
from postroom.store.datadir import host_name
from postroom.store.queue import Envelope

log = logging.getLogger("postroom.postoffice")

INBOUND = "MTA.inbound"


def notification_sender(store: Store) -> str:
    configured = str(store.settings.get("smtp.general.notification_address") or "")
    if configured:
        return configured
    domain = str(store.settings.get("smtp.general.local_domain_name") or "") or host_name()
    return f"postmaster@{domain}"


def build_notice(store: Store, to: str, subject: str, text: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Mail Delivery System <{notification_sender(store)}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=notification_sender(store).rpartition("@")[2])
    msg["Auto-Submitted"] = "auto-generated"
    msg["Precedence"] = "bulk"
    msg.set_content(text)
    return bytes(msg).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def send_to_remote(store: Store, address: str, subject: str, text: str,
                   kind: str) -> str | None:
    """Enqueue a notice to ``address`` with the null sender; return its tracking id."""
    if not address:
        return None
    data = build_notice(store, address, subject, text)
    envelope = Envelope(sender="", recipients=[f"[SMTP:{address}]"],
                        extra={"source": "SF", "notice": kind})
    try:
        return store.queue.enqueue(INBOUND, envelope, data).tracking_id
    except (OSError, ValueError) as exc:
        log.warning("%s notice to %s not queued: %s", kind, address, exc)
        return None


def deliver_to_mailbox(store: Store, postoffice: str, mailbox: str, subject: str, text: str,
                       delivery_id: str) -> bool:
    """Append a notice to a local mailbox's Inbox (over quota if need be)."""
    data = build_notice(store, f"{mailbox}@{postoffice}", subject, text)
    try:
        store.messages.append(postoffice, mailbox, "Inbox", data, delivery_id=delivery_id,
                              ignore_quota=True)
    except (OSError, ValueError) as exc:
        log.warning("notice for %s@%s not delivered: %s", mailbox, postoffice, exc)
        return False
    return True
