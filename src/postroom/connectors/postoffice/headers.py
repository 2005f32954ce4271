"""What the post office connector reads from a message's header section.

* ``X-ME-Content: Deliver-To=Junk`` (set by the spam filters, manual 7.4.3) sends the
  message to the mailbox's "Junk E-mail" folder.
* Bulk and system messages (manual 5.5.6: "delivery failures, delivery reports and
  autoresponder replies", list mail) get no auto-reply and, by default, no delivery
  event: the null sender, ``Auto-Submitted`` other than ``no`` (RFC 3834 5), any
  ``List-*`` header (RFC 2369, RFC 2919), ``Precedence: bulk/junk/list``.
* Loop counters: ``Received`` lines and our redirection hop header.

Untrusted input: the header bytes are whatever the sender wrote (8-bit garbage, NUL
bytes, no header at all). They are decoded as Latin-1 (never fails) and read by
:func:`postroom.mta.header_fields.header_fields`, which finds the fields the standard
library's tolerant compat32 parser finds, at a fraction of its cost (every message
passes here); nothing here raises on bad input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.header import decode_header, make_header

from postroom.mta.header_fields import header_fields, header_text

REDIRECT_HEADER = "X-Postroom-Redirected"
_REDIRECT_KEY = REDIRECT_HEADER.lower()
_JUNK = re.compile(r"deliver-to\s*=\s*junk", re.IGNORECASE)
_HOPS = re.compile(r"\s*(\d{1,6})")
_BULK_PRECEDENCE = ("bulk", "junk", "list")


def _text(value: object) -> str:
    """A header value as readable text (RFC 2047 decoded where possible)."""
    raw = str(value or "")
    if "=?" not in raw:
        return raw          # nothing encoded: decoding would return it unchanged
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
        first: dict[str, str] = {}          # lower-case name -> first value
        junk = auto_submitted = list_mail = False
        received = hops = 0
        for name, value in header_fields(header_text(head)):
            key = name.lower()
            if key not in first:
                first[key] = value
            if key == "received":
                received += 1
            elif key == "x-me-content":
                junk = junk or _JUNK.search(value) is not None
            elif key == "auto-submitted":
                auto = value.split(";")[0].strip().lower()
                auto_submitted = auto_submitted or (bool(auto) and auto != "no")
            elif key == _REDIRECT_KEY:
                match = _HOPS.match(value)
                if match:
                    hops = max(hops, int(match.group(1)))
            elif key.startswith("list-"):
                list_mail = True
        content_type = first.get("content-type", "").strip().lower()
        return cls(
            junk=junk,
            auto_submitted=auto_submitted,
            list_mail=list_mail,
            bulk_precedence=first.get("precedence", "").strip().lower() in _BULK_PRECEDENCE,
            subject=_text(first.get("subject", "")).replace("\r", "").replace("\n", " ").strip(),
            message_id=first.get("message-id", "").strip(),
            references=" ".join(first.get("references", "").split()),
            received_count=received,
            redirect_hops=hops,
            signed=content_type.startswith(("multipart/signed", "application/pkcs7-mime",
                                            "application/x-pkcs7-mime")),
            from_address=first.get("from", "").strip(),
        )

    def is_bulk(self, sender: str) -> bool:
        """Bulk or system mail (manual 5.5.6): never auto-replied to."""
        return not sender or self.auto_submitted or self.list_mail or self.bulk_precedence
