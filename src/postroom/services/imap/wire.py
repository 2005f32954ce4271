"""How IMAP responses are written (RFC 3501 §7, RFC 9051 §7): status lines, strings.

The server decides what to say; these functions only turn values into the bytes of
the formal syntax, so no command handler hand-builds quoting. A string is sent
quoted when it is short and holds only quotable text, else as a literal (RFC 3501
§4.3: quoted strings cannot carry CR, LF, NUL or 8-bit bytes outside UTF-8 mode).

Untrusted input echoed back (mailbox names, header text) always passes through
:func:`string` or :func:`astring`, so a client cannot inject response lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_ATOM = re.compile(rb"[!#$&'+-Z^-z|}~]+\Z")   # ATOM-CHAR without ] [ % * " \ ( ) { SP CTL
_QUOTABLE = re.compile(rb"[^\x00\r\n\x80-\xff]*\Z")
MAX_QUOTED = 1024


def string(value: str | bytes | None) -> bytes:
    """``nstring``: NIL, a quoted string or a literal."""
    if value is None:
        return b"NIL"
    data = value.encode("utf-8") if isinstance(value, str) else value
    if len(data) <= MAX_QUOTED and _QUOTABLE.match(data):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(data) + data


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def astring(value: str | bytes) -> bytes:
    """An atom when the text allows it, else a string (mailbox names, ID values)."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    if data and _ATOM.match(data) and data.upper() != b"NIL":
        return data
    return string(data)


def paren(items: Iterable[bytes]) -> bytes:
    return b"(" + b" ".join(items) + b")"


def tagged(tag: str, status: str, text: str, code: str | None = None) -> bytes:
    """``tag OK|NO|BAD [code] text``."""
    middle = f"[{code}] " if code else ""
    return f"{tag} {status} {middle}{_one_line(text)}\r\n".encode()


def untagged(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return b"* " + data + b"\r\n"


def status(status: str, text: str, code: str | None = None) -> bytes:
    """An untagged status response: ``* OK [code] text``."""
    return tagged("*", status, text, code)


def continuation(text: str = "") -> bytes:
    return f"+ {_one_line(text)}\r\n".encode() if text else b"+ \r\n"


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def flag_list(flags: Iterable[str]) -> bytes:
    return b"(" + " ".join(flags).encode() + b")"
