"""The parsed MIME structure of messages, kept so FETCH does not parse a message again
(issue 8 design rule: parsed once and cached).

An LRU of :class:`.message.MessageView` keyed by the message file's path under
DIR/messages. Paths are never reused (a new message gets a new file name) and files
are never changed in place, so an entry never goes stale; an expunged message's entry
just ages out. The cache is bounded by total message octets (:data:`MAX_BYTES`) as
well as entries, since a view holds the message bytes.

:class:`HeaderCache` keeps only the header block of many more messages, for SEARCH on
header fields over a whole big folder (issue 8: under 500 ms in 100,000 messages).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from postroom.services.imap.message import Header, MessageView, _parse_header, decode_words
from postroom.store.messages import MessageInfo

MAX_ENTRIES = 16384
MAX_BYTES = 64 * 1024 * 1024
VIEW_OVERHEAD = 2048
"""Octets charged per cached view beyond the message itself (its parsed structure),
so that many small messages are bounded by :data:`MAX_BYTES` too. The entry limit
is sized for a server's working set: 20 users paging through 200 messages each
already touch 4,000 messages, and an LRU smaller than that misses on most FETCHes."""
HEADER_MAX_BYTES = 128 * 1024 * 1024
SEARCHES_KEPT = 128
"""Header searches whose answers per folder :meth:`HeaderCache.search_uids` keeps."""
ENTRY_OVERHEAD = 200
MAX_ANSWERS = 8
"""Search answers remembered per header block (:meth:`HeaderView.contains`)."""
_FIRST_READ = 8192


class MessageCache:
    def __init__(self, root: Path, max_entries: int = MAX_ENTRIES,
                 max_bytes: int = MAX_BYTES) -> None:
        self.root = root
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._views: OrderedDict[str, MessageView] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.parses = 0              # how many times a message was parsed (tests, stats)

    def has(self, path: str) -> bool:
        """Is the message's view cached (so using it reads no file)?"""
        return path in self._views

    def get(self, path: str) -> MessageView:
        """The view of the message at ``path``; FileNotFoundError if it was expunged."""
        with self._lock:
            view = self._views.get(path)
            if view is not None:
                self._views.move_to_end(path)
                return view
        data = (self.root / path).read_bytes()
        view = MessageView.parse(data)
        with self._lock:
            self.parses += 1
            if path not in self._views:
                self._views[path] = view
                self._bytes += view.size + VIEW_OVERHEAD
                while self._views and (len(self._views) > self.max_entries
                                       or self._bytes > self.max_bytes):
                    _, old = self._views.popitem(last=False)
                    self._bytes -= old.size + VIEW_OVERHEAD
        return view


class HeaderView:
    """The top-level header block of one message, for SEARCH on header fields: the
    same answers as :class:`.message.MessageView` (``header_values``, ``has_header``)
    from the header octets alone, plus a cheap test that rules messages out."""

    __slots__ = ("_answers", "_flat", "_values", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._values: dict[str, list[str]] | None = None
        self._flat: bytes | None = None
        self._answers: dict[tuple[str, str], bool] | None = None

    def contains(self, name: str, needle: str) -> bool:
        """Does a value of field ``name`` contain ``needle`` (casefolded)?

        The answer is remembered (a few per message): a message's header never
        changes, and clients repeat their searches (a list view with a filter
        refreshes, a saved search is run again), so a repeated SEARCH costs one
        lookup per message instead of a scan of its header.
        """
        answers = self._answers
        if answers is None:
            answers = self._answers = {}
        else:
            found = answers.get((name, needle))
            if found is not None:
                return found
            if len(answers) >= MAX_ANSWERS:
                answers.clear()
        found = self.may_contain(needle) and any(
            needle in v.casefold() for v in self.header_values(name))
        answers[(name, needle)] = found
        return found

    def may_contain(self, needle: str) -> bool:
        """False only when no header value can contain ``needle`` (casefolded).

        Sound for plain ASCII headers without encoded words: there a value's
        casefolding is its lower-casing, and an unfolded value is a substring of the
        block with every CRLF removed. Anything else is checked in full.
        """
        flat = self._flat
        if flat is None:
            raw = self.raw
            # b"" marks a block the test cannot rule on (8-bit or encoded words).
            flat = self._flat = b"" if not raw.isascii() or b"=?" in raw else \
                raw.replace(b"\r\n", b"").lower()
        if not flat:
            return True
        if not needle.isascii():
            return False
        return needle.encode() in flat

    # ``raw`` may run past the header when a line that is not a field ends it early
    # (a message without headers): the parse below stops where the header stops, and
    # the test above only errs towards a full check.

    def _header(self) -> Header:
        return _parse_header(self.raw, 0, len(self.raw))[0]

    def header_values(self, name: str) -> list[str]:
        """Decoded values of field ``name``; parsed and decoded once per message and
        field (a client repeating a SEARCH, as a list view refreshing does, costs a
        dictionary lookup per message the second time)."""
        name = name.lower()
        values = self._values
        if values is None:
            values = self._values = {}
        found = values.get(name)
        if found is None:
            found = values[name] = [decode_words(v) for v in self._header().get_all(name)]
        return found

    def has_header(self, name: str) -> bool:
        name = name.lower()
        return any(n == name for n, _ in self._header().fields)


class HeaderCache:
    """Header blocks by message path, read from the file's start only (SEARCH FROM,
    SUBJECT, HEADER ... on a big folder reads each file once, then never again).

    Bounded by octets (:data:`HEADER_MAX_BYTES`, with a per-entry overhead counted),
    least recently used out; entries never go stale (paths are never reused).
    """

    def __init__(self, root: Path, max_bytes: int = HEADER_MAX_BYTES) -> None:
        self.root = root
        self._root = str(root)
        self.max_bytes = max_bytes
        self._views: OrderedDict[str, HeaderView] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.reads = 0
        # (folder key, field, needle) -> [UIDs looked at, UIDs that matched]
        self._searches: OrderedDict[tuple[object, ...], tuple[set[int], set[int]]] = \
            OrderedDict()

    def has(self, path: str) -> bool:
        return path in self._views

    def get(self, path: str) -> HeaderView:
        """The header of the message at ``path``; FileNotFoundError if expunged."""
        view = self._views.get(path)
        if view is not None:
            return view
        view = HeaderView(read_header(os.path.join(self._root, path)))
        self.reads += 1
        self._keep(path, view)
        return view

    def search(self, messages: Iterable[MessageInfo], name: str, needle: str,
               max_reads: int | None = None) -> list[tuple[int, MessageInfo]] | None:
        """The ``messages`` (with their positions) that have a field ``name`` containing
        ``needle`` (casefolded):
        SEARCH on one header field in one loop, with none of the per-message calls of
        the general matcher. None when more than ``max_reads`` header blocks are not
        cached yet (the event loop's caller then hands the search to a thread); a
        file gone meanwhile (expunged) matches nothing."""
        views, key, found, reads = self._views, (name, needle), [], 0
        for position, message in enumerate(messages):
            path = message.path
            view = views.get(path)
            if view is None:
                reads += 1
                if max_reads is not None and reads > max_reads:
                    return None
                try:
                    view = self.get(path)
                except FileNotFoundError:
                    continue
            # HeaderView.contains' remembered answer, looked up here: a call per
            # message was a third of a repeated search's time.
            answers = view._answers
            hit = answers.get(key) if answers is not None else None
            if hit is None:
                hit = view.contains(name, needle)
            if hit:
                found.append((position, message))
        return found

    def search_uids(self, folder: tuple[object, ...], uids: list[int],
                    info: dict[int, MessageInfo], name: str, needle: str,
                    max_reads: int | None = None) -> list[int] | None:
        """The UIDs (ascending) among ``uids`` of the folder ``folder`` (a key that
        includes its UIDVALIDITY) whose field ``name`` contains ``needle``: what
        :meth:`search` finds, remembered per folder and search as two sets of UIDs,
        those looked at and those that matched. A message's header never changes, so a
        search repeated on a folder looks only at the messages it has not seen (those
        appended since) and answers with set operations: a client's search box asked
        again after each new message, or every few seconds, costs a few µs instead of
        a loop over the folder. None, as :meth:`search`, when more than ``max_reads``
        headers of new messages are not cached. For the event loop's thread only."""
        key = (*folder, name, needle)
        searches = self._searches
        entry = searches.get(key)
        if entry is None:
            entry = searches[key] = (set(), set())
            while len(searches) > SEARCHES_KEPT:
                searches.popitem(last=False)
        else:
            searches.move_to_end(key)
        looked, matched = entry
        current = set(uids)
        new = current - looked
        if new:
            found = self.search(map(info.__getitem__, sorted(new)), name, needle, max_reads)
            if found is None:
                return None
            looked |= new
            matched.update(message.uid for _position, message in found)
            if len(looked) > 2 * len(current) + 64:     # expunged UIDs pile up: drop them
                looked &= current
                matched &= current
        return sorted(matched & current)

    def add(self, path: str, message: bytes) -> None:
        """Keep the header of a message just stored at ``path`` from the bytes in hand
        (an IMAP APPEND): a SEARCH after it then reads no file."""
        if path not in self._views:
            self._keep(path, HeaderView(header_of(message)))

    def _keep(self, path: str, view: HeaderView) -> None:
        cost = _cost(view, path)
        with self._lock:
            if path not in self._views:
                self._views[path] = view
                self._bytes += cost
                while self._views and self._bytes > self.max_bytes:
                    old_path, old = self._views.popitem(last=False)
                    self._bytes -= _cost(old, old_path)


def _cost(view: HeaderView, path: str) -> int:
    """Octets an entry is charged: the header block, the flattened copy the quick test
    keeps of it once a search has run, the path and the objects around them (the
    remembered search answers among them)."""
    return 2 * len(view.raw) + len(path) + ENTRY_OVERHEAD


def read_header(path: str) -> bytes:
    """The start of the message file at ``path`` up to and including the first empty
    line (CRLF line ends): the header block, parsed later only if a search needs it."""
    with open(path, "rb") as f:
        data = f.read(_FIRST_READ)
        if len(data) == _FIRST_READ and b"\n\n" not in data and b"\n\r\n" not in data:
            data += f.read()
    return _header_block(data)


def header_of(message: bytes) -> bytes:
    """What :func:`read_header` reads from a file holding ``message``."""
    data = message[:_FIRST_READ]
    if len(data) == _FIRST_READ and b"\n\n" not in data and b"\n\r\n" not in data:
        data = message
    return _header_block(bytes(data))


def _header_block(data: bytes) -> bytes:
    if b"\n" in data and data.count(b"\n") != data.count(b"\r\n"):
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    end = data.find(b"\r\n\r\n")
    return data if end < 0 else data[:end + 4]
