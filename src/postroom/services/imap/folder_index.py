"""The message index of a folder, listed once per folder state and shared by every
session of the service (issue 8: SELECT of a 100,000-message folder under 50 ms).

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

A full listing (one query, tuples, no per-row objects beyond
:class:`~postroom.store.messages.MessageInfo`) happens only for a folder not yet
indexed or after a UIDVALIDITY change. Indexes are immutable snapshots: a session
copies the UID list and the info mapping into its own view (:mod:`.selected`), so a
later update never changes what a session was told.

Known limits: the SQLite backend only (the queries reach the ``message`` and
``folder`` tables directly, as :func:`.mailboxes.folder_state` does); a bounded number
of folders (:data:`MAX_FOLDERS`) are kept, least recently used first out.
"""

from __future__ import annotations

import bisect
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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


@dataclass
class FolderIndex:
    """Every message of one folder at one state, in UID order.

    ``log_modseqs``/``log_uids``: the UIDs changed, added or removed after mod-sequence
    ``log_floor``, in mod-sequence order (at most :data:`LOG_MAX`), so that a session
    that last synchronised at a mod-sequence not below the floor compares only those
    UIDs with its view instead of the whole folder (:meth:`touched_since`)."""

    folder_id: int
    state: State
    uids: list[int]
    info: dict[int, MessageInfo]
    _first_unseen: int | None = field(default=-1, repr=False)
    log_floor: int = 0
    log_modseqs: list[int] = field(default_factory=list, repr=False)
    log_uids: list[int] = field(default_factory=list, repr=False)

    def touched_since(self, modseq: int) -> list[int] | None:
        """UIDs that may differ from a view synchronised at ``modseq``; None when the
        log does not reach back that far (compare everything then)."""
        if modseq < self.log_floor or modseq > self.state[2]:
            return None
        return self.log_uids[bisect.bisect_right(self.log_modseqs, modseq):]

    def first_unseen(self) -> int | None:
        """The sequence number of the first message without ``\\Seen`` (SELECT's UNSEEN)."""
        if self._first_unseen == -1:
            info = self.info
            self._first_unseen = next((i + 1 for i, uid in enumerate(self.uids)
                                       if "\\Seen" not in info[uid].flags), None)
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


def _infos(rows: list[tuple[int, int, str, float, int, str]]) -> dict[int, MessageInfo]:
    flag_tuples: dict[str, tuple[str, ...]] = {"": ()}
    out: dict[int, MessageInfo] = {}
    for uid, size, flags, internal_date, modseq, path in rows:
        tup = flag_tuples.get(flags)
        if tup is None:
            tup = flag_tuples[flags] = tuple(flags.split())
        out[uid] = MessageInfo(uid, size, tup, internal_date, modseq, path)
    return out


class FolderIndexes:
    """The service's folder indexes (thread-safe: sessions list from the store pool)."""

    def __init__(self, max_folders: int = MAX_FOLDERS) -> None:
        self.max_folders = max_folders
        self._indexes: OrderedDict[Key, FolderIndex] = OrderedDict()
        self._lock = threading.Lock()
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
            if old is not None and old.state == state and old.folder_id == folder_id:
                return old
            if old is None or old.folder_id != folder_id or old.state[0] != state[0]:
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
        apply; the next :meth:`get` then reads the store."""
        with self._lock:
            old = self._indexes.get(key)
            if old is None or old.state[0] != state[0] or old.state[2] + 1 != state[2]:
                return False
            added = sorted(u for u in changed if u not in old.info)
            if list(range(old.state[1], state[1])) != added or \
                    any(m.modseq != state[2] for m in changed.values()) or \
                    any(u not in old.info or u in changed for u in removed):
                return False
            info = dict(old.info)
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
            self._indexes[key] = FolderIndex(
                old.folder_id, state, uids, info, log_floor=old.log_floor,
                log_modseqs=modseqs, log_uids=old.log_uids + touched)
            self._indexes.move_to_end(key)
            return True

    def current(self, key: Key) -> FolderIndex | None:
        """The index of ``key`` as it is (whatever its state), or None."""
        return self._indexes.get(key)

    def _full(self, cursor: sqlite3.Cursor, folder_id: int, state: State) -> FolderIndex:
        self.full_listings += 1
        rows = cursor.execute(
            f"SELECT {_COLUMNS} FROM message WHERE folder_id=? ORDER BY uid",
            (folder_id,)).fetchall()
        info = _infos(rows)
        return FolderIndex(folder_id, state, list(info), info, log_floor=state[2])

    def _update(self, cursor: sqlite3.Cursor, old: FolderIndex, state: State,
                floor: int) -> FolderIndex:
        self.updates += 1
        rows = cursor.execute(
            f"SELECT {_COLUMNS} FROM message WHERE folder_id=? AND modseq>?",
            (old.folder_id, old.state[2])).fetchall()
        changed = _infos(rows)
        info = dict(old.info)
        info.update(changed)
        log: list[tuple[int, int]] | None = None
        if old.state[2] >= floor:
            # Every removal since the old state is on record: drop exactly those.
            log = [(m.modseq, uid) for uid, m in changed.items()]
            for uid, modseq in cursor.execute(
                    "SELECT uid, modseq FROM expunged WHERE folder_id=? AND modseq>?",
                    (old.folder_id, old.state[2])):
                info.pop(uid, None)
                log.append((modseq, uid))
        else:
            count = cursor.execute(
                "SELECT COUNT(*) FROM message WHERE folder_id=?",
                (old.folder_id,)).fetchone()[0]
            if count != len(info):
                live = {r[0] for r in cursor.execute(
                    "SELECT uid FROM message WHERE folder_id=?", (old.folder_id,))}
                info = {uid: m for uid, m in info.items() if uid in live}
        last = old.uids[-1] if old.uids else 0
        new = sorted(u for u in changed if u > last)
        if len(info) == len(old.uids) + len(new) and all(u in info for u in new):
            uids = old.uids + new if new else old.uids
            if len(uids) != len(info):        # pragma: no cover - defensive
                uids = sorted(info)
        else:
            uids = sorted(info)
        # Rebuild the mapping in UID order only when needed (dict order is not used).
        if log is None:             # removals unknown in detail: the log starts afresh
            return FolderIndex(old.folder_id, state, uids, info, log_floor=state[2])
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
        return FolderIndex(old.folder_id, state, uids, info, log_floor=log_floor,
                           log_modseqs=modseqs, log_uids=touched)
