"""Embedded message store: ``.eml`` files under DIR/messages, rows in SQLite.

Contract and manual references: :mod:`postroom.store.messages`.

On disk a message is a plain file an administrator can read, grep and back up::

    DIR/messages/<postoffice>/<mailbox>/<folder>/<time>-<pid>-<n>.eml

The ``message`` row (folder, uid, path, size, date, flags, modseq) is what makes a
message visible; a file without a row is invisible (an orphan) and is removed by
:meth:`SqliteMessageStore.orphans` (``remove=True``). Each row's ``path`` is fixed at
append time, so renaming a folder or mailbox never moves files.

Durable append (crash safety):

1. the caller checks its input and queues the append with the group-commit writer
   (:mod:`postroom.store.groupcommit`), whose writer thread writes the bytes to
   ``DIR/tmp/msg-<pid>-<n>.tmp`` and renames the complete file into its folder
   directory (a reader never sees a partial file). Writing in the writer rather than
   in 20-100 caller threads measured 2× faster: callers then only wait, and the
   writer does not fight them for the GIL;
2. the writer makes the whole batch of files durable with ONE flush — ``syncfs()``
   of the data filesystem (default), or with ``flush_mode="fsync"`` an fsync per file
   plus one per directory (measured 5-8× slower: each new inode forces its own
   journal commit, see ``bench/store_append.py``);
3. one transaction checks each quota, allocates UIDs, inserts the rows and updates
   ``mailbox.used_bytes`` / ``message_count``; then each caller's future completes.

A crash before step 3 commits leaves complete but invisible files (orphans); a crash
after it leaves the message visible. Temporary files of dead processes are deleted
when the store opens. Expunge deletes rows first and files after the commit, so a
crash in between leaves only orphans, never a row without its file.

Untrusted input: folder names (IMAP clients) are validated and never used raw as
paths: each path component is sanitised (:func:`dir_part`). Message bytes are
stored as given. Known limits: ``syncfs`` flushes the whole filesystem (other
processes' dirty data too), which is why ``fsync`` mode exists; the orphan scan
walks the whole tree and is therefore an administrative action, not run at open.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import os
import queue
import re
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from postroom.store.backends.sqlite.index_file import FOLDER as SNAPSHOTS
from postroom.store.backends.sqlite.index_file import Snapshots
from postroom.store.crlf import crlf_facts
from postroom.store.groupcommit import (
    DatabaseOperation,
    GroupCommitWriter,
    Operation,
    WriterClosed,
    WriterStats,
)
from postroom.store.header_file import HeaderJournal, header_of
from postroom.store.messages import (
    DEFAULT_FOLDERS,
    FOLDER_SEPARATOR,
    SPECIAL_USE,
    AppendResult,
    FlagMode,
    FolderInfo,
    MessageData,
    MessageInfo,
    MessageStoreError,
    QuotaExceeded,
    Removal,
    changed_flags,
    check_flags,
    check_folder_name,
    intersect_ranges,
    merge_ranges,
)
from postroom.store.processes import process_alive
from postroom.store.wake import MAILBOX_CHANGES, Waker

if TYPE_CHECKING:
    from postroom.store.store import Store

log = logging.getLogger(__name__)

UIDVALIDITY_KEY = "messages.last_uidvalidity"
TOMBSTONE_WINDOW = 100_000
"""Records of removed UIDs are kept for this many of a folder's latest mod-sequences
(IMAP QRESYNC answers VANISHED from them); older ones are pruned as new ones come."""
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


def dir_part(name: str) -> str:
    """One path component for a post office, mailbox or folder name."""
    part = _UNSAFE.sub("_", name).strip() or "_"
    if part.startswith("."):
        part = "_" + part[1:]
    return part[:120]


def folder_dir(postoffice: str, mailbox: str, folder: str) -> str:
    """Directory (relative to DIR/messages) where new messages of a folder go."""
    parts = [dir_part(postoffice), dir_part(mailbox)]
    parts += [dir_part(p) for p in folder.split(FOLDER_SEPARATOR)]
    return "/".join(parts)


def canonical_folder(name: str) -> str:
    """IMAP treats INBOX case-insensitively (RFC 3501 5.1); we store it as "Inbox"."""
    head, sep, rest = name.partition(FOLDER_SEPARATOR)
    if head.upper() == "INBOX":
        return "Inbox" + sep + rest
    return name


def _load_syncfs() -> object | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.syncfs
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int]
    func.restype = ctypes.c_int
    return func


_syncfs = _load_syncfs()


def syncfs(fd: int) -> None:
    """Flush every dirty page and inode of the filesystem holding ``fd``."""
    if _syncfs is None:  # pragma: no cover - not Linux
        os.sync()
        return
    if _syncfs(fd) != 0:  # type: ignore[operator]
        err = ctypes.get_errno()
        raise OSError(err, f"syncfs: {os.strerror(err)}")


def fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _gaps(present: list[int], last: int) -> list[tuple[int, int]]:
    """The ranges of 1..``last`` not in ``present`` (sorted)."""
    out: list[tuple[int, int]] = []
    expected = 1
    for uid in present:
        if uid > last:
            break
        if uid > expected:
            out.append((expected, uid - 1))
        expected = uid + 1
    if expected <= last:
        out.append((expected, last))
    return out


def _flags_text(flags: Iterable[str]) -> str:
    return " ".join(sorted(flags))


def _flags_tuple(text: str) -> tuple[str, ...]:
    return tuple(text.split()) if text else ()


class _Append:
    """One append, as a group-commit operation: file placed in prepare, row in apply."""

    def __init__(self, owner: SqliteMessageStore, folder_id: int, mailbox_id: int,
                 mailbox_name: str, directory: str, data: MessageData,
                 flags: tuple[str, ...], internal_date: float,
                 delivery_id: str | None = None, ignore_quota: bool = False,
                 folder_key: tuple[str, str, str] = ("", "", "")) -> None:
        self.owner = owner
        self.folder_key = folder_key        # post office, mailbox, folder: the names
        self.header: bytes | None = None   # the header block, for the header journal
        self.delivery_id = delivery_id
        self.ignore_quota = ignore_quota
        self.duplicate = False
        self.folder_id = folder_id
        self.mailbox_id = mailbox_id
        self.mailbox_name = mailbox_name
        self.directory = directory
        self.data: MessageData | None = data
        self.path = ""
        self.size = 0
        self.flags = flags
        self.internal_date = internal_date
        self.crlf: tuple[int, bool] | None = None
        self.result: AppendResult | None = None

    def prepare(self) -> None:
        assert self.data is not None
        if isinstance(self.data, bytes | bytearray | memoryview):
            self.crlf = crlf_facts(self.data)      # recorded with the row (store/crlf.py)
            self.header = header_of(self.data)     # a few µs: no read back for the journal
        self.path, self.size = self.owner._place(self.directory, self.data)
        self.data = None    # do not keep the bytes alive longer than needed

    def apply(self, conn: sqlite3.Connection) -> AppendResult:
        if self.delivery_id is not None:
            seen = conn.execute("SELECT uid, uidvalidity, modseq, size FROM delivery "
                                "WHERE delivery_id=?", (self.delivery_id,)).fetchone()
            if seen is not None:
                self.duplicate = True       # committed() removes the file placed again
                return AppendResult(uid=seen[0], uidvalidity=seen[1], modseq=seen[2],
                                    size=seen[3], duplicate=True)
        box = conn.execute("SELECT quota_bytes, used_bytes FROM mailbox WHERE id=?",
                           (self.mailbox_id,)).fetchone()
        if box is None:
            raise MessageStoreError("mailbox", f"mailbox {self.mailbox_name} was deleted")
        quota, used = box["quota_bytes"], box["used_bytes"]
        if quota is not None and used + self.size > quota and not self.ignore_quota:
            raise QuotaExceeded(self.mailbox_name, self.size, used, quota)
        row = conn.execute(
            "UPDATE folder SET uidnext=uidnext+1, highestmodseq=highestmodseq+1 WHERE id=? "
            "RETURNING uidnext-1 AS uid, highestmodseq, uidvalidity",
            (self.folder_id,)).fetchall()
        if not row:
            raise MessageStoreError("folder", "folder was deleted")
        uid, modseq, uidvalidity = row[0]["uid"], row[0]["highestmodseq"], row[0]["uidvalidity"]
        conn.execute(
            "INSERT INTO message (folder_id, uid, path, size, internal_date, flags, modseq) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.folder_id, uid, self.path, self.size, self.internal_date,
             _flags_text(self.flags), modseq))
        conn.execute("UPDATE mailbox SET used_bytes=used_bytes+?, message_count=message_count+1 "
                     "WHERE id=?", (self.size, self.mailbox_id))
        if self.crlf is not None:
            conn.execute("INSERT OR REPLACE INTO message_crlf_size (path, octets, dot_lines) "
                         "VALUES (?, ?, ?)", (self.path, *self.crlf))
        if self.delivery_id is not None:
            conn.execute("INSERT INTO delivery (delivery_id, folder_id, uid, uidvalidity, "
                         "modseq, size, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (self.delivery_id, self.folder_id, uid, uidvalidity, modseq,
                          self.size, time.time()))
        self.result = AppendResult(uid=uid, uidvalidity=uidvalidity, modseq=modseq,
                                   size=self.size, path=self.path)
        return self.result

    def committed(self) -> None:
        if self.duplicate:
            self.discard()
        elif self.result is not None:
            result = self.result
            self.owner.snapshots.appended(self.owner._store, self.folder_id, result.uid,
                                          result.modseq)
            self.owner.headers.appended((*self.folder_key, result.uidvalidity), result.uid,
                                        result.path, self.header)

    def discard(self) -> None:
        if self.path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.owner.root / self.path)


class _SetFlags(DatabaseOperation):
    """A flag change, as a group-commit operation: the sessions of one process that
    change flags at the same time share one transaction (and its wait for the write
    lock) instead of one each. Not durable (see ``Store.transaction``); the folder is
    checked before anything is written, so no savepoint is needed (see groupcommit)."""

    durable = False
    needs_savepoint = False

    def __init__(self, owner: SqliteMessageStore, postoffice: str, mailbox: str,
                 folder: str, uids: list[int], wanted: set[str], mode: FlagMode) -> None:
        self.owner, self.postoffice, self.mailbox, self.folder = owner, postoffice, mailbox, folder
        self.uids, self.wanted, self.mode = uids, wanted, mode

    def apply(self, conn: sqlite3.Connection) -> int:
        row = self.owner._folder(conn, self.postoffice, self.mailbox, self.folder)
        modseq = row["highestmodseq"] + 1
        changed = False
        wanted, mode = self.wanted, self.mode
        for uid in self.uids:
            msg = conn.execute("SELECT id, flags FROM message WHERE folder_id=? AND uid=?",
                               (row["id"], uid)).fetchone()
            if msg is None:
                continue
            current = set(_flags_tuple(msg["flags"]))
            new = changed_flags(current, wanted, mode)
            if new != current:
                changed = True
                conn.execute("UPDATE message SET flags=?, modseq=? WHERE id=?",
                             (_flags_text(new), modseq, msg["id"]))
        if not changed:
            return int(row["highestmodseq"])
        conn.execute("UPDATE folder SET highestmodseq=? WHERE id=?", (modseq, row["id"]))
        return modseq


class _Expunge(DatabaseOperation):
    """A removal, as a group-commit operation: rows (with their tombstones and the
    mailbox usage) in the batch's transaction, files unlinked once it committed."""

    def __init__(self, owner: SqliteMessageStore, postoffice: str, mailbox: str,
                 folder: str, uids: list[int], caller_unlinks: bool = False) -> None:
        self.owner, self.postoffice, self.mailbox, self.folder = owner, postoffice, mailbox, folder
        self.uids = uids
        self.caller_unlinks = caller_unlinks
        self.paths: list[str] = []

    def apply(self, conn: sqlite3.Connection) -> Removal:
        row = self.owner._folder(conn, self.postoffice, self.mailbox, self.folder)
        marks = ",".join("?" * len(self.uids))
        rows = conn.execute(
            f"DELETE FROM message WHERE folder_id=? AND uid IN ({marks}) "
            "RETURNING uid, path, size", (row["id"], *self.uids)).fetchall()
        modseq = 0
        if rows:
            modseq = self.owner._tombstones(conn, row["id"], [r["uid"] for r in rows])
            self.owner._charge(conn, row["mailbox_id"], -sum(r["size"] for r in rows),
                               -len(rows))
        self.paths = [r["path"] for r in rows]
        if self.paths:      # their recorded CRLF sizes go with them (_NoteCrlfSizes)
            conn.execute(f"DELETE FROM message_crlf_size WHERE path IN "
                         f"({','.join('?' * len(self.paths))})", self.paths)
        return Removal(sorted(r["uid"] for r in rows), modseq)

    def committed(self) -> None:
        # Not in the writer thread: with the file system's online discard an unlink
        # waits for the disk, and the next batch would wait behind it.
        if not self.caller_unlinks:
            self.owner._unlink_later(self.paths)

    def discard(self) -> None:
        self.paths = []         # rolled back: the files still belong to their rows


class _ClaimRecent(DatabaseOperation):
    """A \\Recent claim (see :meth:`SqliteMessageStore.claim_recent`) as a group-commit
    operation: an IMAP session claims after each APPEND, and a claim of its own each
    would queue on the write lock behind the writer's batches. Not durable (a lost
    claim shows a message as \\Recent once more); checked before it writes."""

    durable = False
    needs_savepoint = False

    def __init__(self, folder_id: int, folder: str, mailbox: str, upto: int) -> None:
        self.folder_id, self.folder, self.mailbox, self.upto = folder_id, folder, mailbox, upto

    def apply(self, conn: sqlite3.Connection) -> int:
        current = conn.execute("SELECT recent_uid, uidnext FROM folder WHERE id=?",
                               (self.folder_id,)).fetchone()
        if current is None:
            raise MessageStoreError("folder", f"no folder {self.folder!r} in mailbox "
                                              f"{self.mailbox!r}")
        mark = int(current["recent_uid"])
        upto = min(self.upto, int(current["uidnext"]) - 1)
        if upto > mark:
            conn.execute("UPDATE folder SET recent_uid=? WHERE id=?", (upto, self.folder_id))
        return mark


class _NoteCrlfSizes(DatabaseOperation):
    """Record CRLF sizes (``message_crlf_size``: what POP3 and IMAP's RFC822.SIZE
    report) computed by a reader. A cache of what can be computed again: nobody waits
    for it, and a reader never takes the write lock for it."""

    durable = False
    needs_savepoint = False

    def __init__(self, sizes: list[tuple[str, int, bool | None]]) -> None:
        self.sizes = sizes

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.executemany("INSERT OR REPLACE INTO message_crlf_size (path, octets, dot_lines) "
                         "VALUES (?, ?, ?)", self.sizes)


class SqliteMessageStore:
    """Folders and messages of every mailbox in one data directory."""

    def __init__(self, store: Store, *, flush_mode: str | None = None,
                 max_batch: int = 512) -> None:
        if flush_mode not in (None, "syncfs", "fsync"):
            raise MessageStoreError("flush_mode", "expected syncfs or fsync")
        self._store = store
        self.root = store.home.messages
        self.tmpdir = store.home.tmp
        self.flush_mode = flush_mode or ("syncfs" if _syncfs is not None else "fsync")
        self._counter = itertools.count()
        self._pid = os.getpid()
        self._waker = Waker(store.home.root)
        self._writer = GroupCommitWriter("postroom-messages", store.new_connection,
                                         self._flush, max_batch=max_batch,
                                         after_commit=lambda _ops: self._changed(),
                                         gate=store.write_gate)
        self._doomed: queue.SimpleQueue[list[str] | None] = queue.SimpleQueue()
        self._unlinker: threading.Thread | None = None
        self._unlinker_lock = threading.Lock()
        self.removed_temp_files = self._remove_dead_temp_files()
        # Big folders' indexes on disk, kept current as mail is stored (index_file).
        self.snapshots = Snapshots(store.home.cache / SNAPSHOTS)
        # New messages' header blocks for the IMAP header search (store/header_file.py).
        self.headers = HeaderJournal(store.home.cache / "imap-headers")

    @property
    def writer_stats(self) -> WriterStats:
        return self._writer.stats

    def _changed(self) -> None:
        """Tell other processes (IMAP sessions in IDLE) that a mailbox changed."""
        self._waker.notify([MAILBOX_CHANGES])

    def close(self) -> None:
        self._writer.close()
        self.snapshots.close()
        self.headers.close()
        with self._unlinker_lock:
            unlinker, self._unlinker = self._unlinker, None
        if unlinker is not None:
            self._doomed.put(None)
            unlinker.join(30)
        self._waker.close()

    # -- folders -----------------------------------------------------------------------

    def create_folders(self, conn: sqlite3.Connection, mailbox_id: int,
                       names: Sequence[str] = DEFAULT_FOLDERS) -> None:
        """Create folders inside the caller's open transaction on ``conn``.

        The directory calls this when it creates a mailbox, so the mailbox and its
        folders appear together or not at all. Existing folders are left alone.
        """
        if not conn.in_transaction:
            raise MessageStoreError("conn", "create_folders needs an open transaction")
        for name in names:
            name = canonical_folder(check_folder_name(name))
            exists = conn.execute("SELECT 1 FROM folder WHERE mailbox_id=? AND name=?",
                                  (mailbox_id, name)).fetchone()
            if exists:
                continue
            conn.execute(
                "INSERT INTO folder (mailbox_id, name, uidvalidity, special_use) "
                "VALUES (?, ?, ?, ?)",
                (mailbox_id, name, self._next_uidvalidity(conn), SPECIAL_USE.get(name)))

    def _next_uidvalidity(self, conn: sqlite3.Connection) -> int:
        """Time-based and strictly increasing across all folders ever created."""
        row = conn.execute("SELECT value FROM meta WHERE key=?", (UIDVALIDITY_KEY,)).fetchone()
        last = int(row[0]) if row else 0
        value = max(int(time.time()), last + 1) & 0xFFFFFFFF or 1
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) "
                     "DO UPDATE SET value=excluded.value", (UIDVALIDITY_KEY, str(value)))
        return value

    def create_folder(self, postoffice: str, mailbox: str, name: str) -> FolderInfo:
        name = canonical_folder(check_folder_name(name))
        with self._store.transaction() as conn:
            box = self._mailbox(conn, postoffice, mailbox)
            if conn.execute("SELECT 1 FROM folder WHERE mailbox_id=? AND name=?",
                            (box["id"], name)).fetchone():
                raise MessageStoreError("folder", f"folder {name!r} already exists")
            self.create_folders(conn, box["id"], (name,))
        return next(f for f in self.list_folders(postoffice, mailbox) if f.name == name)

    def list_folders(self, postoffice: str, mailbox: str,
                     only: str | None = None) -> list[FolderInfo]:
        conn = self._store.conn
        box = self._mailbox(conn, postoffice, mailbox)
        where, params = "f.mailbox_id=?", [box["id"]]
        if only is not None:
            where += " AND f.name=?"
            params.append(canonical_folder(only))
        rows = conn.execute(
            "SELECT f.*, COUNT(m.id) AS messages, COALESCE(SUM(m.size), 0) AS size, "
            "COALESCE(SUM(m.uid > f.recent_uid), 0) AS recent "
            f"FROM folder f LEFT JOIN message m ON m.folder_id=f.id WHERE {where} "
            "GROUP BY f.id ORDER BY f.name != 'Inbox', f.name", params).fetchall()
        return [FolderInfo(name=r["name"], uidvalidity=r["uidvalidity"], uidnext=r["uidnext"],
                           highestmodseq=r["highestmodseq"], messages=r["messages"],
                           size=r["size"], subscribed=bool(r["subscribed"]),
                           special_use=r["special_use"], recent=r["recent"]) for r in rows]

    def delete_folder(self, postoffice: str, mailbox: str, name: str) -> int:
        name = canonical_folder(name)
        if name == "Inbox":
            raise MessageStoreError("folder", "the Inbox cannot be deleted")
        with self._store.transaction() as conn:
            folder = self._folder(conn, postoffice, mailbox, name)
            rows = conn.execute("SELECT path, size FROM message WHERE folder_id=?",
                                (folder["id"],)).fetchall()
            conn.execute("DELETE FROM message WHERE folder_id=?", (folder["id"],))
            conn.execute("DELETE FROM folder WHERE id=?", (folder["id"],))
            self._charge(conn, folder["mailbox_id"], -sum(r["size"] for r in rows), -len(rows))
        self._unlink(r["path"] for r in rows)
        return len(rows)

    def rename_folder(self, postoffice: str, mailbox: str, name: str, new_name: str) -> None:
        """Rename a folder and its sub-folders; files stay where they are.

        UIDVALIDITY values are unique across all folders ever created, so the new name
        never shows a UIDVALIDITY that an earlier folder of that name had.
        """
        name = canonical_folder(name)
        new_name = canonical_folder(check_folder_name(new_name))
        if name == "Inbox":
            raise MessageStoreError("folder", "the Inbox cannot be renamed")
        if new_name == "Inbox" or new_name.startswith(name + FOLDER_SEPARATOR):
            raise MessageStoreError("new_name", f"cannot rename {name!r} to {new_name!r}")
        with self._store.transaction() as conn:
            folder = self._folder(conn, postoffice, mailbox, name)
            children = conn.execute(
                "SELECT id, name FROM folder WHERE mailbox_id=? AND (name=? OR "
                "substr(name, 1, ?)=?)", (folder["mailbox_id"], name, len(name) + 1,
                                          name + FOLDER_SEPARATOR)).fetchall()
            for child in children:
                target = new_name + child["name"][len(name):]
                if conn.execute("SELECT 1 FROM folder WHERE mailbox_id=? AND name=?",
                                (folder["mailbox_id"], target)).fetchone():
                    raise MessageStoreError("new_name", f"folder {target!r} already exists")
                conn.execute("UPDATE folder SET name=?, special_use=NULL WHERE id=?",
                             (target, child["id"]))

    # -- append ------------------------------------------------------------------------

    def append(self, postoffice: str, mailbox: str, folder: str, data: MessageData,
               flags: Iterable[str] = (), internal_date: float | None = None,
               delivery_id: str | None = None, ignore_quota: bool = False) -> AppendResult:
        return self.append_async(postoffice, mailbox, folder, data, flags, internal_date,
                                 delivery_id, ignore_quota).result()

    def append_async(self, postoffice: str, mailbox: str, folder: str, data: MessageData,
                     flags: Iterable[str] = (), internal_date: float | None = None,
                     delivery_id: str | None = None, ignore_quota: bool = False,
                     ) -> Future[AppendResult]:
        """Queue the message for the next batch; the future completes after commit.

        Bad input (unknown mailbox or folder, bad flags, missing spool file) is raised
        here at once; the quota and everything decided at commit time arrive through
        the future. The writer thread writes the file: callers only wait.
        """
        flag_tuple = check_flags(flags)
        if internal_date is None:
            internal_date = time.time()
        if not isinstance(data, bytes | bytearray | memoryview) and not os.path.isfile(data):
            raise MessageStoreError("data", f"cannot read {data}: no such file")
        row = self._folder(self._store.conn, postoffice, mailbox, canonical_folder(folder))
        directory = folder_dir(row["postoffice_name"], row["mailbox_name"], row["name"])
        if delivery_id is not None and (not isinstance(delivery_id, str) or not delivery_id
                                        or len(delivery_id) > 512):
            raise MessageStoreError("delivery_id", "must be a string of 1 to 512 characters")
        op = _Append(self, row["id"], row["mailbox_id"], row["mailbox_name"], directory, data,
                     flag_tuple, float(internal_date), delivery_id, bool(ignore_quota),
                     (row["postoffice_name"], row["mailbox_name"], row["name"]))
        return self._writer.submit(op)

    def _place(self, directory: str, data: MessageData) -> tuple[str, int]:
        """Write ``data`` completely to a temporary file, rename it into ``directory``.

        Returns the path relative to DIR/messages and the size in bytes.
        """
        n = next(self._counter)
        tmp = self.tmpdir / f"msg-{self._pid}-{n}.tmp"
        try:
            if isinstance(data, bytes | bytearray | memoryview):
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                finally:
                    os.close(fd)
                size = len(data)
            else:
                try:
                    shutil.copyfile(data, tmp)
                except OSError as exc:
                    raise MessageStoreError("data", f"cannot read {data}: {exc.strerror}") \
                        from None
                size = os.stat(tmp).st_size
            name = f"{directory}/{time.time_ns() // 1000:x}-{self._pid}-{n}.eml"
            try:
                os.rename(tmp, self.root / name)
            except FileNotFoundError:
                (self.root / directory).mkdir(parents=True, exist_ok=True)
                os.rename(tmp, self.root / name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return name, size

    def _flush(self, ops: Sequence[Operation]) -> None:
        appends = [op for op in ops if isinstance(op, _Append)]
        if not appends:
            return          # flag changes and removals: the commit's own sync suffices
        if self.flush_mode == "syncfs":
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
            try:
                syncfs(fd)
            finally:
                os.close(fd)
            return
        directories: set[Path] = set()
        for op in appends:
            path = self.root / op.path
            fsync_path(path)
            directories.add(path.parent)
        for directory in directories:
            # New folder directories: their entries in the parents must be durable too.
            for parent in [directory, *directory.parents]:
                fsync_path(parent, directory=True)
                if parent == self.root:
                    break

    # -- reading -----------------------------------------------------------------------

    def list_messages(self, postoffice: str, mailbox: str, folder: str) -> list[MessageInfo]:
        conn = self._store.conn
        row = self._folder(conn, postoffice, mailbox, canonical_folder(folder))
        rows = conn.execute("SELECT uid, size, flags, internal_date, modseq, path FROM message "
                            "WHERE folder_id=? ORDER BY uid", (row["id"],)).fetchall()
        return [MessageInfo(uid=r["uid"], size=r["size"], flags=_flags_tuple(r["flags"]),
                            internal_date=r["internal_date"], modseq=r["modseq"],
                            path=r["path"]) for r in rows]

    def _message_path(self, postoffice: str, mailbox: str, folder: str, uid: int) -> Path:
        conn = self._store.conn
        row = self._folder(conn, postoffice, mailbox, canonical_folder(folder))
        msg = conn.execute("SELECT path FROM message WHERE folder_id=? AND uid=?",
                           (row["id"], uid)).fetchone()
        if msg is None:
            raise MessageStoreError("uid", f"no message with UID {uid} in {row['name']}")
        return self.root / msg["path"]

    def read(self, postoffice: str, mailbox: str, folder: str, uid: int) -> bytes:
        return self._message_path(postoffice, mailbox, folder, uid).read_bytes()

    def open(self, postoffice: str, mailbox: str, folder: str, uid: int) -> BinaryIO:
        return open(self._message_path(postoffice, mailbox, folder, uid), "rb")

    def expunged_since(self, postoffice: str, mailbox: str, folder: str, modseq: int,
                       uids: Sequence[tuple[int, int]] | None = None,
                       ) -> list[tuple[int, int]]:
        if isinstance(modseq, bool) or not isinstance(modseq, int) or modseq < 0:
            raise MessageStoreError("modseq", f"invalid mod-sequence {modseq!r}")
        wanted = None if uids is None else merge_ranges(uids)
        conn = self._store.conn
        cursor = conn.cursor()
        cursor.row_factory = None
        began = not conn.in_transaction
        if began:
            conn.execute("BEGIN")          # one snapshot: folder row, tombstones, messages
        try:
            row = self._folder(conn, postoffice, mailbox, canonical_folder(folder))
            if modseq >= row["expunged_floor"]:
                found = merge_ranges((u, u) for (u,) in cursor.execute(
                    "SELECT uid FROM expunged WHERE folder_id=? AND modseq>? ORDER BY uid",
                    (row["id"], modseq)))
            else:
                # Removals before tombstones were kept: every absent UID below UIDNEXT.
                live = [u for (u,) in cursor.execute(
                    "SELECT uid FROM message WHERE folder_id=? ORDER BY uid", (row["id"],))]
                found = _gaps(live, row["uidnext"] - 1)
        finally:
            if began:
                conn.execute("COMMIT")
        return found if wanted is None else intersect_ranges(found, wanted)

    def usage(self, postoffice: str, mailbox: str) -> tuple[int, int]:
        box = self._mailbox(self._store.conn, postoffice, mailbox)
        return box["used_bytes"], box["message_count"]

    # -- changes -----------------------------------------------------------------------

    def set_flags(self, postoffice: str, mailbox: str, folder: str, uids: Iterable[int],
                  flags: Iterable[str], mode: FlagMode = "add") -> int:
        return self.set_flags_async(postoffice, mailbox, folder, uids, flags, mode).result()

    def set_flags_async(self, postoffice: str, mailbox: str, folder: str,
                        uids: Iterable[int], flags: Iterable[str], mode: FlagMode = "add",
                        ) -> Future[int]:
        """As :meth:`set_flags`, returning at once; bad input is raised here. The change
        rides in the writer's next batch with the appends and removals of the other
        sessions (one commit for all of them)."""
        if mode not in ("add", "remove", "replace"):
            raise MessageStoreError("mode", "expected add, remove or replace")
        wanted = set(check_flags(flags))
        uid_list = self._uids(uids)
        return self._writer.submit(_SetFlags(self, postoffice, mailbox,
                                             canonical_folder(folder), uid_list, wanted, mode))

    def copy(self, postoffice: str, mailbox: str, folder: str, uids: Iterable[int],
             target: str, target_mailbox: str | None = None) -> dict[int, int]:
        return self._transfer(postoffice, mailbox, folder, uids, target, move=False,
                              target_mailbox=target_mailbox)

    def move(self, postoffice: str, mailbox: str, folder: str, uids: Iterable[int],
             target: str, target_mailbox: str | None = None) -> dict[int, int]:
        return self._transfer(postoffice, mailbox, folder, uids, target, move=True,
                              target_mailbox=target_mailbox)

    def _transfer(self, postoffice: str, mailbox: str, folder: str, uids: Iterable[int],
                  target: str, *, move: bool, target_mailbox: str | None = None,
                  ) -> dict[int, int]:
        """Hard-link files into the target folder, then one transaction for the rows.

        Within one mailbox a move changes no usage and a copy is charged to it; into
        another mailbox (a public folder) the target's mailbox is checked and charged
        and, for a move, the source's is credited."""
        uid_list = self._uids(uids)
        conn = self._store.conn
        src = self._folder(conn, postoffice, mailbox, canonical_folder(folder))
        dst = self._folder(conn, postoffice, target_mailbox or mailbox,
                           canonical_folder(target), field="target")
        across = src["mailbox_id"] != dst["mailbox_id"]
        if src["id"] == dst["id"]:
            raise MessageStoreError("target", "source and target folder are the same")
        marks = ",".join("?" * len(uid_list))
        rows = conn.execute(f"SELECT * FROM message WHERE folder_id=? AND uid IN ({marks}) "
                            "ORDER BY uid", (src["id"], *uid_list)).fetchall()
        directory = folder_dir(dst["postoffice_name"], dst["mailbox_name"], dst["name"])
        (self.root / directory).mkdir(parents=True, exist_ok=True)
        links: list[str] = []
        try:
            for r in rows:
                n = next(self._counter)
                rel = f"{directory}/{time.time_ns() // 1000:x}-{self._pid}-{n}-" \
                      f"{secrets.token_hex(3)}.eml"
                try:
                    os.link(self.root / r["path"], self.root / rel)
                except OSError:
                    shutil.copyfile(self.root / r["path"], self.root / rel)
                    fsync_path(self.root / rel)
                links.append(rel)
            if links:
                fsync_path(self.root / directory, directory=True)
            mapping: dict[int, int] = {}
            with self._store.transaction() as conn:
                if not move or across:
                    self._check_quota(conn, dst["mailbox_id"], dst["mailbox_name"],
                                      sum(r["size"] for r in rows))
                current = conn.execute(
                    "SELECT uidnext, highestmodseq FROM folder WHERE id=?", (dst["id"],)
                ).fetchone()
                if current is None:
                    raise MessageStoreError("target", "folder was deleted")
                uid, modseq = current["uidnext"], current["highestmodseq"] + 1
                moved: list[int] = []
                for r, rel in zip(rows, links, strict=True):
                    if move:
                        deleted = conn.execute("DELETE FROM message WHERE id=?", (r["id"],))
                        if deleted.rowcount == 0:
                            continue     # expunged meanwhile
                        moved.append(r["uid"])
                    conn.execute(
                        "INSERT INTO message (folder_id, uid, path, size, internal_date, "
                        "flags, modseq) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (dst["id"], uid, rel, r["size"], r["internal_date"], r["flags"],
                         modseq))
                    mapping[r["uid"]] = uid
                    uid += 1
                conn.execute("UPDATE folder SET uidnext=?, highestmodseq=? WHERE id=?",
                             (uid, modseq, dst["id"]))
                moved_rows = [r for r in rows if r["uid"] in mapping]
                if move and moved:
                    self._tombstones(conn, src["id"], moved)
                if across and move:
                    self._charge(conn, src["mailbox_id"], -sum(r["size"] for r in moved_rows),
                                 -len(moved_rows))
                if across or not move:
                    self._charge(conn, dst["mailbox_id"], sum(r["size"] for r in moved_rows),
                                 len(moved_rows))
        except BaseException:
            self._unlink(links)
            raise
        unused = [rel for r, rel in zip(rows, links, strict=True) if r["uid"] not in mapping]
        self._unlink(unused)
        if move:
            self._unlink(r["path"] for r in rows if r["uid"] in mapping)
        if mapping:
            self._changed()        # IDLE sessions on the target (another user's too)
        return mapping

    def expunge(self, postoffice: str, mailbox: str, folder: str,
                uids: Iterable[int]) -> Removal:
        op = _Expunge(self, postoffice, mailbox, canonical_folder(folder), self._uids(uids),
                      caller_unlinks=True)
        removed: Removal = self._writer.submit(op).result()
        self._unlink(op.paths)          # here, in the caller's thread: gone on return
        return removed

    def expunge_async(self, postoffice: str, mailbox: str, folder: str,
                      uids: Iterable[int]) -> Future[Removal]:
        """As :meth:`expunge`, returning at once (group commit, as :meth:`set_flags_async`);
        the files go once the batch committed, in the background (:meth:`_unlink_later`)."""
        uid_list = self._uids(uids)
        return self._writer.submit(_Expunge(self, postoffice, mailbox,
                                            canonical_folder(folder), uid_list))

    def note_crlf_sizes(self, sizes: list[tuple[str, int, bool | None]]) -> Future[None]:
        """Record (path, CRLF size, dot lines) with the next group commit; do not wait. A
        store closing meanwhile records nothing (the sizes are computed again)."""
        try:
            return self._writer.submit(_NoteCrlfSizes(sizes))
        except WriterClosed:
            skipped: Future[None] = Future()
            skipped.set_result(None)
            return skipped

    # -- \Recent -----------------------------------------------------------------------

    def claim_recent(self, postoffice: str, mailbox: str, folder: str, upto: int) -> int:
        return self.claim_recent_async(postoffice, mailbox, folder, upto).result()

    def claim_recent_async(self, postoffice: str, mailbox: str, folder: str,
                           upto: int) -> Future[int]:
        name = canonical_folder(folder)
        row = self._folder(self._store.conn, postoffice, mailbox, name)
        if row["recent_uid"] >= upto:
            done: Future[int] = Future()        # claimed already: a read, no write
            done.set_result(int(row["recent_uid"]))
            return done
        return self._writer.submit(_ClaimRecent(row["id"], name, mailbox, upto))

    def recent_mark(self, postoffice: str, mailbox: str, folder: str) -> int:
        return int(self._folder(self._store.conn, postoffice, mailbox,
                                canonical_folder(folder))["recent_uid"])

    def delete_older_than(self, postoffice: str, days: float, folder: str | None = None) -> int:
        """Remove a post office's messages received more than ``days`` ago (manual 5.3)."""
        if not isinstance(days, int | float) or days < 0:
            raise MessageStoreError("days", "must be a non-negative number")
        cutoff = time.time() - days * 86400
        sql = ("SELECT msg.id, msg.uid, msg.path, msg.size, f.id AS folder_id, f.mailbox_id "
               "FROM message msg JOIN folder f ON msg.folder_id=f.id "
               "JOIN mailbox mb ON f.mailbox_id=mb.id JOIN postoffice p ON mb.postoffice_id=p.id "
               "WHERE p.name=? AND msg.internal_date < ?")
        params: list[object] = [postoffice, cutoff]
        if folder is not None:
            sql += " AND f.name=?"
            params.append(canonical_folder(folder))
        with self._store.transaction() as conn:
            if conn.execute("SELECT 1 FROM postoffice WHERE name=?", (postoffice,)).fetchone() \
                    is None:
                raise MessageStoreError("postoffice", f"no post office {postoffice!r}")
            rows = conn.execute(sql, params).fetchall()
            per_box: dict[int, list[int]] = {}
            per_folder: dict[int, list[int]] = {}
            for r in rows:
                conn.execute("DELETE FROM message WHERE id=?", (r["id"],))
                totals = per_box.setdefault(r["mailbox_id"], [0, 0])
                totals[0] -= r["size"]
                totals[1] -= 1
                per_folder.setdefault(r["folder_id"], []).append(r["uid"])
            for folder_id, uids in per_folder.items():
                self._tombstones(conn, folder_id, uids)
            for mailbox_id, (size, count) in per_box.items():
                self._charge(conn, mailbox_id, size, count)
        self._unlink(r["path"] for r in rows)
        if rows:
            self._changed()
        return len(rows)

    def remove_mailbox_files(self, postoffice: str, mailbox: str) -> None:
        """Delete files under the mailbox's directory that no message row references."""
        base = self.root / dir_part(postoffice) / dir_part(mailbox)
        if not base.is_dir():
            return
        prefix = f"{dir_part(postoffice)}/{dir_part(mailbox)}/"
        live = {r[0] for r in self._store.conn.execute(
            "SELECT path FROM message WHERE substr(path, 1, ?)=?", (len(prefix), prefix))}
        for dirpath, _dirs, files in os.walk(base, topdown=False):
            for name in files:
                rel = os.path.relpath(os.path.join(dirpath, name), self.root)
                if rel not in live:
                    os.unlink(os.path.join(dirpath, name))
            with contextlib.suppress(OSError):   # still holds live files
                os.rmdir(dirpath)

    def orphans(self, remove: bool = False, min_age: float = 300.0) -> list[str]:
        """Files under DIR/messages without a row (left by a crash); optionally delete.

        Only files older than ``min_age`` seconds count: a younger one may belong to
        an append another process is committing right now.
        """
        live = {r[0] for r in self._store.conn.execute("SELECT path FROM message")}
        found = []
        limit = time.time() - min_age
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, self.root)
                if rel in live:
                    continue
                try:
                    if os.stat(full).st_mtime > limit:
                        continue
                except FileNotFoundError:
                    continue
                found.append(rel)
                if remove:
                    Path(full).unlink(missing_ok=True)
        return sorted(found)

    # -- helpers -----------------------------------------------------------------------

    def _mailbox(self, conn: sqlite3.Connection, postoffice: str, mailbox: str) -> sqlite3.Row:
        row = conn.execute(
            "SELECT mb.*, p.name AS postoffice_name FROM mailbox mb "
            "JOIN postoffice p ON mb.postoffice_id=p.id WHERE p.name=? AND mb.name=?",
            (postoffice, mailbox)).fetchone()
        if row is None:
            if conn.execute("SELECT 1 FROM postoffice WHERE name=?", (postoffice,)).fetchone():
                raise MessageStoreError("mailbox", f"no mailbox {mailbox!r} in post office "
                                                   f"{postoffice!r}")
            raise MessageStoreError("postoffice", f"no post office {postoffice!r}")
        return row

    def _folder(self, conn: sqlite3.Connection, postoffice: str, mailbox: str, folder: str,
                field: str = "folder") -> sqlite3.Row:
        row = conn.execute(
            "SELECT f.*, mb.name AS mailbox_name, p.name AS postoffice_name FROM folder f "
            "JOIN mailbox mb ON f.mailbox_id=mb.id JOIN postoffice p ON mb.postoffice_id=p.id "
            "WHERE p.name=? AND mb.name=? AND f.name=?", (postoffice, mailbox, folder)).fetchone()
        if row is None:
            self._mailbox(conn, postoffice, mailbox)
            raise MessageStoreError(field, f"no folder {folder!r} in mailbox {mailbox!r}")
        return row

    @staticmethod
    def _uids(uids: Iterable[int]) -> list[int]:
        result = []
        for uid in uids:
            if isinstance(uid, bool) or not isinstance(uid, int) or uid < 1:
                raise MessageStoreError("uids", f"invalid UID {uid!r}")
            result.append(uid)
        if not result:
            raise MessageStoreError("uids", "no UIDs given")
        return result

    @staticmethod
    def _tombstones(conn: sqlite3.Connection, folder_id: int, uids: Sequence[int]) -> int:
        """Inside the removing transaction: one new mod-sequence for the folder, stamped
        on a row per removed UID (RFC 7162 3.2, what VANISHED answers from)."""
        modseq = int(conn.execute(
            "UPDATE folder SET highestmodseq=highestmodseq+1 WHERE id=? RETURNING highestmodseq",
            (folder_id,)).fetchone()[0])
        conn.executemany("INSERT OR REPLACE INTO expunged (folder_id, uid, modseq) "
                         "VALUES (?, ?, ?)", [(folder_id, uid, modseq) for uid in uids])
        # Records older than the window go; the floor rises with them, so a client that
        # resyncs from before it is told every absent UID (a superset, RFC 7162 3.2.5.2).
        floor = modseq - TOMBSTONE_WINDOW
        if floor > 0 and conn.execute("DELETE FROM expunged WHERE folder_id=? AND modseq<=?",
                                      (folder_id, floor)).rowcount:
            conn.execute("UPDATE folder SET expunged_floor=max(expunged_floor, ?) WHERE id=?",
                         (floor, folder_id))
        return modseq

    @staticmethod
    def _check_quota(conn: sqlite3.Connection, mailbox_id: int, name: str, size: int) -> None:
        box = conn.execute("SELECT quota_bytes, used_bytes FROM mailbox WHERE id=?",
                           (mailbox_id,)).fetchone()
        if box is None:
            raise MessageStoreError("mailbox", f"mailbox {name} was deleted")
        if box["quota_bytes"] is not None and box["used_bytes"] + size > box["quota_bytes"]:
            raise QuotaExceeded(name, size, box["used_bytes"], box["quota_bytes"])

    @staticmethod
    def _charge(conn: sqlite3.Connection, mailbox_id: int, size: int, count: int) -> None:
        conn.execute("UPDATE mailbox SET used_bytes=max(0, used_bytes+?), "
                     "message_count=max(0, message_count+?) WHERE id=?",
                     (size, count, mailbox_id))

    def _unlink(self, paths: Iterable[str]) -> None:
        for rel in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.root / rel)

    def _unlink_later(self, paths: list[str]) -> None:
        """Remove files of committed removals in a background thread. A file left by a
        crash before it ran is an orphan that :meth:`orphans` finds (its row is gone)."""
        if not paths:
            return
        with self._unlinker_lock:
            if self._unlinker is None:
                self._unlinker = threading.Thread(target=self._unlink_forever,
                                                  name="postroom-unlinker", daemon=True)
                self._unlinker.start()
            self._doomed.put(paths)

    def _unlink_forever(self) -> None:
        while (paths := self._doomed.get()) is not None:
            try:
                self._unlink(paths)
            except OSError:     # pragma: no cover - the orphan sweep takes it later
                log.warning("could not remove %d message files", len(paths), exc_info=True)

    def _remove_dead_temp_files(self) -> int:
        """Delete ``msg-<pid>-*.tmp`` (and the IMAP service's ``imap-append-<pid>-*.tmp``
        spools) left by processes that no longer run."""
        removed = 0
        try:
            entries = list(os.scandir(self.tmpdir))
        except FileNotFoundError:
            return 0
        for entry in entries:
            match = re.fullmatch(r"(?:msg|imap-append)-(\d+)-\d+\.tmp", entry.name)
            if not match:
                continue
            pid = int(match.group(1))
            if pid != self._pid and process_alive(pid):
                continue
            if pid == self._pid:
                continue
            try:
                os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                pass
        return removed
