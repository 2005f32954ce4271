"""SEARCH criteria as data, and their evaluation against one message (RFC 3501 §6.4.4).

The protocol layer parses the command into a tree of the dataclasses below (it owns
the syntax); this module decides whether a message matches. Also here: sequence sets
(RFC 3501 §9 ``sequence-set``), used by every command that names messages.

Standards: RFC 3501 §6.4.4 and RFC 9051 §6.4.4 (search keys), RFC 7162 §3.1.5
(MODSEQ), RFC 5032 (OLDER / YOUNGER), RFC 6855 (UTF-8 searching).

Rules we follow:

- String matches are case-insensitive substrings, with full Unicode case folding
  (a superset of the ASCII folding RFC 3501 requires); header values are RFC 2047
  decoded and unfolded first, bodies are transfer- and charset-decoded.
- ``HEADER name ""`` matches every message that has the field (RFC 3501).
- BEFORE/ON/SINCE compare the calendar date of the internal date in UTC; SENTBEFORE,
  SENTON, SENTSINCE the date written in the Date header, ignoring time and zone
  (RFC 3501). A message without a usable Date header matches no SENT* key.
- Only keys that need the message content call ``view()``; :func:`needs_view` tells
  the server in advance (so flag-only searches never open a file).

Untrusted input: sequence-set text from the client (:meth:`SequenceSet.parse` raises
ValueError naming the bad piece). Known limit: search text is capped by
:data:`postroom.services.imap.message.SEARCH_TEXT_LIMIT`.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import date as Date
from typing import Protocol

from postroom.services.imap.message import MessageView

MAX_NUMBER = 4294967295   # RFC 3501 nz-number / uniqueid: 32-bit unsigned


class SearchMessage(Protocol):
    """What a search (or SORT/THREAD) needs to know of one message."""

    seq: int
    uid: int
    flags: tuple[str, ...]
    internal_date: float
    size: int
    modseq: int

    def view(self) -> MessageView: ...


# --- sequence sets -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A set of message numbers or UIDs as sorted, merged, inclusive ranges.

    As a search key it matches message sequence numbers; wrap it in :class:`UidSet`
    to match UIDs.
    """

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, text: str, largest: int) -> SequenceSet:
        """Parse RFC 3501 ``sequence-set`` text; ``*`` stands for ``largest``.

        ``largest`` is the number of messages for sequence numbers, or the highest UID
        in the mailbox for UIDs (0 in an empty mailbox). Ranges may be written either
        way round (``5:3`` is ``3:5``). Raises ValueError for anything else.
        """
        if not text:
            raise ValueError("empty sequence set")
        star = max(largest, 0)
        pairs: list[tuple[int, int]] = []
        for piece in text.split(","):
            lo_s, colon, hi_s = piece.partition(":")
            lo = _seq_number(lo_s, star, text)
            hi = _seq_number(hi_s, star, text) if colon else lo
            if lo > hi:
                lo, hi = hi, lo
            if hi < 1:          # "*" in an empty mailbox: nothing
                continue
            pairs.append((max(lo, 1), hi))
        return cls(_merge(pairs))

    @classmethod
    def of(cls, numbers: Iterator[int] | list[int]) -> SequenceSet:
        """The set of the given numbers (for building responses such as COPYUID)."""
        return cls(_merge([(n, n) for n in numbers]))

    def contains(self, n: int) -> bool:
        ranges = self.ranges
        k = bisect_right(ranges, (n, MAX_NUMBER + 1)) - 1
        return k >= 0 and ranges[k][0] <= n <= ranges[k][1]

    __contains__ = contains

    def values(self, largest: int) -> Iterator[int]:
        """The members up to ``largest``, ascending."""
        for lo, hi in self.ranges:
            if lo > largest:
                return
            yield from range(lo, min(hi, largest) + 1)

    def __str__(self) -> str:
        return ",".join(str(lo) if lo == hi else f"{lo}:{hi}" for lo, hi in self.ranges)


def _seq_number(s: str, star: int, text: str) -> int:
    if s == "*":
        return star
    if not s or not (s.isascii() and s.isdigit()) or s[0] == "0":
        raise ValueError(f"invalid sequence set {text!r}: bad number {s!r}")
    n = int(s)
    if n > MAX_NUMBER:
        raise ValueError(f"invalid sequence set {text!r}: {s} is beyond 4294967295")
    return n


def _merge(pairs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    pairs.sort()
    out: list[tuple[int, int]] = []
    for lo, hi in pairs:
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


# --- search keys -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class All:
    pass


@dataclass(frozen=True, slots=True)
class And:
    keys: tuple[SearchKey, ...]


@dataclass(frozen=True, slots=True)
class Or:
    a: SearchKey
    b: SearchKey


@dataclass(frozen=True, slots=True)
class Not:
    key: SearchKey


@dataclass(frozen=True, slots=True)
class UidSet:
    numbers: SequenceSet


@dataclass(frozen=True, slots=True)
class Flag:
    """ANSWERED/SEEN/... (present) and UNANSWERED/UNSEEN/... (absent); also KEYWORD."""

    name: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class Header:
    """HEADER name string; FROM/TO/CC/BCC/SUBJECT are Header("From", s) and so on."""

    name: str
    substring: str


@dataclass(frozen=True, slots=True)
class Body:
    substring: str


@dataclass(frozen=True, slots=True)
class Text:
    substring: str


@dataclass(frozen=True, slots=True)
class Before:
    date: Date


@dataclass(frozen=True, slots=True)
class On:
    date: Date


@dataclass(frozen=True, slots=True)
class Since:
    date: Date


@dataclass(frozen=True, slots=True)
class SentBefore:
    date: Date


@dataclass(frozen=True, slots=True)
class SentOn:
    date: Date


@dataclass(frozen=True, slots=True)
class SentSince:
    date: Date


@dataclass(frozen=True, slots=True)
class Larger:
    n: int


@dataclass(frozen=True, slots=True)
class Smaller:
    n: int


@dataclass(frozen=True, slots=True)
class New:
    pass


@dataclass(frozen=True, slots=True)
class Old:
    pass


@dataclass(frozen=True, slots=True)
class Recent:
    pass


@dataclass(frozen=True, slots=True)
class ModSeq:
    """MODSEQ n (RFC 7162): the message's mod-sequence is at least n."""

    n: int


@dataclass(frozen=True, slots=True)
class Older:
    """OLDER seconds (RFC 5032): internal date at least that many seconds ago."""

    seconds: int


@dataclass(frozen=True, slots=True)
class Younger:
    seconds: int


SearchKey = (All | And | Or | Not | SequenceSet | UidSet | Flag | Header | Body | Text
             | Before | On | Since | SentBefore | SentOn | SentSince | Larger | Smaller
             | New | Old | Recent | ModSeq | Older | Younger)

Matcher = Callable[[SearchMessage], bool]
_CONTENT = (Header, Body, Text, SentBefore, SentOn, SentSince)


def uses(key: SearchKey, kinds: type | tuple[type, ...]) -> bool:
    """Does ``key`` contain a key of one of ``kinds``, under any AND, OR or NOT?"""
    if isinstance(key, kinds):
        return True
    if isinstance(key, And):
        return any(uses(k, kinds) for k in key.keys)
    if isinstance(key, Or):
        return uses(key.a, kinds) or uses(key.b, kinds)
    if isinstance(key, Not):
        return uses(key.key, kinds)
    return False


def needs_view(key: SearchKey) -> bool:
    """True if evaluating ``key`` may need the message content (not just metadata)."""
    return uses(key, _CONTENT)


def evaluate(key: SearchKey, msg: SearchMessage) -> bool:
    """Does ``msg`` match ``key``? (For many messages, build :func:`matcher` once.)"""
    return matcher(key)(msg)


def _has_flag(msg: SearchMessage, name: str) -> bool:
    flags = msg.flags
    if name in flags:              # the usual spelling: no folding needed
        return True
    folded = name.casefold()
    return any(f.casefold() == folded for f in flags)


def _internal_day(msg: SearchMessage) -> Date:
    return datetime.fromtimestamp(msg.internal_date, UTC).date()


def matcher(key: SearchKey) -> Matcher:
    """Compile a key tree into one function (cheap to call for every message)."""
    if isinstance(key, All):
        return lambda m: True
    if isinstance(key, And):
        parts = [matcher(k) for k in key.keys]
        # Metadata tests first, so content is loaded only for messages that survive.
        parts.sort(key=lambda f: getattr(f, "_content", False))
        return lambda m: all(p(m) for p in parts)
    if isinstance(key, Or):
        a, b = matcher(key.a), matcher(key.b)
        return _content(lambda m: a(m) or b(m), needs_view(key))
    if isinstance(key, Not):
        inner = matcher(key.key)
        return _content(lambda m: not inner(m), needs_view(key))
    if isinstance(key, SequenceSet):
        return lambda m: key.contains(m.seq)
    if isinstance(key, UidSet):
        return lambda m: key.numbers.contains(m.uid)
    if isinstance(key, Flag):
        name, present = key.name, key.present
        return lambda m: _has_flag(m, name) is present
    if isinstance(key, Header):
        return _content(_header_matcher(key.name, key.substring), True)
    if isinstance(key, Body):
        needle = key.substring.casefold()
        return _content(lambda m: needle in _folded_text(m.view()), True)
    if isinstance(key, Text):
        needle = key.substring.casefold()
        def text(m: SearchMessage) -> bool:
            view = m.view()
            return needle in view.header_text().casefold() or needle in _folded_text(view)

        return _content(text, True)
    if isinstance(key, Before):
        return lambda m: _internal_day(m) < key.date
    if isinstance(key, On):
        return lambda m: _internal_day(m) == key.date
    if isinstance(key, Since):
        return lambda m: _internal_day(m) >= key.date
    if isinstance(key, SentBefore | SentOn | SentSince):
        return _content(_sent_matcher(key), True)
    if isinstance(key, Larger):
        return lambda m: m.size > key.n
    if isinstance(key, Smaller):
        return lambda m: m.size < key.n
    if isinstance(key, New):
        return lambda m: _has_flag(m, "\\Recent") and not _has_flag(m, "\\Seen")
    if isinstance(key, Old):
        return lambda m: not _has_flag(m, "\\Recent")
    if isinstance(key, Recent):
        return lambda m: _has_flag(m, "\\Recent")
    if isinstance(key, ModSeq):
        return lambda m: m.modseq >= key.n
    if isinstance(key, Older):
        return lambda m: m.internal_date <= time.time() - key.seconds
    if isinstance(key, Younger):
        return lambda m: m.internal_date >= time.time() - key.seconds
    raise TypeError(f"not a search key: {key!r}")


def _content(f: Matcher, content: bool) -> Matcher:
    f._content = content  # type: ignore[attr-defined]
    return f


def _folded_text(view: MessageView) -> str:
    return view.folded_search_text()


def _headers(m: SearchMessage) -> MessageView | HeaderSource:
    """The message's header fields: its header block alone when the message offers
    one (``headers()``, cached by the server), else its whole view."""
    headers = getattr(m, "headers", None)
    return headers() if headers is not None else m.view()


class HeaderSource(Protocol):
    def header_values(self, name: str) -> list[str]: ...
    def has_header(self, name: str) -> bool: ...
    # Optional: ``contains(name, needle) -> bool``, the answer of a header key at once
    # (:meth:`.message_cache.HeaderView.contains`).


def _header_matcher(name: str, substring: str) -> Matcher:
    needle = substring.casefold()
    if not needle:
        return lambda m: _headers(m).has_header(name)

    def match(m: SearchMessage) -> bool:
        source = _headers(m)
        contains = getattr(source, "contains", None)
        if contains is not None:
            return bool(contains(name, needle))
        return any(needle in v.casefold() for v in source.header_values(name))

    return match


def _sent_matcher(key: SentBefore | SentOn | SentSince) -> Matcher:
    day = key.date

    def match(m: SearchMessage) -> bool:
        sent = m.view().sent_date()
        if sent is None:
            return False
        if isinstance(key, SentBefore):
            return sent < day
        if isinstance(key, SentOn):
            return sent == day
        return sent >= day

    return match
