"""The SEARCH grammar (RFC 3501 §6.4.4, RFC 9051 §6.4.4, RFC 7162 MODSEQ, RFC 5032
OLDER/YOUNGER) into the search-key dataclasses of :mod:`.search`, which evaluates them.

Several keys in a row are an implicit AND; ``(...)`` groups; ``OR a b`` and ``NOT a``
nest. Sequence sets stay as text inside :class:`SeqText` / :class:`UidText` until the
session resolves them (``*`` and ``$`` depend on the selected mailbox):
:func:`resolve` swaps them for :class:`.search.SequenceSet` / :class:`.search.UidSet`.

Strings are decoded as UTF-8 (the only charsets offered are US-ASCII and UTF-8; others
are refused with ``NO [BADCHARSET (US-ASCII UTF-8)]`` by the session). Untrusted input:
everything; nesting is capped by the reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from postroom.services.imap import search as s
from postroom.services.imap.arguments import ArgumentError, Reader

FLAG_KEYS = {"ANSWERED": ("\\Answered", True), "DELETED": ("\\Deleted", True),
             "DRAFT": ("\\Draft", True), "FLAGGED": ("\\Flagged", True),
             "SEEN": ("\\Seen", True), "UNANSWERED": ("\\Answered", False),
             "UNDELETED": ("\\Deleted", False), "UNDRAFT": ("\\Draft", False),
             "UNFLAGGED": ("\\Flagged", False), "UNSEEN": ("\\Seen", False)}
DATE_KEYS = {"BEFORE": s.Before, "ON": s.On, "SINCE": s.Since, "SENTBEFORE": s.SentBefore,
             "SENTON": s.SentOn, "SENTSINCE": s.SentSince}
HEADER_KEYS = ("BCC", "CC", "FROM", "SUBJECT", "TO")
PLAIN_KEYS = {"ALL": s.All, "NEW": s.New, "OLD": s.Old, "RECENT": s.Recent}
CHARSETS = ("US-ASCII", "UTF-8")


@dataclass(frozen=True)
class SeqText:
    text: str


@dataclass(frozen=True)
class UidText:
    text: str


def parse_search(r: Reader) -> Any:
    """One or more search keys up to the end of the command."""
    keys = [_key(r)]
    while r.take(b" "):
        keys.append(_key(r))
    return keys[0] if len(keys) == 1 else s.And(tuple(keys))


def _text(r: Reader) -> str:
    data = r.astring("a search string")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ArgumentError("search string is not UTF-8", "BADCHARSET (US-ASCII UTF-8)") \
            from None


def _key(r: Reader) -> Any:
    if r.peek(b"("):
        r.depth += 1
        if r.depth > 32:
            raise ArgumentError("search keys nested too deeply")
        r.expect(b"(")
        inner = [_key(r)]
        while r.take(b" "):
            inner.append(_key(r))
        r.expect(b")", "')'")
        r.depth -= 1
        return inner[0] if len(inner) == 1 else s.And(tuple(inner))
    if r.peek(b"$") or (r.data[r.pos:r.pos + 1].isdigit()) or r.peek(b"*"):
        return SeqText(r.sequence_set())
    word = r.keyword()
    if word in PLAIN_KEYS:
        return PLAIN_KEYS[word]()
    if word in FLAG_KEYS:
        name, present = FLAG_KEYS[word]
        return s.Flag(name, present)
    if word in ("KEYWORD", "UNKEYWORD"):
        r.sp()
        return s.Flag(r.flag(), word == "KEYWORD")
    if word in DATE_KEYS:
        r.sp()
        return DATE_KEYS[word](r.date().date())
    if word in HEADER_KEYS:
        r.sp()
        return s.Header(word.capitalize(), _text(r))
    if word == "HEADER":
        r.sp()
        name = _text(r)
        r.sp()
        return s.Header(name, _text(r))
    if word == "BODY":
        r.sp()
        return s.Body(_text(r))
    if word == "TEXT":
        r.sp()
        return s.Text(_text(r))
    if word in ("LARGER", "SMALLER"):
        r.sp()
        n = r.number("a size")
        return s.Larger(n) if word == "LARGER" else s.Smaller(n)
    if word in ("OLDER", "YOUNGER"):
        r.sp()
        n = r.nz_number("a number of seconds")
        return s.Older(n) if word == "OLDER" else s.Younger(n)
    if word == "MODSEQ":
        r.sp()
        if r.peek(b'"'):                 # entry name and type (RFC 7162): ignored
            r.quoted()
            r.sp()
            r.keyword()
            r.sp()
        return s.ModSeq(r.number("a mod-sequence"))
    if word == "UID":
        r.sp()
        return UidText(r.sequence_set())
    if word == "NOT":
        r.sp()
        return s.Not(_key(r))
    if word == "OR":
        r.sp()
        a = _key(r)
        r.sp()
        return s.Or(a, _key(r))
    raise ArgumentError(f"unknown search key {word}")


def resolve(key: Any, largest_seq: int, largest_uid: int,
            saved: s.SequenceSet | None = None) -> Any:
    """Replace sequence-set text with sets; ValueError for bad sets. ``saved``: the UIDs
    of the saved search result, which ``$`` and ``UID $`` both name (RFC 5182 §2.2)."""
    if isinstance(key, (SeqText, UidText)) and key.text == "$":
        return s.UidSet(saved or s.SequenceSet(()))
    if isinstance(key, SeqText):
        return s.SequenceSet.parse(key.text, largest_seq)
    if isinstance(key, UidText):
        return s.UidSet(s.SequenceSet.parse(key.text, largest_uid))
    if isinstance(key, s.And):
        return s.And(tuple(resolve(k, largest_seq, largest_uid, saved) for k in key.keys))
    if isinstance(key, s.Or):
        return s.Or(resolve(key.a, largest_seq, largest_uid, saved),
                    resolve(key.b, largest_seq, largest_uid, saved))
    if isinstance(key, s.Not):
        return s.Not(resolve(key.key, largest_seq, largest_uid, saved))
    return key
