"""Reading command arguments (RFC 3501 §9 / RFC 9051 §9 formal syntax), for the parsers.

:class:`Reader` walks one whole command (literals inline, as :mod:`.framing` leaves
them) and offers the grammar's pieces: atoms, quoted strings, literals (``{n}``,
``{n+}``, ``~{n}``), astrings, parenthesised lists, flags, sequence sets, dates.
Anything else raises :class:`ArgumentError` with a message naming what was expected;
the parser turns it into a tagged ``BAD``.

Untrusted input: everything. Nesting depth of lists is capped (:data:`MAX_DEPTH`) so a
client cannot exhaust the stack; numbers are bounded to 63 bits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
MAX_DEPTH = 32
_ATOM = re.compile(rb"[^\x00-\x20\x7f-\xff(){%*\"\\\]]+")
_ASTRING_ATOM = re.compile(rb"[^\x00-\x20\x7f-\xff(){%*\"\\]+")
_LIST_MAILBOX = re.compile(rb"[^\x00-\x20\x7f-\xff(){\"\\]+")
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_NUMBER = re.compile(rb"\d{1,19}")
_LITERAL = re.compile(rb"~?\{(\d{1,20})\+?\}\r\n")
_SPOOLED = re.compile(rb"\x00(\d{1,6})\x00")
_SEQ_SET = re.compile(rb"(?:\$|(?:\d+|\*)(?::(?:\d+|\*))?(?:,(?:\d+|\*)(?::(?:\d+|\*))?)*)"
                      rb"(?=[ )]|\Z)")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DATE = re.compile(rb"(\d{1,2})-([A-Za-z]{3})-(\d{4})")
_DATE_TIME = re.compile(rb"\"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) "
                        rb"([+-])(\d\d)(\d\d)\"")


class ArgumentError(ValueError):
    """The arguments do not follow the grammar; ``code`` is an optional response code."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


class Reader:
    """A cursor over one command's bytes."""

    def __init__(self, data: bytes, pos: int = 0,
                 spooled: Sequence[Path] = ()) -> None:
        self.data = data
        self.pos = pos
        self.depth = 0
        self.spooled = spooled      # APPEND literals the framing wrote to files

    # -- basics ---------------------------------------------------------------------------

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self, text: bytes) -> bool:
        return self.data.startswith(text, self.pos)

    def peek_ci(self, text: bytes) -> bool:
        return self.data[self.pos:self.pos + len(text)].upper() == text

    def take(self, text: bytes) -> bool:
        if self.data.startswith(text, self.pos):
            self.pos += len(text)
            return True
        return False

    def expect(self, text: bytes, what: str | None = None) -> None:
        if not self.take(text):
            raise ArgumentError(f"expected {what or repr(text.decode())}{self._where()}")

    def sp(self) -> None:
        self.expect(b" ", "a space")

    def end(self) -> None:
        if not self.at_end():
            raise ArgumentError(f"unexpected text{self._where()}")

    def _where(self) -> str:
        if self.at_end():
            return " at end of command"
        snippet = self.data[self.pos:self.pos + 20].decode("utf-8", "replace")
        return f" at {snippet!r}"

    def _match(self, pattern: re.Pattern[bytes], what: str) -> bytes:
        match = pattern.match(self.data, self.pos)
        if not match or match.end() == self.pos:
            raise ArgumentError(f"expected {what}{self._where()}")
        self.pos = match.end()
        return match.group(0)

    # -- grammar pieces -------------------------------------------------------------------

    def atom(self, what: str = "an atom") -> str:
        return self._match(_ATOM, what).decode("ascii")

    def keyword(self) -> str:
        """An atom, upper-cased (command names, FETCH items, search keys)."""
        return self.atom("a keyword").upper()

    def number(self, what: str = "a number") -> int:
        value = int(self._match(_NUMBER, what))
        if value > 2 ** 63 - 1:
            raise ArgumentError(f"{what} is too large")
        return value

    def nz_number(self, what: str = "a number") -> int:
        value = self.number(what)
        if value == 0:
            raise ArgumentError(f"{what} must not be 0")
        return value

    def quoted(self) -> bytes:
        self.expect(b'"')
        out = bytearray()
        data = self.data
        while True:
            if self.pos >= len(data):
                raise ArgumentError("unterminated quoted string")
            ch = data[self.pos]
            self.pos += 1
            if ch == 0x22:
                return bytes(out)
            if ch == 0x5C:
                if self.pos >= len(data) or data[self.pos] not in b'"\\':
                    raise ArgumentError("bad escape in quoted string")
                ch = data[self.pos]
                self.pos += 1
            elif ch in (0x0D, 0x0A, 0):
                raise ArgumentError("control character in quoted string")
            out.append(ch)

    def message_literal(self) -> bytes | Path:
        """APPEND's message: a literal, or the file the framing spooled a large one to
        (its place in the command is ``NUL index NUL``: a client cannot write that,
        since the framing refuses NUL outside literals)."""
        match = _SPOOLED.match(self.data, self.pos)
        if match is not None and int(match.group(1)) < len(self.spooled):
            self.pos = match.end()
            return self.spooled[int(match.group(1))]
        return self.literal()

    def literal(self) -> bytes:
        match = _LITERAL.match(self.data, self.pos)
        if not match:
            raise ArgumentError(f"expected a literal{self._where()}")
        size = int(match.group(1))
        start = match.end()
        if start + size > len(self.data):
            raise ArgumentError("literal is shorter than announced")
        self.pos = start + size
        return self.data[start:start + size]

    def is_literal(self) -> bool:
        return self.peek(b"{") or self.peek(b"~{")

    def string(self, what: str = "a string") -> bytes:
        if self.peek(b'"'):
            return self.quoted()
        if self.is_literal():
            return self.literal()
        raise ArgumentError(f"expected {what}{self._where()}")

    def astring(self, what: str = "a string") -> bytes:
        if self.peek(b'"') or self.is_literal():
            return self.string(what)
        return self._match(_ASTRING_ATOM, what)

    def base64(self) -> bytes:
        """SASL data on the command line (SASL-IR): base64 text, ``=`` for empty."""
        return self._match(_BASE64, "base64 data")

    def nstring(self) -> bytes | None:
        if self.peek_ci(b"NIL"):
            self.pos += 3
            return None
        return self.string()

    def list_mailbox(self) -> bytes:
        """A LIST pattern: an atom that may hold ``%`` and ``*``, or a string."""
        if self.peek(b'"') or self.is_literal():
            return self.string("a mailbox pattern")
        return self._match(_LIST_MAILBOX, "a mailbox pattern")

    def parens(self, item: Callable[[Reader], T], *, empty: bool = True) -> list[T]:
        """``"(" item *(SP item) ")"``."""
        self.expect(b"(", "'('")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ArgumentError("lists nested too deeply")
        items: list[T] = []
        if not self.take(b")"):
            while True:
                items.append(item(self))
                if self.take(b")"):
                    break
                if not self.take(b" "):
                    raise ArgumentError(f"expected ')'{self._where()}")
        elif not empty:
            raise ArgumentError("empty list")
        self.depth -= 1
        return items

    def flag(self) -> str:
        if self.take(b"\\"):
            if self.take(b"*"):
                return "\\*"
            return "\\" + self.atom("a flag")
        return self.atom("a flag")

    def flag_list(self) -> list[str]:
        return self.parens(Reader.flag)

    def sequence_set(self) -> str:
        """The text of a sequence set (checked for syntax; resolved later against the
        session's messages, where ``*`` is known)."""
        text = self._match(_SEQ_SET, "a sequence set").decode("ascii")
        for part in text.replace(":", ",").split(","):
            if part not in ("*", "$") and int(part) == 0:
                raise ArgumentError("0 is not a valid message number")
            if part not in ("*", "$") and int(part) > 0xFFFFFFFF:
                raise ArgumentError("message number too large")
        return text

    def date(self) -> datetime:
        """``date`` (SEARCH): ``1-Feb-1994`` or the same in quotes."""
        quoted = self.take(b'"')
        match = _DATE.match(self.data, self.pos)
        if not match:
            raise ArgumentError(f"expected a date like 1-Feb-1994{self._where()}")
        self.pos = match.end()
        if quoted:
            self.expect(b'"')
        return _make_date(match.group(1), match.group(2), match.group(3))

    def date_time(self) -> datetime:
        """``date-time`` (APPEND): ``"17-Jul-1996 02:44:25 -0700"``."""
        match = _DATE_TIME.match(self.data, self.pos)
        if not match:
            raise ArgumentError(f"expected a date-time like \"17-Jul-1996 02:44:25 -0700\""
                                f"{self._where()}")
        self.pos = match.end()
        day, month, year, hh, mm, ss, sign, zh, zm = match.groups()
        base = _make_date(day.strip(), month, year)
        offset = timedelta(hours=int(zh), minutes=int(zm)) * (1 if sign == b"+" else -1)
        try:
            return base.replace(hour=int(hh), minute=int(mm), second=int(ss),
                                tzinfo=timezone(offset))
        except ValueError:
            raise ArgumentError("invalid time in date-time") from None


def _make_date(day: bytes, month: bytes, year: bytes) -> datetime:
    name = month.decode("ascii").capitalize()
    if name not in _MONTHS:
        raise ArgumentError(f"unknown month {name!r}")
    try:
        return datetime(int(year), _MONTHS.index(name) + 1, int(day), tzinfo=UTC)
    except ValueError:
        raise ArgumentError("invalid date") from None
