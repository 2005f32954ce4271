"""The message index of a folder, listed once per folder state and shared by every
IMAP session of a process (issue 8: SELECT of a 100,000-message folder under 50 ms).
Here in the SQLite backend because it reads its tables and because every process that
stores mail keeps big folders' snapshots current (:mod:`.index_file`).

A folder's state is (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ): every append, flag change
and expunge moves HIGHESTMODSEQ, and every message row carries the mod-sequence of its
last change (RFC 7162). So a :class:`FolderIndex` built for one state stays right
until the state moves, and can then be brought up to date cheaply:

- rows with ``modseq`` above the index's HIGHESTMODSEQ (new and changed messages: one
  range query on the ``(folder_id, modseq)`` index);
- the UIDs removed since (the store's ``expunged`` records, kept for QRESYNC: one
  range query on ``(folder_id, modseq)``), so an update costs what changed, not the
  size of the folder. When the index is older than the records reach back
  (``folder.expunged_floor``), ``COUNT(*)`` of the folder tells whether messages went,
  and one UID-only query (covered by the ``(folder_id, uid)`` unique index) says which.

A full listing (one query, one list per column, no per-message objects) happens
only for a folder neither indexed nor kept on disk (:mod:`.index_file`, for big
folders), or after a UIDVALIDITY change. The :class:`MessageInfo` of each message are
made the first time a command needs them, not for SELECT, which needs the UIDs and the
first unseen message only. Indexes are immutable: a session copies the UID list and
shares the info mapping until it changes its view
(:mod:`postroom.services.imap.selected`), so a later update never changes what a
session was told.

Known limits: the SQLite backend only (the queries reach the ``message`` and
``folder`` tables directly); a bounded number of folders (:data:`MAX_FOLDERS`) are
kept, least recently used first out.
"""

from __future__ import annotations

import bisect
import sqlite3
import threading
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator, MutableSequence
from contextlib import contextmanager
from functools import partial
from itertools import compress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from postroom.store.backends.sqlite import index_file
from postroom.store.backends.sqlite.index_file import Columns, path_list
from postroom.store.messages import MessageInfo

if TYPE_CHECKING:
    from postroom.store import Store

MAX_FOLDERS = 256
LOG_MAX = 10_000
Key = tuple[str, str, str]          # post office, mailbox, folder
State = tuple[int, int, int]        # uidvalidity, uidnext, highestmodseq

_COLUMNS = "uid, size, flags, internal_date, modseq, path"
_FOLDER = ("SELECT f.id, f.uidvalidity, f.uidnext, f.highestmodseq, f.expunged_floor "
           "FROM folder f JOIN mailbox "
           "mb ON f.mailbox_id=mb.id JOIN postoffice p ON mb.postoffice_id=p.id WHERE "
           "p.name=? AND mb.name=? AND f.name=?")


_as_info = partial(tuple.__new__, MessageInfo)
"""A :class:`MessageInfo` from a tuple of its fields, without the Python-level
``__new__`` of the named tuple (a third of the time, for a folder's worth at once)."""


class FolderIndex:
    """Every message of one folder at one state, in UID order.

    The per-message facts are held as :class:`Columns` or as the mapping UID ->
    :class:`MessageInfo` (:attr:`info`), made from the columns the first time it is
    asked for: an index read from a snapshot answers SELECT (the UIDs, the first unseen
    message) without making 100,000 objects first.

    ``log_modseqs``/``log_uids``: the UIDs changed, added or removed after mod-sequence
    ``log_floor``, in mod-sequence order (at most :data:`LOG_MAX`), so that a session
    that last synchronised at a mod-sequence not below the floor compares only those
    UIDs with its view instead of the whole folder (:meth:`touched_since`)."""

    def __init__(self, folder_id: int, state: State, uids: list[int],
                 info: dict[int, MessageInfo] | None = None, *,
                 columns: Columns | None = None, log_floor: int = 0,
                 log_modseqs: list[int] | None = None,
                 log_uids: list[int] | None = None, drift: int = 0) -> None:
        assert info is not None or columns is not None
        self.folder_id = folder_id
        self.state = state
        self.uids = uids
        self._info = info
        self._columns = columns
        self._first_unseen: int | None = -1
        self._lock = threading.Lock()
        self.log_floor = log_floor
        self.log_modseqs = log_modseqs if log_modseqs is not None else []
        self.log_uids = log_uids if log_uids is not None else []
        self.drift = drift
        """Messages changed, added or removed since the listing or snapshot this index
        was brought up to date from (a bulk flag change moves HIGHESTMODSEQ by one
        but may change every row: :meth:`.index_file.Snapshots.consider` counts both)."""

    def __repr__(self) -> str:
        return f"FolderIndex({self.folder_id}, {self.state}, {len(self.uids)} messages)"

    @property
    def info(self) -> dict[int, MessageInfo]:
        """UID -> :class:`MessageInfo` of every message (shared: never change it)."""
        info = self._info
        if info is None:
            with self._lock:
                info = self._info
                if info is None:
                    c = self._split_columns()
                    info = self._info = dict(zip(self.uids, map(_as_info, zip(
                        self.uids, c.sizes, c.flags, c.dates, c.modseqs, c.paths,
                        strict=True)), strict=True))
        return info

    @property
    def listed(self) -> bool:
        """Are the :class:`MessageInfo` objects made (:attr:`info` costs nothing)?"""
        return self._info is not None

    def columns(self, split: bool = True) -> Columns:
        """The per-message facts as columns (made from :attr:`info` if need be);
        ``split=False``: the paths may be a snapshot's, joined (for writing one)."""
        columns = self._columns
        if split and columns is not None and isinstance(columns.paths, bytes):
            with self._lock:
                columns = self._split_columns()
        if columns is None:
            info = self._info
            assert info is not None
            rows = [info[uid] for uid in self.uids]
            if rows:
                _, sizes, flags, dates, modseqs, paths = map(list, zip(*rows, strict=True))
            else:
                sizes, flags, dates, modseqs, paths = [], [], [], [], []
            columns = Columns(sizes, flags, dates, modseqs, paths)
        return columns

    def _split_columns(self) -> Columns:
        """The columns with their paths split (the caller holds the lock)."""
        columns = self._columns
        assert columns is not None
        if isinstance(columns.paths, bytes):
            columns = self._columns = columns._replace(paths=path_list(columns.paths))
        return columns

    def has(self, uid: int) -> bool:
        if self._info is not None:
            return uid in self._info
        i = bisect.bisect_left(self.uids, uid)
        return i < len(self.uids) and self.uids[i] == uid

    def touched_since(self, modseq: int) -> list[int] | None:
        """UIDs that may differ from a view synchronised at ``modseq``; None when the
        log does not reach back that far (compare everything then)."""
        if modseq < self.log_floor or modseq > self.state[2]:
            return None
        return self.log_uids[bisect.bisect_right(self.log_modseqs, modseq):]

    def first_unseen(self) -> int | None:
        """The sequence number of the first message without ``\\Seen`` (SELECT's UNSEEN)."""
        if self._first_unseen == -1:
            if self._info is not None:
                info = self._info
                flags: Iterable[tuple[str, ...]] = (info[uid].flags for uid in self.uids)
                self._first_unseen = next((i + 1 for i, f in enumerate(flags)
                                           if "\\Seen" not in f), None)
            else:
                # A folder has few distinct flag sets: the first place of each that
                # lacks the seen flag, each found by a C-level scan (a loop over 100,000
                # messages all seen, the commonest big folder, took 16 ms here).
                assert self._columns is not None
                column = self._columns.flags
                firsts = [column.index(f) for f in set(column) if "\\Seen" not in f]
                self._first_unseen = min(firsts) + 1 if firsts else None
        return self._first_unseen


@contextmanager
def _read_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One snapshot for several reads (the store's connections are in autocommit)."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


Row = tuple[int, int, str, float, int, str]     # the order of _COLUMNS


class _Flags(dict[str, tuple[str, ...]]):
    """A message's flags as the store writes them (space-separated) -> one shared tuple
    per distinct set: a folder has few distinct sets, and equal tuples compare fast."""

    def __missing__(self, flags: str) -> tuple[str, ...]:
        tup = self[flags] = tuple(flags.split())
        return tup


def _infos(rows: list[Row]) -> dict[int, MessageInfo]:
    flags = _Flags()
    return {row[0]: _as_info((row[0], row[1], flags[row[2]], *row[3:])) for row in rows}


def _columns(rows: list[Row]) -> tuple[list[int], Columns]:
    """UIDs and columns of rows in UID order (one pass in C per column)."""
    if not rows:
        return [], Columns([], [], [], [], [])
    uids, sizes, flags, dates, modseqs, paths = map(list, zip(*rows, strict=True))
    return uids, Columns(sizes, list(map(_Flags().__getitem__, flags)), dates, modseqs,
                         paths)


class FolderIndexes:
    """The service's folder indexes (thread-safe: sessions list from the store pool).

    ``snapshots``: a folder (:mod:`.index_file`) where the indexes of big folders are
    kept between runs, so that the first SELECT after a start reads one file and what
    changed since, not the whole folder's rows (None: nothing kept)."""

    def __init__(self, max_folders: int = MAX_FOLDERS,
                 snapshots: index_file.Snapshots | Path | None = None) -> None:
        self.max_folders = max_folders
        self._indexes: OrderedDict[Key, FolderIndex] = OrderedDict()
        self._lock = threading.Lock()
        self.snapshots = index_file.Snapshots(snapshots) if isinstance(snapshots, Path) \
            else snapshots
        self.full_listings = 0          # statistics, for tests and benchmarks
        self.updates = 0

    def peek(self, key: Key, state: State) -> FolderIndex | None:
        """The cached index of ``key`` if it is at ``state`` (no store access: when new
        mail wakes thousands of idling sessions, one lists and the others reuse it)."""
        index = self._indexes.get(key)
        return index if index is not None and index.state == state else None

    def small_update(self, key: Key, state: State, most: int = 1000) -> bool:
        """Would :meth:`get` only update an index of ``key`` by at most ``most``
        mod-sequences (a few small queries, cheap enough for the event loop)?"""
        index = self._indexes.get(key)
        return index is not None and index.state[0] == state[0] and \
            0 <= state[2] - index.state[2] <= most

    def get(self, store: Store, postoffice: str, mailbox: str, folder: str,
            ) -> FolderIndex | None:
        """The index at the folder's current state; None if the folder does not exist."""
        conn = store.conn
        cursor = conn.cursor()
        cursor.row_factory = None
        # One read transaction, so the state and the rows agree.
        with _read_transaction(conn):
            row = cursor.execute(_FOLDER, (postoffice, mailbox, folder)).fetchone()
            if row is None:
                return None
            folder_id, state = int(row[0]), (int(row[1]), int(row[2]), int(row[3]))
            key = (postoffice, mailbox, folder)
            with self._lock:
                old = self._indexes.get(key)
                if old is not None:
                    self._indexes.move_to_end(key)
            if old is None and self.snapshots is not None:
                snapshot = self.snapshots.load(folder_id, state[0])
                if snapshot is not None:
                    old = FolderIndex(folder_id, snapshot.state, snapshot.uids,
                                      columns=snapshot.columns, log_floor=snapshot.state[2])
            if old is not None and old.state == state and old.folder_id == folder_id:
                index = old
            elif old is None or old.folder_id != folder_id or old.state[0] != state[0]:
                index = self._full(cursor, folder_id, state)
            else:
                index = self._update(cursor, old, state, floor=int(row[4]))
        with self._lock:
            current = self._indexes.get(key)
            if current is None or current.state[2] <= state[2]:
                self._indexes[key] = index
                self._indexes.move_to_end(key)
            while len(self._indexes) > self.max_folders:
                self._indexes.popitem(last=False)
        if self.snapshots is not None:
            self.snapshots.consider(index)
        return index

    def advance(self, key: Key, state: State, changed: dict[int, MessageInfo],
                removed: tuple[int, ...] = ()) -> bool:
        """Bring the index of ``key`` to ``state`` with a change this process has just
        committed (an IMAP STORE's flags, an APPEND's message, an EXPUNGE): ``changed``
        holds the messages it added or changed, each at mod-sequence ``state[2]``,
        ``removed`` the UIDs it removed. Done only when the index is exactly one
        mod-sequence behind, so that nothing else can have happened in between (every
        change takes a mod-sequence of its own), and saves the sessions' next look at
        the folder the queries of an update (:meth:`get`). False when it does not
        apply (or the index holds columns only); the next :meth:`get` then reads the
        store."""
        with self._lock:
            old = self._indexes.get(key)
            if old is None or not old.listed or old.state[0] != state[0] or \
                    old.state[2] + 1 != state[2]:
                return False
            old_info = old.info
            added = sorted(u for u in changed if u not in old_info)
            if list(range(old.state[1], state[1])) != added or \
                    any(m.modseq != state[2] for m in changed.values()) or \
                    any(u not in old_info or u in changed for u in removed):
                return False
            info = dict(old_info)
            info.update(changed)
            uids = old.uids + added if added else old.uids
            if removed:
                for uid in removed:
                    del info[uid]
                gone = set(removed)
                uids = [u for u in uids if u not in gone]
            touched = sorted([*changed, *removed])
            modseqs = old.log_modseqs + [state[2]] * len(touched)
            if len(modseqs) > LOG_MAX:      # rare: the next update starts the log afresh
                return False
            new = self._indexes[key] = FolderIndex(
                old.folder_id, state, uids, info, log_floor=old.log_floor,
                log_modseqs=modseqs, log_uids=old.log_uids + touched,
                drift=old.drift + len(touched))
            self._indexes.move_to_end(key)
        if self.snapshots is not None:
            self.snapshots.consider(new)
        return True

    def current(self, key: Key) -> FolderIndex | None:
        """The index of ``key`` as it is (whatever its state), or None."""
        return self._indexes.get(key)

    def close(self) -> None:
        """Wait for snapshots being written (a service stopping)."""
        if self.snapshots is not None:
            self.snapshots.close()

    def _full(self, cursor: sqlite3.Cursor, folder_id: int, state: State) -> FolderIndex:
        self.full_listings += 1
        rows = cursor.execute(
            f"SELECT {_COLUMNS} FROM message WHERE folder_id=? ORDER BY uid",
            (folder_id,)).fetchall()
        uids, columns = _columns(rows)
        return FolderIndex(folder_id, state, uids, columns=columns, log_floor=state[2])

    def _update(self, cursor: sqlite3.Cursor, old: FolderIndex, state: State,
                floor: int) -> FolderIndex:
        """``old`` brought to ``state``: the rows changed since, and the UIDs removed
        (from the store's records, or by comparing UIDs when those do not reach back)."""
        self.updates += 1
        rows: list[Row] = cursor.execute(
            f"SELECT {_COLUMNS} FROM message WHERE folder_id=? AND modseq>?",
            (old.folder_id, old.state[2])).fetchall()
        log: list[tuple[int, int]] | None = None      # (modseq, uid) of what changed
        live: set[int] | None = None                  # every UID, when removals unknown
        if old.state[2] >= floor:
            # Every removal since the old state is on record: drop exactly those.
            log = [(row[4], row[0]) for row in rows]
            log += cursor.execute(
                "SELECT modseq, uid FROM expunged WHERE folder_id=? AND modseq>?",
                (old.folder_id, old.state[2])).fetchall()
            removed = {uid for modseq, uid in log[len(rows):] if old.has(uid)}
        else:
            count = cursor.execute(
                "SELECT COUNT(*) FROM message WHERE folder_id=?",
                (old.folder_id,)).fetchone()[0]
            added = sum(1 for row in rows if not old.has(row[0]))
            removed = set()
            if count != len(old.uids) + added:
                live = {r[0] for r in cursor.execute(
                    "SELECT uid FROM message WHERE folder_id=?", (old.folder_id,))}
                removed = {uid for uid in old.uids if uid not in live}
        drift = old.drift + len(rows) + len(removed)
        if old.listed:
            uids, info = _updated_info(old, rows, removed)
            new = FolderIndex(old.folder_id, state, uids, info, drift=drift)
        else:
            uids, columns = _updated_columns(old, rows, removed)
            new = FolderIndex(old.folder_id, state, uids, columns=columns, drift=drift)
        if log is None:             # removals unknown in detail: the log starts afresh
            new.log_floor = state[2]
            return new
        log.sort()
        modseqs = old.log_modseqs + [m for m, _ in log]
        touched = old.log_uids + [u for _, u in log]
        log_floor = old.log_floor
        if len(modseqs) > LOG_MAX:
            cut = len(modseqs) - LOG_MAX // 2
            log_floor = modseqs[cut - 1]
            while cut < len(modseqs) and modseqs[cut] == log_floor:
                cut += 1
            modseqs, touched = modseqs[cut:], touched[cut:]
        new.log_floor, new.log_modseqs, new.log_uids = log_floor, modseqs, touched
        return new


def current_snapshot(store: Store, snapshots: index_file.Snapshots, folder_id: int,
                     ) -> FolderIndex | None:
    """The index of folder ``folder_id`` as the store has it now, from its snapshot and
    what changed since (or a full listing when it has none): what a process that
    delivers mail writes out for the next IMAP session's first SELECT. None if the
    folder is gone. Nothing is kept in memory."""
    conn = store.conn
    cursor = conn.cursor()
    cursor.row_factory = None
    scratch = FolderIndexes()
    with _read_transaction(conn):
        row = cursor.execute(
            "SELECT uidvalidity, uidnext, highestmodseq, expunged_floor FROM folder "
            "WHERE id=?", (folder_id,)).fetchone()
        if row is None:
            return None
        state = (int(row[0]), int(row[1]), int(row[2]))
        snapshot = snapshots.load(folder_id, state[0])
        if snapshot is None:
            return scratch._full(cursor, folder_id, state)
        old = FolderIndex(folder_id, snapshot.state, snapshot.uids,
                          columns=snapshot.columns, log_floor=snapshot.state[2])
        if old.state == state:
            return old
        return scratch._update(cursor, old, state, floor=int(row[3]))


def _updated_info(old: FolderIndex, rows: list[Row], removed: set[int],
                  ) -> tuple[list[int], dict[int, MessageInfo]]:
    """The UIDs and info of ``old`` with ``rows`` changed or added and ``removed`` gone
    (a copy of the mapping: the old index is shared and stays as it is)."""
    changed = _infos(rows)
    info = dict(old.info)
    info.update(changed)
    for uid in removed:
        info.pop(uid, None)
    last = old.uids[-1] if old.uids else 0
    new = sorted(u for u in changed if u > last)
    if len(info) == len(old.uids) - len(removed) + len(new) and \
            all(old.has(u) for u in changed if u <= last):
        uids = [u for u in old.uids if u not in removed] if removed else old.uids
        uids = uids + new if new else uids
    else:                           # a changed UID below the last one was not there
        uids = sorted(info)
    return uids, info


def _updated_columns(old: FolderIndex, rows: list[Row], removed: set[int],
                     ) -> tuple[list[int], Columns]:
    """:func:`_updated_info` for an index that holds columns only, without making
    its :class:`MessageInfo` objects: the columns are copied (a snapshot's numbers stay
    machine arrays: copying them is a memory copy), changed rows written at their
    positions, removed ones left out, new ones added at the end (a snapshot's paths
    stay joined unless some are removed)."""
    uids = old.uids
    names = _Flags()
    changes: list[tuple[int, Row]] = []
    new: list[Row] = []
    for row in sorted(rows):
        i = bisect.bisect_left(uids, row[0])
        if i < len(uids) and uids[i] == row[0]:
            changes.append((i, row))
        else:
            new.append(row)
    more, extra = _columns(new)
    in_order = not (uids and more and more[0] <= uids[-1])
    c = old._columns
    if c is None or (isinstance(c.paths, bytes) and (removed or not in_order)):
        c = old.columns()
    sizes, flags, dates, modseqs = (col[:] for col in c[:4])
    paths = c.paths if isinstance(c.paths, bytes) else c.paths[:]
    for i, row in changes:
        flags[i], modseqs[i] = names[row[2]], row[4]
    uids = list(uids)
    if removed:
        assert not isinstance(paths, bytes)
        keep = [uid not in removed for uid in uids]
        uids, sizes, flags, dates, modseqs, paths = (
            _kept(col, keep) for col in (uids, sizes, flags, dates, modseqs, paths))
    if not in_order:                     # a new UID below the last: sort it all
        assert not isinstance(paths, bytes)
        merged = sorted(zip([*uids, *more], [*sizes, *extra.sizes],
                            [*flags, *extra.flags], [*dates, *extra.dates],
                            [*modseqs, *extra.modseqs], [*paths, *extra.paths],
                            strict=True))
        uids, sizes, flags, dates, modseqs, paths = map(list, zip(*merged, strict=True))
    elif new:
        for column, more_of_it in zip((uids, sizes, flags, dates, modseqs),
                                      (more, *extra[:4]), strict=True):
            column.extend(more_of_it)
        if isinstance(paths, bytes):
            paths = b"\n".join([paths, *(p.encode() for p in extra.paths)] if paths
                               else [p.encode() for p in extra.paths])
        else:
            paths.extend(extra.paths)
    return uids, Columns(sizes, flags, dates, modseqs, paths)


def _kept(column: MutableSequence[Any], keep: list[bool]) -> MutableSequence[Any]:
    """The items of ``column`` where ``keep`` is true, as a list or an array like it."""
    if isinstance(column, array):
        return array(column.typecode, compress(column, keep))
    return list(compress(column, keep))
