"""Non-delivery reports (manual 6.2.3.8; RFC 3464 report format, RFC 3461 DSN options).

When a connector gives up on a recipient (unknown or disabled mailbox, over quota,
permanent 5xx from a remote server, lifetime expired) it calls :func:`bounce`, which
tells the original sender in an RFC 3464 ``multipart/report`` message:

1. ``text/plain`` from the manual's templates ``SMTP-NDR-FAILEDRECIPS.TXT`` (some
   recipients were refused) or ``SMTP-NDR.TXT`` (transmission or system errors, no
   recipient address to name), with the manual's tokens ``[ME_POSTMASTERADDRESS]``,
   ``[ME_TOADDRESS]``, ``[ME_DATE]``, ``[ME_MESSAGEID]``, ``[ME_FAILEDRECIPIENTS]`` and
   ``[ME_MESSAGEHEADERS]`` substituted in one pass (a value that looks like a token is
   never substituted again);
2. ``message/delivery-status`` (Reporting-MTA, Arrival-Date; per recipient
   Original-Recipient from the DSN ORCPT, Final-Recipient, Action, Status,
   Remote-MTA, Diagnostic-Code);
3. ``text/rfc822-headers`` with the original header block, or the whole original
   as ``message/rfc822`` when the client asked ``RET=FULL`` and it is under 1 MB.

Templates, first found wins: the post office's ``ndr.*_template`` option (the post
office of the local sender), the server settings ``smtp.delivery.ndr_template_general``
/ ``ndr_template_failed_recipients``, a file of the same name in ``DIR/templates/``,
then the defaults shipped beside this module. A template may start with a header block
(``Subject: ...``, then a blank line): its ``Subject`` becomes the NDR's subject;
otherwise the subject is ``Undeliverable: <original subject>``. [ME_MESSAGEID] is the
NDR's own Message-ID and [ME_TOADDRESS] the address the NDR goes to (the original
sender), as in a template written as a whole message.

No NDR (backscatter and loops, RFC 3461 section 6.2, RFC 3834): to the null sender;
for a message that is itself a delivery report or an auto-submitted message from a
mailer-daemon; with ``policy="never"``; with ``policy="smtp_settings"`` when
``smtp.delivery.disable_ndr`` is on, or ``smtp.delivery.ndr_authenticated_only`` is on
and the sender did not authenticate (messages from the local drop folder count as
authenticated: only the administrator can write there); for a recipient whose DSN
NOTIFY excludes FAILURE (e.g. ``NOTIFY=NEVER``). Each failed recipient is tracked:
``bounced`` when an NDR went out, ``failed`` (with the reason) when none did; callers
record no event of their own for these recipients.

The NDR enters ``MTA.inbound`` with the null sender and ``[SMTP:sender]`` as recipient
(the MTA resolves local senders), so ``smtp.delivery.ndr_to_inbound_queue`` is in
effect always on; a copy goes to ``smtp.delivery.ndr_copy_address`` when enabled.

Untrusted input: the original message (headers may be absent, broken, 8-bit or hold NUL
bytes: only the header block is read, at most 1 MB, NULs removed) and remote servers'
replies (control characters are removed before they reach the report's fields).
Known limit: Arrival-Date is when the entry entered its current queue.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import quopri
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.header import Header, decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from importlib import resources
from pathlib import Path
from typing import Any

from postroom.net.hostname import store_hostname
from postroom.store.queue import Envelope, QueueEntry, QueueError
from postroom.store.tracking import TrackingEvent

log = logging.getLogger(__name__)

TEMPLATE_FAILED = "SMTP-NDR-FAILEDRECIPS.TXT"
TEMPLATE_GENERAL = "SMTP-NDR.TXT"
HEADER_LIMIT = 1024 * 1024          # read at most this much of the original's headers
FULL_LIMIT = 1024 * 1024            # RET=FULL returns the whole message below this size
TEXT_HEADERS_LIMIT = 64 * 1024      # [ME_MESSAGEHEADERS] in the text part
TEMPLATE_LIMIT = 256 * 1024
POLICIES = {"smtp_settings": "smtp_settings", "never": "never", "disabled": "never",
            "always": "always", "enabled": "always"}

_TOKEN = re.compile(r"\[ME_[A-Z]+\]")
_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class FailedRecipient:
    """One recipient the connector gave up on."""

    recipient: str                  # connector address: [SMTP:bob@x], [SF:po/mb]
    address: str                    # plain address shown to the sender ("" = general error)
    status: str                     # enhanced status code, e.g. 5.1.1
    diagnostic: str                 # e.g. "550 5.1.1 Mailbox unknown"
    remote_mta: str | None = None   # remote host that refused it, when known


@dataclass(frozen=True)
class _Original:
    header_bytes: bytes
    headers: Message
    subject: str


def bounce(store: Any, entry: QueueEntry, failed: Sequence[FailedRecipient], *,
           service: str, policy: str = "smtp_settings") -> str | None:
    """Send the original sender an NDR for ``failed``; return its tracking id, or None
    when no NDR is due (see the module docstring for when)."""
    if not failed:
        return None
    if policy not in POLICIES:
        raise ValueError(f"policy: expected one of {', '.join(POLICIES)}, got {policy!r}")
    sender = plain_address(entry.envelope.sender)
    reason = _suppressed(store, entry, sender, POLICIES[policy])
    original = _read_original(store, entry) if reason is None else None
    if original is not None and is_report(original.headers):
        reason = "the message is itself a bounce or an automatic report"
    notified = [f for f in failed if _wants_failure_notice(entry.envelope, f)]
    if reason is None and not notified:
        reason = "the sender asked for no failure notice (DSN NOTIFY)"
    ndr_id: str | None = None
    if reason is None:
        body = build_report(store, entry, notified, original)
        ndr_id = _enqueue(store, entry, sender, body)
    _track(store, entry, failed, notified, sender, service, ndr_id, reason)
    return ndr_id


@functools.lru_cache(maxsize=4096)
def plain_address(connector_address: str) -> str:
    """``[SMTP:bob@x]`` -> ``bob@x``; ``<bob@x>`` -> ``bob@x``; ``<>`` -> ``""``.

    Memoised (a pure function of a string): the delivery agent asks it eight times per
    message for the same few addresses."""
    text = (connector_address or "").strip()
    match = _CONNECTOR_ADDRESS.fullmatch(text)
    if match:
        text = match.group(1)
    return text.strip().strip("<>").strip()


_CONNECTOR_ADDRESS = re.compile(r"\[[A-Za-z]+:(.*)\]")


# --- when not to bounce ------------------------------------------------------------------

def _suppressed(store: Any, entry: QueueEntry, sender: str, policy: str) -> str | None:
    """Why no NDR may be sent (judged from the envelope and settings), or None."""
    if policy == "never":
        return "NDRs are disabled for this connector"
    if not sender:
        return "null sender"
    if entry.envelope.extra.get("source") == "ndr":
        return "the message is itself a bounce or an automatic report"
    if policy == "smtp_settings":
        settings = store.settings
        if settings.get("smtp.delivery.disable_ndr"):
            return "smtp.delivery.disable_ndr is on"
        if (settings.get("smtp.delivery.ndr_authenticated_only")
                and not entry.envelope.auth_user
                and entry.envelope.extra.get("source") != "pickup"):
            return "sender did not authenticate (smtp.delivery.ndr_authenticated_only)"
    return None


def is_report(headers: Message) -> bool:
    """A delivery report, or an auto-submitted message from a mailer-daemon (RFC 3834)."""
    ctype = str(headers.get("Content-Type", "")).lower()
    if "multipart/report" in ctype and "delivery-status" in ctype:
        return True
    auto = str(headers.get("Auto-Submitted", "no")).strip().lower()
    if auto and not auto.startswith("no"):
        sender = email.utils.parseaddr(str(headers.get("From", "")))[1].lower()
        if sender.partition("@")[0] in ("mailer-daemon", "postmaster", "mailer_daemon"):
            return True
    return False


def _rcpt_info(envelope: Envelope, failed: FailedRecipient) -> dict[str, Any]:
    """The SMTP service's per-recipient DSN data for ``failed`` (may be empty)."""
    items = envelope.extra.get("rcpt")
    if not isinstance(items, list):
        return {}
    wanted = {failed.recipient.lower(), failed.address.lower(),
              plain_address(failed.recipient).lower()} - {""}
    for item in items:
        if not isinstance(item, dict):
            continue
        keys = {str(item.get("target") or "").lower(), str(item.get("address") or "").lower(),
                plain_address(str(item.get("address") or "")).lower()}
        if wanted & keys:
            return item
    if len(items) == len(envelope.recipients) and failed.recipient in envelope.recipients:
        item = items[list(envelope.recipients).index(failed.recipient)]
        return item if isinstance(item, dict) else {}
    return {}


def _wants_failure_notice(envelope: Envelope, failed: FailedRecipient) -> bool:
    """RFC 3461 4.1: NOTIFY=NEVER, or a NOTIFY list without FAILURE, means no NDR."""
    notify = _rcpt_info(envelope, failed).get("notify")
    if isinstance(notify, str):
        notify = [n for n in re.split(r"[,\s]+", notify) if n]
    if not notify:
        return True
    return "FAILURE" in {str(n).upper() for n in notify}


# --- the original message -----------------------------------------------------------------

def _read_original(store: Any, entry: QueueEntry) -> _Original:
    """The original's header block (at most 1 MB), tolerating any bytes."""
    raw = b""
    try:
        with store.queue.open_body(entry) as body:
            raw = body.read(HEADER_LIMIT)
    except (QueueError, OSError) as exc:
        log.warning("NDR for %s without the original headers: %s", entry.tracking_id, exc)
    header_bytes = header_block(raw)
    headers = BytesHeaderParser(policy=compat32).parsebytes(header_bytes + b"\r\n")
    return _Original(header_bytes, headers, _decoded(headers.get("Subject")))


def header_block(raw: bytes) -> bytes:
    """The leading header lines of ``raw`` (CRLF-terminated, NULs removed); stops at the
    blank line or at the first line that is neither a header nor a continuation, so a
    message without headers yields ``b""``."""
    lines: list[bytes] = []
    raw = raw.replace(b"\0", b"")
    if raw.startswith(b"From "):        # an mbox separator line, not a header
        raw = raw.partition(b"\n")[2]
    for line in raw.splitlines():
        if _HEADER_LINE.match(line) or (lines and line[:1] in (b" ", b"\t")):
            lines.append(line)
        else:
            break
    return b"".join(line + b"\r\n" for line in lines)


def _decoded(value: Any) -> str:
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError):
        text = str(value)
    return _CONTROL.sub(" ", text).strip()[:200]


# --- building the report --------------------------------------------------------------------

def server_name(store: Any) -> str:
    """This server's name in reports (:func:`postroom.net.hostname.store_hostname`)."""
    return store_hostname(store)


def load_template(store: Any, name: str, sender: str) -> str:
    """The template text for ``name`` (see the module docstring for the order)."""
    po_key = "ndr.failed_recipients_template" if name == TEMPLATE_FAILED \
        else "ndr.general_template"
    postoffice = _sender_postoffice(store, sender)
    if postoffice is not None:
        text = str(postoffice.options.get(po_key) or "")
        if text.strip():
            return text
    key = "smtp.delivery.ndr_template_failed_recipients" if name == TEMPLATE_FAILED \
        else "smtp.delivery.ndr_template_general"
    text = str(store.settings.get(key) or "")
    if text.strip():
        return text
    override = Path(store.home.root) / "templates" / name
    try:
        if override.is_file():
            with override.open("rb") as fh:
                return fh.read(TEMPLATE_LIMIT).decode("utf-8", "replace")
    except OSError as exc:
        log.warning("ignoring NDR template %s: %s", override, exc)
    return resources.files("postroom.mta").joinpath("templates", name).read_text("utf-8")


def _sender_postoffice(store: Any, sender: str) -> Any:
    if "@" not in sender:
        return None
    try:
        mapped = store.directory.resolve(f"[SMTP:{sender}]")
        return store.directory.get_postoffice(mapped.postoffice) if mapped else None
    except ValueError:      # DirectoryError: not an address we know
        return None


def substitute(template: str, values: dict[str, str]) -> str:
    """Replace the manual's ``[ME_*]`` tokens in one pass; unknown tokens stay."""
    return _TOKEN.sub(lambda m: values.get(m.group(0), m.group(0)), template)


def _split_template(text: str) -> tuple[dict[str, str], str]:
    """A leading header block (all lines ``Name: value`` up to a blank line, naming
    From/To/Subject/Date/Message-ID) and the body."""
    text = text.replace("\r\n", "\n")
    head, sep, rest = text.partition("\n\n")
    fields: dict[str, str] = {}
    if sep:
        for line in head.split("\n"):
            match = re.fullmatch(r"([A-Za-z][A-Za-z-]*):[ \t]*(.*)", line)
            if not match:
                return {}, text
            fields[match.group(1).lower()] = match.group(2)
        if fields.keys() & {"from", "to", "subject", "date", "message-id"}:
            return fields, rest
    return {}, text


def _ascii(text: str, limit: int = 900) -> str:
    """A report field value: printable ASCII on one line."""
    text = _CONTROL.sub(" ", text).encode("ascii", "replace").decode("ascii")
    return text.strip()[:limit]


def _xtext_decode(text: str) -> str:
    return re.sub(r"\+([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


def build_report(store: Any, entry: QueueEntry, failed: Sequence[FailedRecipient],
                 original: _Original | None = None) -> bytes:
    """The NDR as bytes (CRLF), RFC 3464."""
    original = original or _read_original(store, entry)
    sender = plain_address(entry.envelope.sender)
    hostname = server_name(store)
    notification = str(store.settings.get("smtp.general.notification_address") or "")
    from_address = notification or f"MAILER-DAEMON@{hostname}"
    postmaster = notification or f"postmaster@{hostname}"
    message_id = email.utils.make_msgid("ndr", domain=hostname)
    date = email.utils.formatdate(usegmt=True)
    named = [f for f in failed if f.address]
    name = TEMPLATE_FAILED if named else TEMPLATE_GENERAL
    lines = [f"{f.address or plain_address(f.recipient) or 'all recipients'}: "
             f"{_ascii(f.diagnostic)} ({f.status})" for f in failed]
    header_text = original.header_bytes[:TEXT_HEADERS_LIMIT].decode("utf-8", "replace")
    if len(original.header_bytes) > TEXT_HEADERS_LIMIT:
        header_text += "\n[... headers truncated ...]"
    values = {"[ME_POSTMASTERADDRESS]": postmaster, "[ME_TOADDRESS]": sender,
              "[ME_DATE]": date, "[ME_MESSAGEID]": message_id,
              "[ME_FAILEDRECIPIENTS]": "\n".join(lines),
              "[ME_MESSAGEHEADERS]": header_text.replace("\r\n", "\n").rstrip("\n")}
    fields, text = _split_template(substitute(load_template(store, name, sender), values))
    subject = _ascii(fields.get("subject", ""), 300) or \
        f"Undeliverable: {original.subject}".strip()

    boundary = f"=_ndr_{secrets.token_hex(12)}"
    full = entry.envelope.extra.get("ret") == "FULL" and entry.body_length < FULL_LIMIT
    third = _returned_part(store, entry, original, full)
    while boundary.encode() in third:
        boundary = f"=_ndr_{secrets.token_hex(12)}"

    subject_value = subject if subject.isascii() else \
        Header(subject, "utf-8").encode(linesep="\r\n")
    fields_out = [
        ("From", email.utils.formataddr(("Mail Delivery System", from_address))),
        ("To", _CONTROL.sub("", sender)),
        ("Subject", subject_value),
        ("Date", date),
        ("Message-ID", message_id),
        ("Auto-Submitted", "auto-replied"),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/report; report-type=delivery-status;\r\n'
                         f' boundary="{boundary}"'),
    ]
    head = "".join(f"{name}: {value}\r\n" for name, value in fields_out).encode("utf-8")
    parts = [_text_part(text), _status_part(hostname, entry, failed), third]
    out = [head + b"\r\n",
           b"This is a delivery status notification (RFC 3464).\r\n"]
    for part in parts:
        out.append(f"\r\n--{boundary}\r\n".encode())
        out.append(part)
    out.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(out)


def _crlf(data: bytes) -> bytes:
    return b"\r\n".join(data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"))


def _text_part(text: str) -> bytes:
    data = _crlf(text.encode("utf-8")).rstrip(b"\r\n") + b"\r\n"
    if data.isascii() and all(len(line) <= 998 for line in data.split(b"\r\n")):
        return b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + data
    encoded = _crlf(quopri.encodestring(data.replace(b"\r\n", b"\n")))
    return (b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + encoded)


def _status_part(hostname: str, entry: QueueEntry, failed: Sequence[FailedRecipient]) -> bytes:
    blocks = [[f"Reporting-MTA: dns; {_ascii(hostname)}"]]
    envid = entry.envelope.extra.get("envid")
    if envid:
        blocks[0].append(f"Original-Envelope-Id: {_ascii(_xtext_decode(str(envid)))}")
    blocks[0].append(f"Arrival-Date: {email.utils.formatdate(entry.created_at, usegmt=True)}")
    for f in failed:
        info = _rcpt_info(entry.envelope, f)
        block: list[str] = []
        orcpt = str(info.get("orcpt") or "")
        if orcpt:
            kind, _, value = orcpt.partition(";")
            if value:
                block.append(f"Original-Recipient: {_ascii(kind)}; "
                             f"{_ascii(_xtext_decode(value))}")
        final = (f.address or plain_address(str(info.get("address") or ""))
                 or plain_address(f.recipient))
        kind = "rfc822" if "@" in final else "x-postroom"     # [SF:po/mb] -> po/mb
        block.append(f"Final-Recipient: {kind}; {_ascii(final)}")
        block.append("Action: failed")
        status = f.status if re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", f.status) else "5.0.0"
        block.append(f"Status: {status}")
        if f.remote_mta:
            block.append(f"Remote-MTA: dns; {_ascii(f.remote_mta)}")
        block.append(f"Diagnostic-Code: smtp; {_ascii(f.diagnostic)}")
        block.append(f"Last-Attempt-Date: {email.utils.formatdate(usegmt=True)}")
        blocks.append(block)
    text = "\r\n\r\n".join("\r\n".join(block) for block in blocks)
    return b"Content-Type: message/delivery-status\r\n\r\n" + text.encode("ascii") + b"\r\n"


def _returned_part(store: Any, entry: QueueEntry, original: _Original, full: bool) -> bytes:
    if full:
        try:
            data = _crlf(store.queue.read_body(entry).replace(b"\0", b""))
        except (QueueError, OSError):
            data = b""
        if data:
            cte = b"7bit" if data.isascii() else b"8bit"
            return (b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: " + cte +
                    b"\r\n\r\n" + data.rstrip(b"\r\n") + b"\r\n")
    data = original.header_bytes
    if data.isascii() and all(len(line) <= 998 for line in data.split(b"\r\n")):
        return b"Content-Type: text/rfc822-headers\r\n\r\n" + data
    encoded = _crlf(quopri.encodestring(data.replace(b"\r\n", b"\n")))
    return (b"Content-Type: text/rfc822-headers; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + encoded)


# --- sending and tracking ------------------------------------------------------------------

def _enqueue(store: Any, entry: QueueEntry, sender: str, body: bytes) -> str:
    recipients = [f"[SMTP:{sender}]"]
    settings = store.settings
    copy = str(settings.get("smtp.delivery.ndr_copy_address") or "").strip()
    if settings.get("smtp.delivery.ndr_copy_enabled") and copy \
            and copy.lower() != sender.lower():
        recipients.append(f"[SMTP:{copy}]")
    envelope = Envelope(sender="", recipients=recipients,
                        extra={"source": "ndr", "bounce_of": entry.tracking_id})
    return str(store.queue.enqueue("MTA.inbound", envelope, body).tracking_id)


def _track(store: Any, entry: QueueEntry, failed: Sequence[FailedRecipient],
           notified: Sequence[FailedRecipient], sender: str, service: str,
           ndr_id: str | None, reason: str | None) -> None:
    now = time.time()
    events = []
    for f in failed:
        who = f.address or plain_address(f.recipient)
        if ndr_id is not None and f in notified:
            event, detail = "bounced", f"{_ascii(f.diagnostic)}; NDR {ndr_id}"
        else:
            why = reason or "the sender asked for no failure notice (DSN NOTIFY)"
            event, detail = "failed", f"{_ascii(f.diagnostic)}; no NDR: {why}"
        events.append(TrackingEvent(entry.tracking_id, service, event, sender, who,
                                    detail, now))
    try:
        store.tracking.record(*events)
    except Exception:   # tracking must never stop mail
        log.exception("could not record tracking events for %s", entry.tracking_id)
