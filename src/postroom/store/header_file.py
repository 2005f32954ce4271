"""Folders' header blocks on disk, so the first header SEARCH of a big folder is fast
(issue 8: SEARCH on a header field of a 100,000-message folder under 500 ms).

The IMAP ``HeaderCache`` (``services/imap/message_cache.py``) reads a message's header
block from its file the first time a search needs it, and keeps it in memory: without
this module the first search of a big folder after every start read every message
file again (100,000 files, 4.6 s here). So each folder's blocks are also kept in one
file, ``DIR/cache/imap-headers/<hash>.headers``, written by the IMAP service after a
search that read many blocks from message files and loaded (in a store thread)
before a search that would read many. Dovecot keeps ``dovecot.index.cache`` for the
same reason.

Mail stored while no search looks (delivery into a big folder) is not read back to
get there: the message store hands each new message's header block, from the bytes
in hand, to a :class:`HeaderJournal`, whose thread appends them in batches to
``<hash>.headers.journal``, each batch a frame in the format of a ``.headers`` file.
The IMAP load moves the journal aside, joins its frames' sections to those of the
folder's file (:func:`merge`: no work per record) and writes the result as the new
file. So the first search of a folder filled by delivery reads no message file
either. A frame cut short (a crash mid-write) ends the journal there; records lost
to a race (appended to a journal just moved aside) are only read from their files.

A file is named after a hash of the folder's key (post office, mailbox, folder name,
UIDVALIDITY), so a folder made again under the same name gets a new file. Records are
keyed by message path: paths are never reused and message files never change, so a
record is valid forever; those of expunged messages are only dead weight, left out
when the file is loaded and dropped when it is next written.

The format is ours (little-endian 32-bit numbers): :data:`MAGIC`, which names the
version; the number of records and the octets of their paths; each header block's
length; each block's length without its CRs and LFs; a flag octet per block that the
quick test cannot rule on (8-bit octets or encoded words); the paths joined by NUL
(which no path holds); the blocks one after the other. Loading is one read, a few
array copies and one pass over the blocks (lower-cased, line ends removed:
:attr:`Loaded.flat`). That text answers the quick test of ``HeaderView.may_contain``
for the whole folder with a substring search per :data:`CHUNK` blocks instead of a
call per message (:meth:`Loaded.maybe`); a block becomes a ``HeaderView`` only for a
message the test cannot rule out. 100,000 records (20 MB) load in about 0.2 s here,
and the first search over them takes about 0.1 s; reading their 100,000 files took 4
to 8 s. A file whose magic, lengths or sums do not add up is ignored, as if missing,
and replaced at the next write. Files are written to a temporary name and renamed
into place, so a reader (the next start, another accept process) sees a whole file or
the one before.

Known limits: files of folders that no longer exist (deleted, or made again with a new
UIDVALIDITY) stay until the cache folder is emptied, which is safe whenever the
service is stopped. Only folders whose UIDs reached :data:`JOURNAL_MIN` are
journaled, and only messages stored from bytes in memory (a message spooled to a
file, over the SMTP in-memory limit, is read from its file at the first search). A
journal that grows after a process loaded its folder is read at the next start. A
file that would take more than half of the cache's budget in memory is not loaded
(about 250,000 messages of 500 octets with the default budget).
"""

from __future__ import annotations

import hashlib
import json
import logging
import operator
import os
import queue
import struct
import sys
import threading
import time
from array import array
from bisect import bisect_right
from collections.abc import Container
from itertools import accumulate, compress, count
from operator import methodcaller
from pathlib import Path

log = logging.getLogger(__name__)

MAGIC = b"PRHC1\n"
_COUNTS = struct.Struct("<II")
ENTRY_OVERHEAD = 200
"""Octets charged per indexed record of a loaded file beyond its path: its entries in
the file's index and the cache's map of paths, the record number."""
MAYBE_KEPT = 8
"""Quick-test answers (:meth:`Loaded.maybe`) kept per loaded file, by needle."""
CHUNK = 8192
"""Records done per C-level pass in a load or a write: a pass holds the interpreter
lock throughout (the event loop waits), so over 100,000 records one was a 40 ms stall;
over this many it is a few ms."""


def file_name(folder: tuple[object, ...]) -> str:
    """The name of a folder's file: a hash of its key (post office, mailbox, folder name,
    UIDVALIDITY), so that a name needs no escaping and a folder made again under the
    same name (a new UIDVALIDITY) starts a new file."""
    key = json.dumps(list(folder), default=str).encode()
    return hashlib.sha256(key).hexdigest() + ".headers"


_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")


def flatten(blocks: bytes) -> bytes:
    """Blocks as :attr:`Loaded.flat` holds them: lower-cased, every CR and LF removed,
    in one pass (a third of the time of ``lower`` then ``replace``). Removing lone CRs
    and LFs as well as CRLFs only keeps more messages than
    ``HeaderView.may_contain`` for a needle without them, and no
    removal spans two blocks, so each block's part is where its length says."""
    return blocks.translate(_LOWER, b"\r\n")


def quick_facts(raws: list[bytes], pause: float = 0.0) -> tuple[list[int], set[int]]:
    """Each block's length after :func:`flatten`, and the numbers of the blocks the
    quick test cannot rule on: as ``HeaderView.may_contain``,
    those with 8-bit octets or encoded words, or nothing but line ends. In C-level
    passes of :data:`CHUNK` blocks, sleeping ``pause`` seconds after each: the writer
    thread gives way to the searches it shares the interpreter with."""
    flats: list[int] = []
    unsure: set[int] = set()
    for first in range(0, len(raws), CHUNK):
        if first and pause:
            time.sleep(pause)
        chunk = raws[first:first + CHUNK]
        flats += map(len, map(_no_line_ends, chunk))
        unsure.update(compress(count(first), map(operator.not_, flats[first:])))
        unsure.update(compress(count(first), map(operator.not_, map(bytes.isascii, chunk))))
        joined, ends = b"".join(chunk), list(accumulate(map(len, chunk), initial=0))
        at = joined.find(b"=?")
        while at >= 0:              # one spanning two blocks marks the first: harmless
            number = bisect_right(ends, at) - 1
            unsure.add(first + number)
            at = joined.find(b"=?", ends[number + 1])
    return flats, unsure


_no_line_ends = methodcaller("translate", None, b"\r\n")


def encode(paths: list[str], blocks: list[bytes | memoryview], flats: list[int],
           unsure: set[int]) -> list[bytes | memoryview]:
    """A folder's file, in pieces for one ``writelines``: record ``n`` is ``paths[n]``,
    ``blocks[n]`` and :func:`quick_facts`' ``flats[n]``, ``n in unsure``."""
    joined = "\0".join(paths).encode("utf-8", "surrogateescape")
    lengths, flat_lengths = array("I", map(len, blocks)), array("I", flats)
    if sys.byteorder == "big":
        lengths.byteswap()
        flat_lengths.byteswap()
    flags = bytearray(len(blocks))
    for number in unsure:
        flags[number] = 1
    return [MAGIC, _COUNTS.pack(len(blocks), len(joined)), lengths.tobytes(),
            flat_lengths.tobytes(), flags, joined, *blocks]


def decode(data: bytes, wanted: Container[str] | None) -> Loaded | None:
    """The file ``data`` in memory, its records indexed for the paths in ``wanted`` (the
    folder's messages now; None: every record, which for 100,000 saves making the set
    of their paths and testing each, 80 ms here); None when it is not a whole file of
    this format (another version, cut short, lengths that do not add up)."""
    head = len(MAGIC) + _COUNTS.size
    if len(data) < head or not data.startswith(MAGIC):
        return None
    records, size = _COUNTS.unpack_from(data, len(MAGIC))
    start = head + 9 * records + size
    if start > len(data):
        return None
    lengths, flats = array("I"), array("I")
    lengths.frombytes(data[head:head + 4 * records])
    flats.frombytes(data[head + 4 * records:head + 8 * records])
    if sys.byteorder == "big":
        lengths.byteswap()
        flats.byteswap()
    ends = array("q", accumulate(lengths, initial=0))
    if start + ends[-1] != len(data):
        return None
    paths = data[start - size:start].decode("utf-8", "surrogateescape").split("\0") \
        if records else []
    if len(paths) != records:
        return None
    blocks = data[start:]
    fends = array("q", accumulate(flats, initial=0))
    flat: list[bytes] = []
    index: dict[str, int] = {}
    for first in range(0, records, CHUNK):
        last = min(first + CHUNK, records)
        flat.append(flatten(blocks[ends[first]:ends[last]]))
        if len(flat[-1]) != fends[last] - fends[first]:
            return None
        if wanted is not None:
            chunk = paths[first:last]
            index.update(compress(zip(chunk, count(first)), map(wanted.__contains__, chunk)))
    if wanted is None:
        index = dict(zip(paths, range(records), strict=True))
    flagged = data[head + 8 * records:head + 9 * records]
    return Loaded(blocks, ends, flat, fends, index, set(compress(count(), flagged)))


class Loaded:
    """A folder's file in memory: the blocks as one string and where each starts, the
    same flattened for the quick test (in parts of :data:`CHUNK` blocks), and record
    numbers by path (only for the folder's messages of the moment)."""

    __slots__ = ("_maybe", "_view", "blocks", "cost", "ends", "fends", "flat", "index",
                 "records", "unsure")

    def __init__(self, blocks: bytes, ends: array[int], flat: list[bytes],
                 fends: array[int], index: dict[str, int], unsure: set[int]) -> None:
        self.blocks = blocks
        self._view = memoryview(blocks)
        self.ends = ends
        self.flat = flat
        self.fends = fends
        self.index = index
        self.records = len(ends) - 1            # in the file, dead ones included
        self.unsure = unsure
        self._maybe: dict[str, Container[int]] = {}
        self.cost = len(blocks) + fends[-1] + ends.itemsize * (len(ends) + len(fends)) + \
            sum(map(len, index)) + ENTRY_OVERHEAD * len(index)
        """Octets charged against the cache's budget."""

    def block(self, number: int) -> bytes:
        return self.blocks[self.ends[number]:self.ends[number + 1]]

    def facts(self, number: int) -> tuple[memoryview, int, bool]:
        """Block ``number`` (not copied) and its :func:`quick_facts`, for :func:`encode`."""
        ends, fends = self.ends, self.fends
        return (self._view[ends[number]:ends[number + 1]],
                fends[number + 1] - fends[number], number in self.unsure)

    def maybe(self, needle: str) -> Container[int]:
        """The records that may have a header value containing ``needle`` (casefolded):
        ``HeaderView.may_contain`` for all at once, a substring
        search through :attr:`flat` that jumps to the next block at each hit, plus
        the blocks the test cannot rule on. Kept for a few needles."""
        found = self._maybe.get(needle)
        if found is not None:
            return found
        if not needle:
            return range(self.records)
        if "\r" in needle or "\n" in needle:     # flatten() removed them all
            return range(self.records)
        hits = set(self.unsure)
        if needle.isascii():
            fends, wanted = self.fends, needle.encode()
            for first, part in zip(range(0, self.records, CHUNK), self.flat, strict=True):
                base, last = fends[first], min(first + CHUNK, self.records)
                at = part.find(wanted)
                while at >= 0:
                    number = bisect_right(fends, base + at, first, last) - 1
                    hits.add(number)
                    at = part.find(wanted, fends[number + 1] - base)
        if len(self._maybe) >= MAYBE_KEPT:
            self._maybe.clear()
        self._maybe[needle] = hits
        return hits


# -- reading a header block ------------------------------------------------------------

_FIRST_READ = 8192


def read_header(path: str) -> bytes:
    """The start of the message file at ``path`` up to and including the first empty
    line (CRLF line ends): the header block, parsed later only if a search needs it."""
    with open(path, "rb") as f:
        data = f.read(_FIRST_READ)
        if len(data) == _FIRST_READ and b"\n\n" not in data and b"\n\r\n" not in data:
            data += f.read()
    return _header_block(data)


def header_of(message: bytes | bytearray | memoryview) -> bytes:
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


# -- the journal -------------------------------------------------------------------------

JOURNAL = ".journal"
"""Added to a folder's file name: the frames the message store appended since."""
JOURNAL_MIN = 256
"""The UID from which a folder's new messages are journaled (UIDs are never reused:
below it the folder is small, and its first search reads few files: the IMAP cache
loads a folder's file only for a search that would read more than 256)."""
BATCH = 4096


def _frame_end(data: bytes, at: int) -> int | None:
    """Where the whole file-format frame starting at ``at`` ends; None if none does."""
    head = at + len(MAGIC) + _COUNTS.size
    if len(data) < head or not data.startswith(MAGIC, at):
        return None
    records, size = _COUNTS.unpack_from(data, at + len(MAGIC))
    lengths = array("I")
    if head + 9 * records + size > len(data):
        return None
    lengths.frombytes(data[head:head + 4 * records])
    if sys.byteorder == "big":
        lengths.byteswap()
    end = head + 9 * records + size + sum(lengths)
    return end if end <= len(data) else None


def merge(parts: list[bytes], careful: bool = False) -> bytes:
    """One file of the frames in ``parts`` (a folder's file, then its journal), their
    sections joined: no work per record. Each part is read up to its first frame that
    is not whole (a damaged file, a journal cut short by a crash).

    ``careful`` (when the quick merge did not :func:`decode`: a frame torn by a crash
    and whole ones appended after it): each frame is decoded on its own first, and
    after one that is not sound the next frame is looked for by its magic."""
    frames: list[tuple[bytes, int, int, int]] = []     # data, start, records, path octets
    for data in parts:
        at = 0
        while at >= 0:
            end = _frame_end(data, at)
            if end is not None and (not careful or decode(data[at:end], ()) is not None):
                records, size = _COUNTS.unpack_from(data, at + len(MAGIC))
                frames.append((data, at, records, size))
                at = end if end < len(data) else -1
            elif careful:
                at = data.find(MAGIC, at + 1)
            else:
                break
    sections: list[list[bytes]] = [[], [], [], [], []]
    for data, at, records, size in frames:
        head = at + len(MAGIC) + _COUNTS.size
        cuts = (head, head + 4 * records, head + 8 * records, head + 9 * records,
                head + 9 * records + size, _frame_end(data, at))
        for number in range(5):
            sections[number].append(data[cuts[number]:cuts[number + 1]])
    paths = b"\0".join(p for p in sections[3] if p)
    return b"".join([MAGIC, _COUNTS.pack(sum(f[2] for f in frames), len(paths)),
                     *sections[0], *sections[1], *sections[2], paths, *sections[4]])


class HeaderJournal:
    """The message store's side: new messages' header blocks appended to their
    folders' journals by one background thread, a frame per folder and batch, so
    that storing a message costs a queue put."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._queue: queue.SimpleQueue[tuple[str, str, bytes] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.frames = 0                     # statistics, for tests

    def appended(self, folder: tuple[object, ...], uid: int, path: str,
                 header: bytes | None) -> None:
        """Message ``uid`` stored at ``path`` in ``folder`` (its key: post office,
        mailbox, folder name, UIDVALIDITY), ``header`` its block (None: not in hand)."""
        if header is None or uid < JOURNAL_MIN:
            return
        self._queue.put((file_name(folder) + JOURNAL, path, header))
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, daemon=True,
                                                    name="header-journal")
                    self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch: dict[str, tuple[list[str], list[bytes]]] = {}
            stop = item is None
            while item is not None:
                name, path, header = item
                paths, blocks = batch.setdefault(name, ([], []))
                paths.append(path)
                blocks.append(header)
                if sum(len(p) for p, _ in batch.values()) >= BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                stop = stop or item is None
            for name, (paths, blocks) in batch.items():
                self._append(name, paths, blocks)
            if stop:
                return

    def _append(self, name: str, paths: list[str], blocks: list[bytes]) -> None:
        try:
            flats, unsure = quick_facts(blocks)
            frame = b"".join(encode(paths, list(blocks), flats, unsure))
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.directory / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                         0o600)
            try:
                view = memoryview(frame)    # one write (O_APPEND keeps frames whole)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            self.frames += 1
        except Exception as exc:        # a cache: never a failed delivery
            log.warning("could not append to the IMAP header journal %s: %s", name, exc)
