"""The parsed MIME structure of messages, kept so FETCH does not parse a message again
(issue 8 design rule: parsed once and cached).

An LRU of :class:`.message.MessageView` keyed by the message file's path under
DIR/messages. Paths are never reused (a new message gets a new file name) and files
are never changed in place, so an entry never goes stale; an expunged message's entry
just ages out. The cache is bounded by total message octets (:data:`MAX_BYTES`) as
well as entries, since a view holds the message bytes.

:class:`HeaderCache` keeps only the header block of many more messages, for SEARCH on
header fields over a whole big folder (issue 8: under 500 ms in 100,000 messages).
Given a directory, it also keeps each folder's blocks in a file there, because the
first such search after every start read every message file again (4.6 s for
100,000): see :mod:`postroom.store.header_file`, where the format and the known
limits are.
"""

from __future__ import annotations

import logging
import operator
import os
import threading
from collections import OrderedDict
from collections.abc import Container, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from itertools import compress
from operator import attrgetter
from pathlib import Path

from postroom.services.imap.message import Header, MessageView, _parse_header, decode_words
from postroom.store import cache_file, header_file
from postroom.store.header_file import Loaded, header_of, read_header
from postroom.store.messages import MessageInfo

log = logging.getLogger(__name__)

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
LOAD_MIN = 256
"""Header blocks a search would read from message files before it loads the folder's
file instead (a few files cost less than a whole folder's file)."""
SAVE_MIN = 256
"""Header blocks a search must have read from message files before the folder's file
is written anew (one that read a handful, new mail, leaves it as it is)."""
WRITER_DELAY = 1.0
WRITER_PAUSE = 0.01
"""Seconds the writer of folders' files waits before it starts (unless the service
stops), and sleeps between its passes over the blocks. Its 0.25 s of work for 100,000
blocks would otherwise come right after the big search, with the client's next
commands: a search of 100,000 cached blocks took 0.5 s beside it instead of 0.3 s."""


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

    With a ``directory``, each folder's blocks are also kept in a file there for the
    next process (:mod:`postroom.store.header_file`); None keeps them in memory only. A
    folder's file loaded (:class:`postroom.store.header_file.Loaded`) serves its
    messages' blocks without a view each until a search cannot rule a message out;
    loaded files count against the same budget, and the oldest goes first when they
    take more than half of it (or when no view is left to drop). Its journal, what
    the message store appended since, is joined to it as it is loaded.
    """

    def __init__(self, root: Path, max_bytes: int = HEADER_MAX_BYTES,
                 directory: Path | None = None, *, load_min: int = LOAD_MIN,
                 save_min: int = SAVE_MIN) -> None:
        self.root = root
        self._root = str(root)
        self.max_bytes = max_bytes
        self.directory = directory
        self.load_min = load_min
        self.save_min = save_min
        self._views: OrderedDict[str, HeaderView] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.reads = 0
        # (folder key, field, needle) -> [UIDs looked at, UIDs that matched]
        self._searches: OrderedDict[tuple[object, ...], tuple[set[int], set[int]]] = \
            OrderedDict()
        # Folders' files: those tried in this process (loaded, missing or unsound), those
        # in memory (oldest first) and which holds the block of a message path.
        self._tried: set[str] = set()
        self._loaded: OrderedDict[str, Loaded] = OrderedDict()
        self._loaded_bytes = 0
        self._where: dict[str, Loaded] = {}
        self._load_lock = threading.Lock()      # a second search waits for the first's load
        self._pending: dict[str, list[str]] = {}    # file -> its folder's message paths
        self._joined: set[str] = set()          # files just joined with their journal
        self._writer: ThreadPoolExecutor | None = None
        self._closing = threading.Event()       # the writer waits no longer
        self.loads = 0                          # files loaded and written (tests, stats)
        self.writes = 0

    def has(self, path: str) -> bool:
        return path in self._views or path in self._where

    def get(self, path: str) -> HeaderView:
        """The header of the message at ``path``; FileNotFoundError if expunged."""
        view = self._views.get(path)
        if view is not None:
            return view
        loaded = self._where.get(path)
        if loaded is not None:
            view = HeaderView(loaded.block(loaded.index[path]))
        else:
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
        file gone meanwhile (expunged) matches nothing. A message whose block is in a
        loaded folder's file (and not yet a view) is first put to that file's quick
        test for all its messages at once (:meth:`postroom.store.header_file.Loaded.maybe`)."""
        views, where, key, found, reads = self._views, self._where, (name, needle), [], 0
        last: Loaded | None = None
        maybe: Container[int] = ()
        for position, message in enumerate(messages):
            path = message.path
            loaded = where.get(path)
            if loaded is not None:
                if loaded is not last:
                    last, maybe = loaded, loaded.maybe(needle)
                number = loaded.index[path]
                if number not in maybe:
                    continue
                view = views.get(path)
                if view is None:
                    view = HeaderView(loaded.block(number))
                    self._keep(path, view)
            elif (view := views.get(path)) is None:
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
        headers of new messages are not cached, or when the folder's file is to be
        loaded first (:meth:`_ready`).

        With a directory, the folder's file is loaded before a search that would read
        many blocks from message files, and written anew after one that did (counted
        by :attr:`reads`: a search in another thread meanwhile adds its own, at worst
        a file written once more).

        Safe in any thread: the event loop tries first with a small ``max_reads`` and
        hands the search to a store thread on None, so two may run at once; the kept
        sets change under the lock, the search itself runs outside it."""
        key = (*folder, name, needle)
        current = set(uids)
        with self._lock:
            searches = self._searches
            entry = searches.get(key)
            if entry is None:
                entry = searches[key] = (set(), set())
                while len(searches) > SEARCHES_KEPT:
                    searches.popitem(last=False)
            else:
                searches.move_to_end(key)
            looked, matched = entry
            new = current - looked
        if new:
            messages = list(map(info.__getitem__, sorted(new)))
            if not self._ready(folder, messages, uids, info, max_reads):
                return None
            reads = self.reads
            found = self.search(messages, name, needle, max_reads)
            if found is None:
                return None
            with self._lock:
                looked |= new
                matched.update(message.uid for _position, message in found)
                if len(looked) > 2 * len(current) + 64:  # expunged UIDs pile up: drop them
                    looked &= current
                    matched &= current
            if self.directory is not None:
                file = header_file.file_name(folder)
                joined = file in self._joined       # a journal joined, files read beside
                self._joined.discard(file)
                if self.reads - reads >= self.save_min or (joined and self.reads > reads):
                    self._save_later(file, uids, info)
        with self._lock:
            return sorted(matched & current)

    def close(self) -> None:
        """Wait for the folders' files being written: the service is stopping, and its
        next start is to find them."""
        self._closing.set()
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=True)

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
                self._shrink()

    def _shrink(self) -> None:
        """Drop the least recently used views, or the oldest loaded file when files
        take more than half of the budget, until the cache is within it. Under the lock."""
        views, loaded = self._views, self._loaded
        while self._bytes > self.max_bytes and (views or loaded):
            if loaded and (self._loaded_bytes > self.max_bytes // 2 or not views):
                file, old = loaded.popitem(last=False)
                self._loaded_bytes -= old.cost
                self._bytes -= old.cost
                where = self._where
                for path in old.index:
                    if where.get(path) is old:
                        del where[path]
                self._tried.discard(file)           # to be loaded again when needed
            else:
                old_path, old_view = views.popitem(last=False)
                self._bytes -= _cost(old_view, old_path)

    # -- the folders' files (header_file) ------------------------------------------------

    def _ready(self, folder: tuple[object, ...], messages: list[MessageInfo],
               uids: list[int], info: Mapping[int, MessageInfo],
               max_reads: int | None) -> bool:
        """Load the folder's file, once per folder and process, before a search that
        would read more than :attr:`load_min` blocks from message files. False when a
        load is due and ``max_reads`` is set: that is the event loop's quick attempt,
        and a 20 MB load belongs in the store thread the caller then hands it to."""
        if self.directory is None:
            return True
        file = header_file.file_name(folder)
        if file in self._tried or self._unread(messages) <= self.load_min:
            return True
        if max_reads is not None:
            return False
        self._load(file, uids, info)
        return True

    def _unread(self, messages: list[MessageInfo]) -> int:
        """How many of ``messages`` have no block in memory, counted up to one past
        :attr:`load_min` (unlocked look-ups, as in :meth:`search`)."""
        views, where, unread = self._views, self._where, 0
        for path in map(_path, messages):
            if path not in where and path not in views:
                unread += 1
                if unread > self.load_min:
                    break
        return unread

    def _load(self, file: str, uids: list[int], info: Mapping[int, MessageInfo]) -> None:
        """Load the folder's file, indexed for the folder's messages now (those of
        expunged ones are dead weight); a missing or unsound file is left for the next
        write to replace, one bigger than half the budget is not loaded."""
        assert self.directory is not None
        with self._load_lock:
            if file in self._tried:
                return
            self._tried.add(file)
            try:
                data = (self.directory / file).read_bytes()
            except FileNotFoundError:
                data = b""
            except OSError as exc:
                log.warning("could not read the IMAP header cache file %s: %s", file, exc)
                return
            # Every record indexed, those of expunged mail too (paths are never reused:
            # they are only dead weight); how much is dead is counted afterwards.
            wanted = None
            taken = self._take_journal(file)
            if taken is None and not data:
                return
            if taken is not None:       # mail stored since: its frames joined to the file
                parts = [data, taken[1]]
                data = header_file.merge(parts)
            loaded = header_file.decode(data, wanted)
            if taken is not None:
                if loaded is None:      # a frame torn by a crash, whole ones after it
                    data = header_file.merge(parts, careful=True)
                    loaded = header_file.decode(data, wanted)
                self._write_later(file, data, taken[0])
                self._joined.add(file)
            del data
            if loaded is None:
                log.warning("ignored the IMAP header cache file %s: not a whole file of "
                            "this version; it is written anew after the next search", file)
                return
            if loaded.cost > self.max_bytes // 2:
                return
            with self._lock:
                self._loaded[file] = loaded
                self._loaded_bytes += loaded.cost
                self._bytes += loaded.cost
                self._where.update(dict.fromkeys(loaded.index, loaded))
                self._shrink()
            self.loads += 1
        with self._lock:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="imap-headers")
            writer = self._writer
        writer.submit(self._prune_later, file, loaded, uids, info)

    def _prune_later(self, file: str, loaded: Loaded, uids: list[int],
                     info: Mapping[int, MessageInfo]) -> None:
        """Have a folder's file of mostly expunged mail written anew, counted in the
        writer thread after :data:`WRITER_DELAY`, not in the search that loaded it."""
        self._closing.wait(WRITER_DELAY)
        index = loaded.index
        live = sum(map(index.__contains__, map(_path, map(info.__getitem__, uids))))
        if live < 3 * loaded.records // 4:
            with self._lock:
                self._pending[file] = list(map(_path, map(info.__getitem__, uids)))
            self._write(file)       # in this thread: the writer may be shutting down

    def _take_journal(self, file: str) -> tuple[Path, bytes] | None:
        """The folder's journal (:class:`postroom.store.header_file.HeaderJournal`),
        moved aside first so that frames appended meanwhile start a new one; None if
        there is none."""
        assert self.directory is not None
        journal = self.directory / (file + header_file.JOURNAL)
        aside = journal.with_name(f".{journal.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            os.replace(journal, aside)
            return aside, aside.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("could not read the IMAP header journal %s: %s", journal, exc)
            return None

    def _write_later(self, file: str, data: bytes, aside: Path) -> None:
        """Have the writer thread write ``data`` (the folder's file joined with its
        journal) as the folder's file, then remove the journal moved ``aside``."""
        with self._lock:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="imap-headers")
            writer = self._writer
        writer.submit(self._write_merged, file, data, aside)

    def _write_merged(self, file: str, data: bytes, aside: Path) -> None:
        assert self.directory is not None
        self._closing.wait(WRITER_DELAY)        # not beside the search that loaded it
        try:
            cache_file.write(self.directory, file, [data])
            self.writes += 1
        except (OSError, ValueError) as exc:       # a cache: its files are read again
            log.warning("could not write the IMAP header cache file %s: %s", file, exc)
        finally:
            aside.unlink(missing_ok=True)

    def _save_later(self, file: str, uids: list[int], info: Mapping[int, MessageInfo],
                    ) -> None:
        """Have the folder's file written anew by the writer thread, so that no reply
        waits for the disk (:data:`WRITER_DELAY`). A write already queued for the folder
        takes these messages instead of being queued twice."""
        paths = list(map(_path, map(info.__getitem__, uids)))
        with self._lock:
            queued = file in self._pending
            self._pending[file] = paths
            if not queued:
                if self._writer is None:
                    self._writer = ThreadPoolExecutor(1, thread_name_prefix="imap-headers")
                self._writer.submit(self._write, file)

    def _write(self, file: str) -> None:
        """Write the folder's file: every block in memory of its messages. A failure
        costs only the next start's first search, so it is a warning."""
        assert self.directory is not None
        self._closing.wait(WRITER_DELAY)
        with self._lock:
            paths = self._pending.pop(file)
        try:
            cache_file.write(self.directory, file, self._records(paths))
            self.writes += 1
        except (OSError, ValueError, OverflowError) as exc:    # disk full, permissions
            log.warning("could not write the IMAP header cache file %s: %s", file, exc)
        except Exception:           # a bug: said, since the writer's future is not read
            log.exception("could not write the IMAP header cache file %s", file)


    def _records(self, paths: list[str]) -> list[bytes | memoryview]:
        """The file of the blocks in memory of the messages at ``paths``, in pieces
        (:func:`postroom.store.header_file.encode`): views' blocks first, then loaded files'."""
        views, where = self._views, self._where     # unlocked look-ups, as in search()
        found = list(map(views.get, paths))
        kept = [path for path, view in zip(paths, found, strict=True) if view is not None]
        raws = [view.raw for view in found if view is not None]
        flats, unsure = header_file.quick_facts(raws, WRITER_PAUSE)
        blocks: list[bytes | memoryview] = list(raws)
        for path in compress(paths, map(_is_none, found)):
            if (loaded := where.get(path)) is not None:
                block, flat, flagged = loaded.facts(loaded.index[path])
                if flagged:
                    unsure.add(len(blocks))
                kept.append(path)
                blocks.append(block)
                flats.append(flat)
        return header_file.encode(kept, blocks, flats, unsure)


_path = attrgetter("path")
_is_none = partial(operator.is_, None)


def _cost(view: HeaderView, path: str) -> int:
    """Octets an entry is charged: the header block, the flattened copy the quick test
    keeps of it once a search has run, the path and the objects around them (the
    remembered search answers among them)."""
    return 2 * len(view.raw) + len(path) + ENTRY_OVERHEAD
