"""The header block of a message in transit, without re-reading the body.

Manual 6.2.3.7 "Add required headers for authenticated senders if needed": a
submitted message without ``Message-ID`` or ``Date`` (RFC 5322 §3.6, RFC 6409 §8.2/§8.3)
gets them from us. The drop folder (6.2.3.3) reads its envelope from ``From`` /
``Sender`` / ``To`` / ``Cc`` / ``Bcc`` and strips ``Bcc``. Both need only the header
block, so :class:`HeaderCollector` keeps the first bytes of the body, up to the blank
line that ends the header (or :data:`MAX_HEADER_BYTES`), while the body streams to disk.

Untrusted input: the whole header block. Field names are kept only when they are
printable ASCII without colon or space (RFC 5322 §2.2); values are decoded as
UTF-8 with replacement (RFC 6532 allows UTF-8) and unfolded; a block longer than the
limit is parsed up to the limit, which is enough for policy decisions (a message
whose ``Message-ID`` hides beyond 256 KiB of headers may get a second one).
"""

from __future__ import annotations

import email.utils
import os
import re

MAX_HEADER_BYTES = 256 * 1024
_FIELD_NAME = re.compile(rb"^[\x21-\x39\x3b-\x7e]+$")
_END = re.compile(rb"\r?\n\r?\n")

Fields = list[tuple[str, str]]


class HeaderCollector:
    """Feed the body's first chunks; :attr:`complete` once the header block ended."""

    __slots__ = ("_buf", "complete", "end")

    def __init__(self) -> None:
        self._buf = bytearray()
        self.complete = False
        self.end = -1
        """Offset just past the blank line, or -1 (no body separator seen)."""

    def feed(self, data: bytes) -> None:
        if self.complete:
            return
        start = max(len(self._buf) - 3, 0)
        self._buf += data[: MAX_HEADER_BYTES - len(self._buf) + 4]
        if self._buf[:2] == b"\r\n" or self._buf[:1] == b"\n":
            self.end = 2 if self._buf[:2] == b"\r\n" else 1
            self.complete = True
            return
        match = _END.search(self._buf, start)
        if match is not None:
            self.end = match.end()
            del self._buf[match.end():]
            self.complete = True
        elif len(self._buf) >= MAX_HEADER_BYTES:
            self.complete = True

    def fields(self) -> Fields:
        block = bytes(self._buf[: self.end] if self.end >= 0 else self._buf)
        return parse_fields(block)


def parse_fields(block: bytes) -> Fields:
    """``[(name, unfolded value)]`` in order; malformed lines are skipped."""
    fields: Fields = []
    name: bytes | None = None
    value: list[bytes] = []
    for line in block.splitlines():
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            if name is not None:
                value.append(line)
            continue
        if name is not None:
            fields.append(_field(name, value))
        head, colon, rest = line.partition(b":")
        head = head.rstrip(b" \t")
        if colon and _FIELD_NAME.match(head):
            name, value = head, [rest]
        else:
            name, value = None, []
    if name is not None:
        fields.append(_field(name, value))
    return fields


def _field(name: bytes, value: list[bytes]) -> tuple[str, str]:
    text = b"".join(value).decode("utf-8", "replace").strip()
    return name.decode("ascii"), text


def has_field(fields: Fields, name: str) -> bool:
    lower = name.lower()
    return any(n.lower() == lower for n, _ in fields)


def values(fields: Fields, *names: str) -> list[str]:
    wanted = {n.lower() for n in names}
    return [v for n, v in fields if n.lower() in wanted]


def new_message_id(tracking_id: str, hostname: str) -> str:
    return f"<{tracking_id}.{os.urandom(6).hex()}@{hostname}>"


def required_headers(missing_message_id: bool, missing_date: bool, tracking_id: str,
                     hostname: str) -> bytes:
    """The ``Message-ID`` / ``Date`` lines to add (RFC 5322 §3.6.1, §3.6.4)."""
    out = b""
    if missing_date:
        out += f"Date: {email.utils.formatdate(localtime=True)}\r\n".encode("ascii")
    if missing_message_id:
        out += f"Message-ID: {new_message_id(tracking_id, hostname)}\r\n".encode("ascii")
    return out


def fold(name: str, items: list[str]) -> bytes:
    """``Name: a, b, ...`` folded at about 78 columns (RFC 5322 §2.2.3)."""
    lines: list[str] = []
    current = f"{name}:"
    for index, item in enumerate(items):
        piece = f" {item}" + ("," if index < len(items) - 1 else "")
        if len(current) + len(piece) > 78 and current != f"{name}:":
            lines.append(current)
            current = "\t" + piece.lstrip()
        else:
            current += piece
    lines.append(current)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def strip_fields(block: bytes, names: set[str]) -> bytes:
    """The header block without the named fields (and their continuation lines)."""
    out: list[bytes] = []
    skipping = False
    lower = {n.lower().encode() for n in names}
    for line in block.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and line.strip():
            if not skipping:
                out.append(line)
            continue
        head = line.partition(b":")[0].rstrip(b" \t").lower()
        skipping = head in lower and b":" in line
        if not skipping:
            out.append(line)
    return b"".join(out)
