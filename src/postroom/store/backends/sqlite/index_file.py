"""Snapshots of big folders' indexes on disk, so the first SELECT after a start is fast
(issue 8: SELECT of a 100,000-message folder under 50 ms).

Listing 100,000 rows from SQLite takes about 250 ms here (80 ms for the UIDs alone),
which a folder index (:mod:`.folder_index`) then keeps in memory. A snapshot is that
index written to ``DIR/cache/folder-index/<folder id>.index``: read back, it is
brought up to date by the same queries that update an index in memory (the rows whose
mod-sequence is above the snapshot's, the UIDs removed since), so a stale snapshot is
never wrong, only slower. Dovecot keeps its ``dovecot.index`` for the same reason.

Two kinds of process write them. The IMAP service writes the indexes it builds
(:meth:`Snapshots.consider`). Every process that stores mail (delivery, IMAP APPEND,
POP retrieval) brings a big folder's snapshot up to date in a background thread every
:data:`EVERY_MODSEQS` mod-sequences (:meth:`Snapshots.appended`), as Dovecot's
delivery agent updates its index: so the first SELECT of a folder filled while no
IMAP session looked reads a snapshot at most that far behind, not 100,000 rows.

The format is ours (nothing in the standard library or our dependencies stores
columns of numbers and strings this cheaply): a line naming the format, a JSON line
(the folder's id, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, the message count, the distinct
flag sets, the byte order), then the columns as machine arrays (UIDs, sizes, internal
dates, mod-sequences, flag-set numbers) and the message paths joined by newlines.
Loading is a file read and one C-level conversion per column, a few milliseconds for
100,000 messages. Files are written to a temporary name and renamed into place, so a
reader sees a whole snapshot or none; one whose lengths do not add up, of another
format, or of another folder is ignored (the folder is then listed from the store).
Within lengths that add up the content is trusted, not checked item by item (that
took longer than the rest of a load): the folder is the service's own, mode 0700.

Known limits: snapshots are written only for folders of at least
:data:`MIN_MESSAGES` messages; flag changes and expunges by other means than IMAP (the
web mail, age-based deletion) refresh nothing, they are read as changes since the
snapshot at the next SELECT; those of deleted folders stay until the cache folder is
emptied (safe whenever the service is stopped). Keeping a 100,000-message folder's
snapshot current costs a process that delivers into it about 40 ms of a background
thread every 1,000 messages.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from array import array
from collections.abc import MutableSequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from postroom.store import cache_file

if TYPE_CHECKING:
    from postroom.store import Store
    from postroom.store.backends.sqlite.folder_index import FolderIndex

log = logging.getLogger(__name__)

MAGIC = b"postroom folder index 1\n"
FOLDER = "folder-index"
"""The snapshots' folder in ``DIR/cache``."""
MIN_MESSAGES = 2000
EVERY_MODSEQS = 1000
"""A snapshot is written again once the folder moved this many mod-sequences past the
last one: updating from a snapshot reads what changed since, so this bounds that."""

_NUMBERS = (("uids", "I"), ("sizes", "q"), ("dates", "d"), ("modseqs", "q"),
            ("flags", "I"))


class Columns(NamedTuple):
    """The facts of every message of an index but its UID, one list per field, in the
    order of the index's UIDs."""

    sizes: MutableSequence[int]
    flags: MutableSequence[tuple[str, ...]]
    dates: MutableSequence[float]
    modseqs: MutableSequence[int]
    paths: MutableSequence[str] | bytes
    """bytes: as a snapshot holds them, joined by newlines (:func:`path_list` splits
    them, once a command needs them: splitting 100,000 is a fifth of a load)."""


def path_list(paths: MutableSequence[str] | bytes) -> MutableSequence[str]:
    return (paths.decode().split("\n") if paths else []) if isinstance(paths, bytes) \
        else paths


class Snapshot(NamedTuple):
    folder_id: int
    state: tuple[int, int, int]
    uids: list[int]
    columns: Columns


def encode(folder_id: int, state: tuple[int, int, int], uids: list[int],
           columns: Columns) -> list[bytes]:
    """The file's content, in pieces (written with one ``writelines``)."""
    sets: dict[tuple[str, ...], int] = {}
    numbers = [sets.setdefault(f, len(sets)) for f in columns.flags]
    paths = columns.paths if isinstance(columns.paths, bytes) else \
        "\n".join(columns.paths).encode()
    head = {"folder": folder_id, "state": list(state), "count": len(uids),
            "flags": [" ".join(f) for f in sets], "paths": len(paths),
            "byteorder": sys.byteorder}
    values = {"uids": uids, "sizes": columns.sizes, "dates": columns.dates,
              "modseqs": columns.modseqs, "flags": numbers}
    out = [MAGIC, json.dumps(head).encode() + b"\n"]
    out += [array(code, values[name]).tobytes() for name, code in _NUMBERS]
    out.append(paths)
    return out


def decode(data: bytes) -> Snapshot | None:
    """The snapshot in ``data``, or None when it is not a whole one of this format."""
    if not data.startswith(MAGIC):
        return None
    end = data.find(b"\n", len(MAGIC))
    try:
        head = json.loads(data[len(MAGIC):end])
        count, size = int(head["count"]), int(head["paths"])
        sets = [tuple(str(s).split()) for s in head["flags"]]
        state = tuple(int(v) for v in head["state"])
        folder_id = int(head["folder"])
    except (ValueError, KeyError, TypeError):
        return None
    if end < 0 or head.get("byteorder") != sys.byteorder or len(state) != 3:
        return None
    at, view, columns = end + 1, memoryview(data), {}
    for name, code in _NUMBERS:
        column = array(code)
        length = count * column.itemsize
        if at + length > len(data):
            return None
        column.frombytes(view[at:at + length])
        columns[name] = column
        at += length
    if at + size != len(data):
        return None
    paths = data[at:]
    numbers = columns["flags"]
    if len(sets) == 1:          # the commonest folder: every message has the same flags
        flags = [sets[0]] * count
    else:
        try:
            flags = list(map(sets.__getitem__, numbers))
        except IndexError:
            return None
    # The UIDs as a list (sessions copy and change it); the other numbers stay arrays,
    # which index as fast and are copied into lists only by an update.
    return Snapshot(folder_id, (state[0], state[1], state[2]), columns["uids"].tolist(),
                    Columns(columns["sizes"], flags, columns["dates"], columns["modseqs"],
                            paths))


class Snapshots:
    """The snapshots of one service: read on a folder's first listing, written in the
    background (one thread: a write never delays a command)."""

    def __init__(self, folder: Path, min_messages: int | None = None,
                 every: int | None = None) -> None:
        self.folder = folder
        self.min_messages = MIN_MESSAGES if min_messages is None else min_messages
        self.every = EVERY_MODSEQS if every is None else every
        self._written: dict[int, int] = {}     # folder id -> HIGHESTMODSEQ on disk
        self._drift: dict[int, int] = {}       # folder id -> FolderIndex.drift written
        self._pending: set[int] = set()
        self._lock = threading.Lock()
        self._writer: ThreadPoolExecutor | None = None
        self.loads = 0                          # statistics, for tests and benchmarks
        self.writes = 0

    def path(self, folder_id: int) -> Path:
        return self.folder / f"{folder_id}.index"

    def load(self, folder_id: int, uidvalidity: int) -> Snapshot | None:
        """The folder's snapshot if there is a sound one of this UIDVALIDITY."""
        try:
            data = self.path(folder_id).read_bytes()
        except OSError:
            return None
        snapshot = decode(data)
        if snapshot is None or snapshot.folder_id != folder_id or \
                snapshot.state[0] != uidvalidity:
            return None
        self.loads += 1
        with self._lock:
            self._written[folder_id] = snapshot.state[2]
            self._drift[folder_id] = 0
        return snapshot

    def appended(self, store: Store, folder_id: int, uid: int, modseq: int) -> None:
        """A message was stored in folder ``folder_id`` with ``uid`` at ``modseq`` by
        this process: bring the folder's snapshot up to date in the background when the
        folder may be big (its UID is at least :attr:`min_messages`, as UIDs are never
        reused) and the snapshot is :attr:`every` mod-sequences behind, or unknown to
        this process. So mail delivered while no IMAP session looks leaves a snapshot
        at most that far behind, and the first SELECT of a big folder never lists it
        in full (cost: about 40 ms for 100,000 messages every 1,000 deliveries)."""
        if uid < self.min_messages:
            return
        with self._lock:
            written = self._written.get(folder_id)
            if folder_id in self._pending or \
                    (written is not None and 0 <= modseq - written < self.every):
                return
            self._pending.add(folder_id)
            writer = self._writer_thread()
        writer.submit(self._refresh, store, folder_id)

    def _refresh(self, store: Store, folder_id: int) -> None:
        from postroom.store.backends.sqlite.folder_index import current_snapshot

        try:
            index = current_snapshot(store, self, folder_id)   # notes the one on disk
            if index is None or len(index.uids) < self.min_messages:
                return
            written = self._written.get(folder_id)
            if written is None or not 0 <= index.state[2] - written < self.every or \
                    index.drift >= self.every:
                self._write(index)
        except Exception:               # a cache: never a failed delivery
            log.exception("could not bring the index snapshot of folder %s up to date",
                          folder_id)
        finally:
            with self._lock:
                self._pending.discard(folder_id)

    def _writer_thread(self) -> ThreadPoolExecutor:
        """The one background thread (under the lock)."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="folder-index")
        return self._writer

    def consider(self, index: FolderIndex) -> None:
        """Write ``index`` out if its folder is big and has none recent enough."""
        if len(index.uids) < self.min_messages:
            return
        folder_id = index.folder_id
        with self._lock:
            written = self._written.get(folder_id)
            if folder_id in self._pending or \
                    (written is not None and 0 <= index.state[2] - written < self.every
                     and index.drift - self._drift.get(folder_id, 0) < self.every):
                return
            self._pending.add(folder_id)
            self._drift[folder_id] = index.drift
            writer = self._writer_thread()
        writer.submit(self._write, index)

    def close(self) -> None:
        """Wait for the writes under way."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=True)

    def _write(self, index: FolderIndex) -> None:
        folder_id = index.folder_id
        try:
            cache_file.write(self.folder, self.path(folder_id).name, encode(
                folder_id, index.state, index.uids, index.columns(split=False)))
            self.writes += 1
            with self._lock:
                self._written[folder_id] = index.state[2]
        except OSError as exc:        # a cache: the folder is listed from the store
            log.warning("could not write the index snapshot of folder %s: %s",
                        folder_id, exc)
        finally:
            with self._lock:
                self._pending.discard(folder_id)
