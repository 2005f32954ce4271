"""Mailbox names on the wire: modified UTF-7 (RFC 3501 §5.1.3) or UTF-8 (RFC 6855, 9051).

The store keeps folder names as Unicode text. An IMAP4rev1 client sends and receives
them in *modified UTF-7*: printable US-ASCII stands for itself except ``&``, written
``&-``; any other run of characters is ``&`` + the UTF-16BE text in base64 (with ``,``
for ``/`` and no padding) + ``-``. A client that enabled UTF8=ACCEPT (RFC 6855) or
IMAP4rev2 (RFC 9051) sends plain UTF-8 instead: ``utf8=True``.

Untrusted input: the names clients send. :func:`decode_mailbox` is strict, as RFC 3501
asks ("MUST NOT ... accept"), and raises ValueError naming the fault, so the server can
answer BAD/NO and change nothing: a bare ``&``, a shift never closed, characters
outside the base64 alphabet, an encoded printable ASCII character, leftover bits that
are not zero, two adjacent shifts that a correct encoder would have merged, unpaired
UTF-16 surrogates, 8-bit or control characters. UTF-8 names are refused if they hold
control characters (there is no way to show them in a folder list).
"""

from __future__ import annotations

import base64
import binascii
import re

_B64 = re.compile(r"[A-Za-z0-9+,]*\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x80-\x9f\ud800-\udfff]")


def encode_mailbox(name: str, utf8: bool) -> str:
    """The wire form of a Unicode folder name."""
    if utf8:
        return name
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            raw = "".join(run).encode("utf-16-be", "surrogatepass")
            out.append("&" + base64.b64encode(raw).decode("ascii").rstrip("=")
                       .replace("/", ",") + "-")
            run.clear()

    for ch in name:
        if "\x20" <= ch <= "\x7e":
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def decode_mailbox(name: str, utf8: bool) -> str:
    """The Unicode folder name a client sent; ValueError if it is not valid."""
    if utf8:
        if _CONTROL.search(name):
            raise ValueError("mailbox name contains control characters")
        return name
    out: list[str] = []
    i, n = 0, len(name)
    last_shift_end = -1
    while i < n:
        ch = name[i]
        if not "\x20" <= ch <= "\x7e":
            raise ValueError(f"mailbox name is not modified UTF-7: character {ch!r} "
                             "must be encoded")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = name.find("-", i + 1)
        if end < 0:
            raise ValueError("mailbox name is not modified UTF-7: '&' shift never ends")
        if end == i + 1:
            out.append("&")
            i = end + 1
            continue
        if last_shift_end == i:
            raise ValueError("mailbox name is not modified UTF-7: adjacent encoded runs")
        out.append(_decode_run(name[i + 1:end]))
        i = last_shift_end = end + 1
    return "".join(out)


def _decode_run(b64: str) -> str:
    if not _B64.match(b64):
        raise ValueError(f"mailbox name is not modified UTF-7: bad base64 in &{b64}-")
    padded = b64.replace(",", "/") + "=" * (-len(b64) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except binascii.Error:
        raise ValueError(f"mailbox name is not modified UTF-7: bad base64 &{b64}-") from None
    if len(raw) % 2:
        raise ValueError(f"mailbox name is not modified UTF-7: odd UTF-16 length in &{b64}-")
    if base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",") != b64:
        raise ValueError(f"mailbox name is not modified UTF-7: nonzero padding in &{b64}-")
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError:
        raise ValueError(f"mailbox name is not modified UTF-7: bad UTF-16 in &{b64}-") from None
    if _CONTROL.search(text):
        raise ValueError(f"mailbox name is not valid: &{b64}- encodes a control character")
    if any("\x20" <= c <= "\x7e" for c in text):
        raise ValueError(f"mailbox name is not modified UTF-7: &{b64}- encodes printable ASCII")
    return text
