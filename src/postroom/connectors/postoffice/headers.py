"""What the post office connector reads from a message's header section.

* ``X-ME-Content: Deliver-To=Junk`` (set by the spam filters, manual 7.4.3) sends the
  message to the mailbox's "Junk E-mail" folder.
* Bulk and system messages (manual 5.5.6: "delivery failures, delivery reports and
  autoresponder replies", list mail) get no auto-reply and, by default, no delivery
  event: the null sender, ``Auto-Submitted`` other than ``no`` (RFC 3834 5), any
  ``List-*`` header (RFC 2369, RFC 2919), ``Precedence: bulk/junk/list``.
* Loop counters: ``Received`` lines and our redirection hop header.

Untrusted input: the header bytes are whatever the sender wrote (8-bit garbage, NUL
bytes, no header at all). They are decoded as Latin-1 (never fails) and parsed with
the standard library's tolerant compat32 parser; nothing here raises on bad input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.parser import Parser
from email.policy import compat32

REDIRECT_HEADER = "X-Postroom-Redirected"
_JUNK = re.compile(r"deliver-to\s*=\s*junk", re.IGNORECASE)
_BULK_PRECEDENCE = ("bulk", "junk", "list")


def _parse(head: bytes) -> Message:
    text = head.replace(b"\x00", b" ").decode("latin-1")
    return Parser(policy=compat32).parsestr(text, headersonly=True)


def _text(value: object) -> str:
    """A header value as readable text (RFC 2047 decoded where possible)."""
    raw = str(value or "")
    try:
        return str(make_header(decode_header(raw)))
    except (ValueError, LookupError, UnicodeError, TypeError):
        return raw


@dataclass(frozen=True)
class MessageFacts:
    junk: bool
    auto_submitted: bool
    list_mail: bool
    bulk_precedence: bool
    subject: str
    message_id: str
    references: str
    received_count: int
    redirect_hops: int
    signed: bool
    from_address: str

    @classmethod
    def from_head(cls, head: bytes) -> MessageFacts:
        msg = _parse(head)
        auto = [str(v).split(";")[0].strip().lower() for v in msg.get_all("Auto-Submitted", [])]
        precedence = str(msg.get("Precedence", "")).strip().lower()
        hops = 0
        for value in msg.get_all(REDIRECT_HEADER, []):
            match = re.match(r"\s*(\d{1,6})", str(value))
            if match:
                hops = max(hops, int(match.group(1)))
        content_type = str(msg.get("Content-Type", "")).strip().lower()
        return cls(
            junk=any(_JUNK.search(str(v)) for v in msg.get_all("X-ME-Content", [])),
            auto_submitted=any(a and a != "no" for a in auto),
            list_mail=any(k.lower().startswith("list-") for k in msg),
            bulk_precedence=precedence in _BULK_PRECEDENCE,
            subject=_text(msg.get("Subject", "")).replace("\r", "").replace("\n", " ").strip(),
            message_id=str(msg.get("Message-ID", "")).strip(),
            references=" ".join(str(msg.get("References", "")).split()),
            received_count=len(msg.get_all("Received", [])),
            redirect_hops=hops,
            signed=content_type.startswith(("multipart/signed", "application/pkcs7-mime",
                                            "application/x-pkcs7-mime")),
            from_address=str(msg.get("From", "")).strip(),
        )

    def is_bulk(self, sender: str) -> bool:
        """Bulk or system mail (manual 5.5.6): never auto-replied to."""
        return not sender or self.auto_submitted or self.list_mail or self.bulk_precedence
