"""Mailbox redirection (manual 5.5.5, 6.2.4.2) and "forward all email" (5.5.7).

A mailbox with ``redirect.enabled`` sends every message to ``redirect.addresses``
instead of (or, with ``redirect.keep_copy``, as well as) storing it. How the copy is
sent is the server's ``postoffice_connector.redirection_handling``:

* ``default`` — remail keeping the original headers and the original envelope sender;
* ``remail`` — the same message, but the envelope sender is the mailbox's own address
  (``Resent-From`` says so), which passes the target's SPF checks;
* ``as_attachment`` — a new message from the mailbox's address, with the original
  attached as ``message/rfc822`` (the original is never parsed, so broken MIME and
  any size pass unchanged);
* ``disabled`` — redirections are ignored and the message is stored.

``forward_all.enabled`` (5.5.7, "in the same way a mail client would") forwards a
copy to ``forward_all.target`` as a remail from the mailbox address; the message stays
in the mailbox unless ``forward_all.delete_after``. It is not a redirection, so
``redirection_handling = disabled`` does not stop it.

Copies go into ``MTA.inbound`` with recipients ``[SMTP:address]``; the MTA resolves
local targets again. **Loops** (A redirects to B, B to A): each copy carries
``X-Postroom-Redirected: N`` (hops so far). At :data:`REDIRECT_HOP_LIMIT` hops, or
with :data:`RECEIVED_LIMIT` ``Received`` lines, the copy is refused and the message is
stored in the mailbox instead (never lost, never bounced around). Targets that lead
back to the mailbox itself are dropped.

Untrusted input: the message (never parsed here beyond its header block); the
addresses are validated options.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from email.utils import formatdate, make_msgid

from postroom.connectors.postoffice.headers import REDIRECT_HEADER, MessageFacts
from postroom.connectors.postoffice.mailbox_address import is_own_address
from postroom.connectors.postoffice.message_file import MessageFile, temp_path
from postroom.store import Store
from postroom.store.directory import Mailbox
from postroom.store.queue import Envelope, QueueEntry

INBOUND = "MTA.inbound"
REDIRECT_HOP_LIMIT = 5
RECEIVED_LIMIT = 50


@dataclass(frozen=True)
class Redirect:
    reason: str              # "redirect" | "forward_all"
    targets: tuple[str, ...]
    mode: str                # "default" | "remail" | "as_attachment"
    keep_copy: bool


@dataclass(frozen=True)
class RedirectPlan:
    redirects: tuple[Redirect, ...]
    keep_local: bool
    refused: str = ""        # why configured redirections were not followed


def plan(store: Store, box: Mailbox, facts: MessageFacts) -> RedirectPlan:
    """What to do with a message for ``box``: copies to send, and whether to store it."""
    redirects: list[Redirect] = []
    handling = store.settings.get("postoffice_connector.redirection_handling")
    options = box.options
    if options.get("redirect.enabled") and handling != "disabled":
        targets = tuple(t for t in options.get("redirect.addresses") or ()
                        if not is_own_address(store, box, t))
        if targets:
            redirects.append(Redirect("redirect", targets, str(handling),
                                      bool(options.get("redirect.keep_copy"))))
    target = str(options.get("forward_all.target") or "")
    if options.get("forward_all.enabled") and target and not is_own_address(store, box, target):
        redirects.append(Redirect("forward_all", (target,), "remail",
                                  not options.get("forward_all.delete_after")))
    if not redirects:
        return RedirectPlan((), True)
    if facts.redirect_hops >= REDIRECT_HOP_LIMIT:
        return RedirectPlan((), True, f"redirection loop: {facts.redirect_hops} hops")
    if facts.received_count >= RECEIVED_LIMIT:
        return RedirectPlan((), True, f"mail loop: {facts.received_count} Received lines")
    return RedirectPlan(tuple(redirects), all(r.keep_copy for r in redirects))


def send(store: Store, entry: QueueEntry, box: Mailbox, redirect: Redirect,
         message: MessageFile, facts: MessageFacts, mailbox_address: str) -> str:
    """Enqueue one redirected copy into ``MTA.inbound``; return its tracking id."""
    hops = facts.redirect_hops + 1
    recipients = [f"[SMTP:{t}]" for t in redirect.targets]
    extra = {"source": "SF", "redirected_from": box.connector_address,
             "original_tracking_id": entry.tracking_id}
    if redirect.mode == "as_attachment":
        copy = _as_attachment(store, message, facts, mailbox_address, redirect.targets, hops)
        sender = f"[SMTP:{mailbox_address}]"
    else:
        prefix = f"{REDIRECT_HEADER}: {hops}\r\n"
        if redirect.mode == "remail":
            prefix = f"Resent-From: <{mailbox_address}>\r\n" \
                     f"Resent-Date: {formatdate(localtime=True)}\r\n" + prefix
            sender = f"[SMTP:{mailbox_address}]"
        else:
            sender = entry.envelope.sender
        copy = message.with_prefix(prefix.encode("ascii", "replace"), store.home.tmp)
    try:
        queued = store.queue.enqueue(INBOUND, Envelope(sender=sender, recipients=recipients,
                                                       extra=extra), copy.payload)
    finally:
        if copy is not message:
            copy.discard()
    return queued.tracking_id


def _as_attachment(store: Store, message: MessageFile, facts: MessageFacts,
                   mailbox_address: str, targets: tuple[str, ...], hops: int) -> MessageFile:
    """A new message carrying the original as message/rfc822, written as a stream."""
    boundary = f"=_postroom_{uuid.uuid4().hex}"
    subject = facts.subject or "(no subject)"
    safe_subject = subject.encode("ascii", "replace").decode("ascii")
    head = (
        f"From: <{mailbox_address}>\r\n"
        f"To: {', '.join(f'<{t}>' for t in targets)}\r\n"
        f"Subject: Fwd: {safe_subject}\r\n"
        f"Date: {formatdate(localtime=True)}\r\n"
        f"Message-ID: {make_msgid(domain=mailbox_address.rpartition('@')[2] or None)}\r\n"
        f"{REDIRECT_HEADER}: {hops}\r\n"
        "MIME-Version: 1.0\r\n"
        f"Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n"
        "\r\n"
        "This is a forwarded message in MIME format.\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"The attached message was sent to {mailbox_address} and redirected to you.\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/rfc822\r\n"
        "Content-Disposition: attachment; filename=\"forwarded.eml\"\r\n"
        "\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode("ascii")
    if message.in_memory:
        return MessageFile(data=head + message.read() + tail)
    path = temp_path(store.home.tmp, "attached")
    try:
        with open(path, "wb") as out, message.open() as src:
            out.write(head)
            while chunk := src.read(1024 * 1024):
                out.write(chunk)
            out.write(tail)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return MessageFile(path=path, owned=True)
