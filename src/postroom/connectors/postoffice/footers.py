"""Footers (disclaimers) on mail leaving a post office (manual 5.2.5, 5.3.4).

Manual: footers "can be attached to messages that are sent to external addresses from
a postoffice". ``messaging_manager.footers.scope`` picks which apply: ``disabled``,
``global`` (``messaging_manager.footers.global_footer``), ``postoffice`` (the sending
post office's ``footer.text`` / ``footer.html``), or ``postoffice_then_global``.

Which mail gets one (:func:`footer_for`): mail **from** a post office — the sender
authenticated as one of its mailboxes (``envelope.auth_user``), or the message was
made on this server by a local mailbox (drop folder, webmail: ``extra["source"]``)
with a sender address mapped to it — **to** an address outside that post office.
The post office connector asks with the recipient's post office (so mail between
two hosted organisations carries the sender's disclaimer, mail inside one does not);
the outbound SMTP connector asks with ``None`` (remote recipients are always
external). Unauthenticated mail that merely claims a local sender gets nothing: a
disclaimer must not lend credibility to a forgery.

How (:func:`add_footer`): appended to the message's body text — the first
``text/plain`` and the first ``text/html`` part that are not attachments (both parts
of a ``multipart/alternative``), HTML before ``</body>``. Signed or encrypted mail
(``multipart/signed``, PKCS#7) is left alone: a footer would break the signature.
Known limits: messages over :data:`MAX_FOOTER_MESSAGE` bytes are left alone (the
message would be parsed whole in memory); broken MIME that the parser cannot
re-serialise is delivered unchanged.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass
from email import message_from_bytes
from email.charset import QP, Charset
from email.generator import BytesGenerator
from email.message import Message
from email.policy import compat32
from io import BytesIO

from postroom.store import Store
from postroom.store.directory import DirectoryError
from postroom.store.queue import Envelope

log = logging.getLogger("postroom.postoffice")

MAX_FOOTER_MESSAGE = 32 * 1024 * 1024
_LOCAL_SOURCES = ("pickup", "webmail")


@dataclass(frozen=True)
class Footer:
    text: str
    html: str       # the HTML form ("" = made from ``text``)

    def html_form(self) -> str:
        if self.html:
            return self.html
        return "<br>\n".join(html.escape(line) for line in self.text.splitlines())


def sender_postoffice(store: Store, envelope: Envelope) -> str | None:
    """The post office a message comes from, or None (see the module docstring)."""
    if envelope.auth_user:
        box = store.directory.find_login(envelope.auth_user)
        return box.postoffice if box is not None else None
    if envelope.extra.get("source") in _LOCAL_SOURCES and envelope.sender:
        address = store.directory.resolve(envelope.sender)
        if address is not None and address.target.startswith("[SF:"):
            return address.postoffice
    return None


def footer_for(store: Store, envelope: Envelope, recipient_postoffice: str | None,
               ) -> Footer | None:
    """The footer a message to a recipient of ``recipient_postoffice`` (None: remote)
    gets, or None."""
    scope = store.settings.get("messaging_manager.footers.scope")
    if scope == "disabled":
        return None
    try:
        origin = sender_postoffice(store, envelope)
    except (DirectoryError, ValueError):
        return None
    if origin is None or (recipient_postoffice is not None
                          and origin.lower() == recipient_postoffice.lower()):
        return None
    texts: list[str] = []
    htmls: list[str] = []
    if scope in ("postoffice", "postoffice_then_global"):
        try:
            options = store.directory.get_postoffice(origin).options
        except DirectoryError:
            options = {}
        text = str(options.get("footer.text") or "")
        if text or options.get("footer.html"):
            texts.append(text)
            htmls.append(str(options.get("footer.html") or "") or Footer(text, "").html_form())
    if scope in ("global", "postoffice_then_global"):
        text = str(store.settings.get("messaging_manager.footers.global_footer") or "")
        if text:
            texts.append(text)
            htmls.append(Footer(text, "").html_form())
    if not texts:
        return None
    return Footer("\n\n".join(t for t in texts if t), "\n<br>\n".join(htmls))


def _body_parts(msg: Message) -> tuple[Message | None, Message | None]:
    """The first inline text/plain and text/html parts, outside attached messages."""
    plain = rich = None
    stack = [msg]
    while stack:
        part = stack.pop(0)
        ctype = part.get_content_type()
        if part.is_multipart():
            if ctype == "multipart/signed" or ctype == "multipart/encrypted":
                raise _Untouchable(ctype)
            stack[0:0] = list(part.get_payload())      # depth first, in order
            continue
        if ctype in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
            raise _Untouchable(ctype)
        if str(part.get("Content-Disposition", "")).strip().lower().startswith("attachment"):
            continue
        if ctype == "text/plain" and plain is None:
            plain = part
        elif ctype == "text/html" and rich is None:
            rich = part
    return plain, rich


class _Untouchable(Exception):
    pass


def _set_text(part: Message, text: str, charset: str) -> None:
    try:
        text.encode(charset)
    except (UnicodeError, LookupError):
        charset = "utf-8"
    cs = Charset(charset)
    if cs.body_encoding is not None and charset.lower() not in ("us-ascii", "ascii"):
        cs.body_encoding = QP
    had_version = "MIME-Version" in part
    del part["Content-Transfer-Encoding"]
    part.set_payload(text, cs)
    if not had_version:            # set_payload adds one; a body part needs none
        del part["MIME-Version"]


def _decoded(part: Message) -> tuple[str, str]:
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        raise _Untouchable("no payload")
    charset = part.get_content_charset() or "us-ascii"
    try:
        return raw.decode(charset), charset
    except (UnicodeError, LookupError):
        return raw.decode("latin-1"), "utf-8"


def add_footer(data: bytes, footer: Footer) -> bytes | None:
    """``data`` with ``footer`` appended to its body text; None = leave it unchanged."""
    if len(data) > MAX_FOOTER_MESSAGE:
        return None
    try:
        msg = message_from_bytes(data, policy=compat32)
        if not msg.keys():
            return None         # no header at all: not a message we can safely rewrite
        plain, rich = _body_parts(msg)
        if plain is None and rich is None:
            return None
        if plain is not None and footer.text:
            text, charset = _decoded(plain)
            newline = "\r\n" if "\r\n" in text else "\n"
            sep = "" if text.endswith(("\n", "\r")) or not text else newline
            body = footer.text.replace("\r\n", "\n").replace("\n", newline)
            _set_text(plain, f"{text}{sep}{newline}{body}{newline}", charset)
        if rich is not None:
            text, charset = _decoded(rich)
            block = f"\n<div class=\"postroom-footer\">{footer.html_form()}</div>\n"
            ends = list(re.finditer(r"</body\s*>", text, re.IGNORECASE))
            cut = ends[-1].start() if ends else len(text)
            text = text[:cut] + block + text[cut:]
            _set_text(rich, text, charset)
        out = BytesIO()
        BytesGenerator(out, mangle_from_=False, policy=compat32.clone(linesep="\r\n")
                       ).flatten(msg)
        return out.getvalue()
    except _Untouchable:
        return None
    except Exception as exc:   # broken MIME of any kind: deliver unchanged
        log.debug("footer not added: %s: %s", type(exc).__name__, exc)
        return None
