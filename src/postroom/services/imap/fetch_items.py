"""FETCH data items (RFC 3501 §6.4.5, RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ):
the parser of what a client asks for.

``BODY[<section>]<<partial>>`` is kept as a :class:`FetchItem` whose ``section`` is the
normalised section text that the message model understands (``""``, ``HEADER``,
``1.2.TEXT``, ``HEADER.FIELDS (From To)``...) and which the response echoes. Macros ALL,
FAST and FULL expand here. Unknown items are refused with BAD.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from postroom.services.imap.arguments import ArgumentError, Reader

SIMPLE_ITEMS = frozenset({"FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE",
                          "BODYSTRUCTURE", "BODY", "RFC822", "RFC822.HEADER", "RFC822.TEXT",
                          "MODSEQ", "X-GM-MSGID"} - {"X-GM-MSGID"})
MACROS = {"ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
          "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
          "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY")}
_PART = re.compile(rb"[1-9]\d{0,8}(?:\.[1-9]\d{0,8})*")
_SECTION_WORDS = ("HEADER.FIELDS.NOT", "HEADER.FIELDS", "HEADER", "TEXT", "MIME")
_HEADER_NAME = re.compile(rb"[!-9;-~]+")


@dataclass(frozen=True)
class FetchItem:
    """One item: ``name`` is FLAGS, UID ... or BODY / BINARY / BINARY.SIZE with a section."""

    name: str
    section: str | None = None       # for BODY[...] / BINARY[...]
    partial: tuple[int, int] | None = None
    peek: bool = False

    def response_name(self) -> str:
        """The item name as the response carries it (no .PEEK, partial as origin only)."""
        if self.section is None:
            return self.name
        text = f"{self.name}[{self.section}]"
        if self.partial is not None:
            text += f"<{self.partial[0]}>"
        return text

    @property
    def sets_seen(self) -> bool:
        return (not self.peek and ((self.section is not None and self.name != "BINARY.SIZE")
                                   or self.name in ("RFC822", "RFC822.TEXT")))


_PARSED: dict[bytes, tuple[tuple[FetchItem, ...], int]] = {}
_PARSED_MAX = 256
_PARSED_TEXT = 512


def parse_fetch_items(r: Reader) -> list[FetchItem]:
    """The items of a FETCH. A client asks for the same items again and again (a
    message list's columns, a body): the items parsed from the rest of a command line
    are kept (items are immutable), keyed by those octets, and not parsed again."""
    rest = r.data[r.pos:r.pos + _PARSED_TEXT + 1]
    known = _PARSED.get(rest) if len(rest) <= _PARSED_TEXT else None
    if known is not None:
        r.pos += known[1]
        return list(known[0])
    start = r.pos
    items = _parse_fetch_items(r)
    if len(rest) <= _PARSED_TEXT:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[rest] = (tuple(items), r.pos - start)
    return items


def _parse_fetch_items(r: Reader) -> list[FetchItem]:
    if r.peek(b"("):
        return r.parens(_item, empty=False)
    word = r.data[r.pos:r.pos + 4].upper()
    if word in (b"ALL", b"FAST", b"FULL") or word[:3] == b"ALL":
        save = r.pos
        key = r.keyword()
        if key in MACROS:
            return [FetchItem(n) for n in MACROS[key]]
        r.pos = save
    return [_item(r)]


def _item(r: Reader) -> FetchItem:
    match = re.compile(rb"[A-Za-z0-9.]+").match(r.data, r.pos)
    if not match:
        raise ArgumentError(f"expected a FETCH item{r._where()}")
    name = match.group(0).decode("ascii").upper()
    r.pos = match.end()
    if name in ("BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE") and r.peek(b"["):
        peek = name.endswith(".PEEK")
        base = name.removesuffix(".PEEK")
        r.expect(b"[")
        section = _section(r, binary=base != "BODY")
        r.expect(b"]", "']'")
        partial = None
        if r.take(b"<"):
            if base == "BINARY.SIZE":
                raise ArgumentError("BINARY.SIZE takes no partial range")
            start = r.number("a partial origin")
            r.expect(b".", "'.'")
            partial = (start, r.nz_number("a partial length"))
            r.expect(b">", "'>'")
        return FetchItem(base, section, partial, peek)
    if name in MACROS:
        raise ArgumentError(f"{name} cannot be inside a list of FETCH items")
    if name not in SIMPLE_ITEMS:
        raise ArgumentError(f"unknown FETCH item {name}")
    return FetchItem(name)


def _section(r: Reader, *, binary: bool) -> str:
    part = ""
    match = _PART.match(r.data, r.pos)
    if match:
        part = match.group(0).decode("ascii")
        r.pos = match.end()
        if binary or not r.take(b"."):
            return part
    if binary:
        if part == "" and r.peek(b"]"):
            return ""
        raise ArgumentError("BINARY takes a part number only")
    if r.peek(b"]"):
        if part:
            raise ArgumentError("section ends with '.'")
        return ""
    for word in _SECTION_WORDS:
        if r.peek_ci(word.encode()):
            r.pos += len(word)
            break
    else:
        raise ArgumentError(f"unknown section{r._where()}")
    if word == "MIME" and not part:
        raise ArgumentError("MIME needs a part number")
    text = f"{part}.{word}" if part else word
    if word.startswith("HEADER.FIELDS"):
        r.sp()
        names = r.parens(_header_name, empty=False)
        text += " (" + " ".join(names) + ")"
    return text


def _header_name(r: Reader) -> str:
    if r.peek(b'"') or r.is_literal():
        value = r.string("a header name")
        if not _HEADER_NAME.fullmatch(value):
            raise ArgumentError("invalid header field name")
        return value.decode("ascii")
    return r.atom("a header name")
