"""The message and envelope as one remote server gets them.

Once per entry (:func:`prepare`): the footer of the sending post office (manual 5.2.5,
5.3.4; ``postroom.connectors.postoffice.footers`` with ``None`` as the recipient's
post office: remote recipients are always external), and what the message needs of
the peer: SMTPUTF8 (RFC 6531: the client said so, or an address or header is not
ASCII) and 8BITMIME (RFC 6152: ``BODY=8BITMIME`` was given or the body has 8-bit
bytes).

Per peer (:func:`for_peer`), after its EHLO:

* **SMTPUTF8 missing.** A message that really needs it (a non-ASCII local part, or
  UTF-8 header fields) is refused for this peer with 5.6.7 (RFC 6531 §3.2: no
  downgrade is defined that keeps such a message intact; RFC 6857's downgrade
  rewrites addresses and is not done). A message that was merely *flagged* SMTPUTF8
  but whose envelope and headers are ASCII (domains are sent as A-labels) goes out
  without the parameter.
* **8BITMIME missing.** Decision (the RFC 6152 §3 choice between converting and
  returning, as Postfix and Sendmail practise it): 8-bit MIME leaf parts are
  re-encoded as quoted-printable (base64 stays as it is), with the standard library's
  ``email`` package, so the message keeps its meaning. A message the parser cannot
  write back, or 8-bit bytes in the header block, is sent as is — practically every
  server accepts 8-bit data, and refusing the mail would help nobody. Conversion runs
  before DKIM signing, so the signature covers what the peer receives.
* **SIZE.** A peer that advertises ``SIZE n`` with ``n`` > 0 smaller than the
  message refuses it for good (5.3.4) without sending it.
* **DSN.** ``RET``/``ENVID`` on MAIL and ``NOTIFY``/``ORCPT`` on RCPT are passed on
  only to a peer that advertises DSN (RFC 3461 §4); otherwise a ``NOTIFY=SUCCESS``
  recipient gets a "relayed" notice from us instead.

DKIM (manual 5.4.4): ``postroom.connectors.smtp.outbound.dkim.sign_message(store,
message, sender_domain)`` signs mail from a hosted domain that has a key; when that
module is absent, mail goes out unsigned (logged once).

Untrusted input: the whole message and the DSN values (from a remote client); only
ASCII-checked values of the envelope reach the wire, as xtext where RFC 3461 says so.
"""

from __future__ import annotations

import logging
import quopri
import re
from dataclasses import dataclass, field
from email import message_from_bytes
from email.generator import BytesGenerator
from email.policy import compat32
from io import BytesIO
from typing import Any

from postroom.connectors.postoffice.footers import add_footer, footer_for
from postroom.mta.ndr import header_block, plain_address
from postroom.store.queue import QueueEntry

log = logging.getLogger("postroom.smtp.out")

try:  # written beside this module by the DKIM work; mail goes out unsigned without it
    from postroom.connectors.smtp.outbound.dkim import sign_message
except ImportError:  # pragma: no cover - depends on the tree
    sign_message = None

_XTEXT_OK = re.compile(r"[!-*,-<>-~]*")


class PeerRefusal(Exception):
    """This message cannot go to this peer (permanent): the NDR status and text."""

    def __init__(self, status: str, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text

    @property
    def reply(self) -> str:
        return f"554 {self.status} {self.text}"


@dataclass
class Prepared:
    """An entry's message, ready for any peer."""

    data: bytes
    eight_bit: bool
    needs_smtputf8: bool          # cannot be sent to a peer without SMTPUTF8
    flagged_smtputf8: bool        # the client asked for it (may not be needed)
    sender: str                   # reverse path as a plain address ("" = null sender)
    sender_domain: str
    _variants: dict[tuple[bool, bool], bytes] = field(default_factory=dict)


def prepare(store: Any, entry: QueueEntry, body: bytes) -> Prepared:
    """Footer and the needs of the message (see the module docstring)."""
    envelope = entry.envelope
    data = body
    footer = footer_for(store, envelope, None)
    if footer is not None:
        data = add_footer(data, footer) or data
    if not data.endswith(b"\n"):
        data += b"\r\n"
    sender = plain_address(envelope.sender)
    eight_bit = str(envelope.extra.get("body") or "").upper() == "8BITMIME" \
        or not data.isascii()
    recipients = [plain_address(r) for r in envelope.recipients]
    local_parts = [sender.rpartition("@")[0]] + [r.rpartition("@")[0] for r in recipients]
    headers_ascii = eight_bit is False or header_block(data[:1024 * 1024]).isascii()
    needs = not all(p.isascii() for p in local_parts) or not headers_ascii
    domain = sender.rpartition("@")[2].lower() if "@" in sender else ""
    return Prepared(data, eight_bit, needs, bool(envelope.extra.get("smtputf8")) or needs,
                    sender, domain)


async def for_peer(store: Any, prepared: Prepared, extensions: dict[str, str],
                   sign: Any) -> bytes:
    """The bytes this peer gets (converted and signed), or :class:`PeerRefusal`.

    ``sign`` runs the (blocking) DKIM signer: ``await sign(func, *args)``."""
    if prepared.needs_smtputf8 and "smtputf8" not in extensions:
        raise PeerRefusal("5.6.7", "The message needs SMTPUTF8 (non-ASCII addresses or "
                                   "headers) and the receiving server does not support it")
    size_limit = extensions.get("size", "")
    if size_limit.isdigit() and 0 < int(size_limit) < len(prepared.data):
        raise PeerRefusal("5.3.4", f"Message too big for the receiving server "
                                   f"({len(prepared.data)} > {size_limit} bytes)")
    convert = prepared.eight_bit and "8bitmime" not in extensions
    key = (convert, True)
    found = prepared._variants.get(key)
    if found is not None:
        return found
    data = to_seven_bit(prepared.data) if convert else prepared.data
    if sign_message is not None and prepared.sender_domain and store.settings.get("dkim.enabled"):
        try:
            data = await sign(sign_message, store, data, prepared.sender_domain)
        except Exception:
            log.exception("DKIM signing for %s failed: sent unsigned", prepared.sender_domain)
    prepared._variants[key] = data
    return data


def to_seven_bit(data: bytes) -> bytes:
    """8-bit MIME leaf parts as quoted-printable; the input unchanged if that fails."""
    try:
        message = message_from_bytes(data, policy=compat32)
        changed = False
        for part in message.walk():
            if part.is_multipart():
                continue
            raw = part.get_payload(decode=False)
            if not isinstance(raw, str):
                continue
            cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
            payload = part.get_payload(decode=True)
            if cte in ("base64", "quoted-printable") or not isinstance(payload, bytes) \
                    or payload.isascii():
                continue
            del part["Content-Transfer-Encoding"]
            part.set_payload(quopri.encodestring(payload.replace(b"\r\n", b"\n"))
                             .decode("ascii"))
            part["Content-Transfer-Encoding"] = "quoted-printable"
            changed = True
        if not changed:
            return data
        for part in message.walk():     # containers of converted parts are 7bit now
            if part.is_multipart() and str(part.get("Content-Transfer-Encoding", "")
                                           ).strip().lower() in ("8bit", "binary"):
                part.replace_header("Content-Transfer-Encoding", "7bit")
        out = BytesIO()
        BytesGenerator(out, mangle_from_=False, policy=compat32).flatten(message)
        result = out.getvalue().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        return result if result.isascii() or not header_block(result).isascii() else data
    except Exception:   # broken MIME: send as is (see the module docstring)
        log.warning("could not convert an 8-bit message to 7 bit: sent as is")
        return data


def xtext(value: str) -> str:
    """RFC 3461 §4: characters outside ``!``..``~``, ``+`` and ``=`` as ``+XX``."""
    if _XTEXT_OK.fullmatch(value):
        return value
    return "".join(c if "!" <= c <= "~" and c not in "+=" else f"+{ord(c):02X}"
                   for c in value)


def _clean(value: Any, limit: int = 100) -> str:
    text = str(value or "")
    return text if text.isascii() and text.isprintable() and " " not in text \
        and len(text) <= limit else ""


def mail_options(entry: QueueEntry, prepared: Prepared, data: bytes,
                 extensions: dict[str, str]) -> list[str]:
    options: list[str] = []
    if "size" in extensions:
        options.append(f"SIZE={len(data)}")
    if prepared.eight_bit and "8bitmime" in extensions and not data.isascii():
        options.append("BODY=8BITMIME")
    if prepared.flagged_smtputf8 and "smtputf8" in extensions:
        options.append("SMTPUTF8")
    if "dsn" in extensions:
        extra = entry.envelope.extra
        ret = str(extra.get("ret") or "").upper()
        if ret in ("FULL", "HDRS"):
            options.append(f"RET={ret}")
        envid = _clean(extra.get("envid"))
        if envid:
            options.append(f"ENVID={envid}")       # stored as the client sent it: xtext
    return options


def rcpt_info(entry: QueueEntry, recipient: str) -> dict[str, Any]:
    """The SMTP service's DSN data for one ``[SMTP:addr]`` recipient (may be empty)."""
    items = entry.envelope.extra.get("rcpt")
    if not isinstance(items, list):
        return {}
    plain = plain_address(recipient).lower()
    for item in items:
        if isinstance(item, dict) and (
                str(item.get("target") or "").lower() == recipient.lower()
                or plain_address(str(item.get("address") or "")).lower() == plain):
            return item
    return {}


def notify_of(info: dict[str, Any]) -> set[str]:
    notify = info.get("notify")
    if isinstance(notify, str):
        notify = re.split(r"[,\s]+", notify)
    return {str(n).upper() for n in notify or () if n}


def rcpt_options(entry: QueueEntry, recipient: str, extensions: dict[str, str]) -> list[str]:
    if "dsn" not in extensions:
        return []
    info = rcpt_info(entry, recipient)
    options = []
    notify = notify_of(info) & {"NEVER", "SUCCESS", "FAILURE", "DELAY"}
    if notify:
        options.append("NOTIFY=" + ("NEVER" if "NEVER" in notify else ",".join(
            n for n in ("SUCCESS", "FAILURE", "DELAY") if n in notify)))
    orcpt = _clean(info.get("orcpt"), 500)
    if orcpt and ";" in orcpt:
        options.append(f"ORCPT={orcpt}")
    return options


def wire_address(address: str, smtputf8: bool) -> str:
    """An address for MAIL/RCPT: the domain as A-labels unless SMTPUTF8 is in use."""
    if smtputf8 or address.isascii() or "@" not in address:
        return address
    local, _, domain = address.rpartition("@")
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return address
