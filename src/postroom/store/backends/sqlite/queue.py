"""Embedded connector queues: bodies in append-only segments, entries in SQLite.

Contract and manual references: :mod:`postroom.store.queue`.

Bodies are appended to segment files ``DIR/queue/<time>-<pid>-<n>.seg``; each process
writes only its own current segment, which it holds under an exclusive ``flock``.
The group-commit writer (:mod:`postroom.store.groupcommit`) appends every pending
body of a batch, calls ONE ``fdatasync`` on the segment (plus a directory fsync when
the segment is new), then inserts all the rows in ONE transaction. A row therefore
exists only if its body bytes are durable; bytes of a batch that never committed are
unreferenced garbage inside the segment, never visible. A segment rotates once it
reaches :data:`SEGMENT_LIMIT` and is deleted when no entry references it any more
and no writer holds its lock (checked after ``ack``, ``route`` and ``move_to``, and
for every segment when the queue opens, which also collects segments of crashed
processes).

An entry's ``segment`` column is a path relative to the data directory, so an entry
moved to bad mail or quarantine (``badmail/<tracking id>.eml``) is read the same way.
The envelope is written beside that copy as ``.json`` for administrators.

Known limits: a segment with one long-deferred entry stays on disk whole (no
compaction yet); ``route`` shares body bytes, so a segment lives as long as its
last routed copy.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import itertools
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeGuard

from postroom.store.backends.sqlite.tracking import event_rows, insert_rows
from postroom.store.groupcommit import (
    DatabaseOperation,
    GroupCommitWriter,
    Operation,
    WriterStats,
)
from postroom.store.processes import process_alive
from postroom.store.queue import (
    AREAS,
    ONCE_KEEP_DAYS,
    STATES,
    AlreadyQueued,
    Area,
    Body,
    Envelope,
    QueueEntry,
    QueueError,
    check_queue_name,
    new_tracking_id,
    successor_tracking_id,
)
from postroom.store.tracking import TrackingEvent
from postroom.store.wake import Waker

if TYPE_CHECKING:
    from postroom.store.store import Store

SEGMENT_LIMIT = 64 * 1024 * 1024
_IOV_MAX = 1024     # Linux's limit on the buffers of one writev
COPY_CHUNK = 1024 * 1024
_INSERT = ("INSERT INTO queue_entry (queue, tracking_id, sender, recipients, client_ip, "
           "auth_user, envelope, segment, body_offset, body_length, created_at, "
           "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *")
_INSERT_ID = _INSERT.replace("RETURNING *", "RETURNING id")
_INSERT_MANY = _INSERT.split(" VALUES ")[0] + " VALUES "
_INSERT_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_MAX_VARIABLES = 32_000     # SQLite's SQLITE_MAX_VARIABLE_NUMBER is 32,766 since 3.32


class SegmentSlice(io.RawIOBase):
    """A read-only view of ``length`` bytes at ``offset`` of a segment file (``fd``,
    which it closes)."""

    def __init__(self, fd: int, offset: int, length: int) -> None:
        super().__init__()
        self._fd = fd
        self._start, self._length, self._pos = offset, length, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._length - self._pos)
        if want <= 0:
            return 0
        data = os.pread(self._fd, want, self._start + self._pos)
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def _in_memory(body: Body) -> TypeGuard[bytes | bytearray | memoryview]:
    """The body is bytes to write, not the path of a spool file to copy."""
    return isinstance(body, bytes | bytearray | memoryview)


class _Segment:
    """The current segment of this process (used only by the writer thread)."""

    def __init__(self, directory: Path, counter: itertools.count[int]) -> None:
        pid = os.getpid()
        temp = directory / f".new-{pid}-{next(counter)}"
        self.fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        # Locked before it gets its real name: a sweeper can never delete it while new.
        self.name = f"{time.time_ns() // 1000:x}-{pid}-{next(counter)}.seg"
        os.rename(temp, directory / self.name)
        self.size = 0           # bytes written, and the bodies waiting in ``unwritten``
        self.unwritten: list[memoryview] = []
        # Writes that failed so far: a body placed before one was never written, and
        # the flush fails its batch (its operation notes the count when placed).
        self.failures = 0
        self.new = True
        self.pending = 0        # prepared operations not yet committed or discarded
        self.retired = False    # full: no new writes; close once pending reaches 0

    def write(self, body: Body) -> tuple[int, int]:
        """Where ``body`` goes in the segment. A body in memory is only placed here and
        written with the batch's others by :meth:`write_out`: one ``writev`` instead of
        a ``write`` each, and every system call is a round for the interpreter lock,
        which the writer waits to get back while the event loop holds it (measured:
        SMTP's batch took 4.7 ms from prepare to flushed for 6-7 bodies)."""
        offset = self.size
        if _in_memory(body):
            view = memoryview(body)
            if view.nbytes:
                self.unwritten.append(view)
                self.size += view.nbytes
            return offset, view.nbytes
        self.write_out()
        try:
            source = open(body, "rb")  # noqa: SIM115
        except OSError as exc:
            raise QueueError("body", f"cannot read {body}: {exc.strerror}") from None
        with source:
            while chunk := source.read(COPY_CHUNK):
                self._write_all([memoryview(chunk)])
                self.size += len(chunk)
        return offset, self.size - offset

    def write_out(self) -> None:
        """Write the placed bodies (the segment is ``O_APPEND``: in the order placed)."""
        if self.unwritten:
            views, self.unwritten = self.unwritten, []
            self._write_all(views)

    def _write_all(self, views: list[memoryview]) -> None:
        """Write every byte of ``views``; after a failure (a full disk) ``size`` is the
        file's again, so that later bodies are placed where they will land, and
        ``failures`` counts it: the flush then fails the batch of any body placed before
        it (never written), even when the failed write was a later spool file's."""
        start = 0
        try:
            while start < len(views):
                written = os.writev(self.fd, views[start:start + _IOV_MAX])
                while written and written >= views[start].nbytes:
                    written -= views[start].nbytes
                    start += 1
                if written:
                    views[start] = views[start][written:]
        except OSError:
            self.unwritten = []
            self.size = os.fstat(self.fd).st_size
            self.failures += 1
            raise

    def close(self) -> None:
        os.close(self.fd)   # releases the lock: the segment may now be collected


class _Enqueue:
    needs_savepoint = False     # one INSERT: no savepoint needed (see groupcommit)

    def __init__(self, owner: SqliteQueue, queue: str, envelope: Envelope, body: Body,
                 track: Sequence[TrackingEvent] = ()) -> None:
        self.owner, self.queue, self.envelope, self.body = owner, queue, envelope, body
        self.location: tuple[str, int, int] | None = None
        self.segment: _Segment | None = None
        self.placed_at_failures: int | None = None
        # Tracking rows go in the same transaction: recorded only if the entry is.
        self.tracking = event_rows(track) if track else []
        if self.tracking:
            self.needs_savepoint = True

    def prepare(self) -> None:
        self.segment = segment = self.owner._current_segment()
        offset, length = segment.write(self.body)
        self.location = (f"queue/{segment.name}", offset, length)
        if _in_memory(self.body):
            self.placed_at_failures = segment.failures    # written later, by the flush

    def apply(self, conn: sqlite3.Connection) -> QueueEntry:
        assert self.location is not None
        now = time.time()
        params = _insert_params(self.queue, self.envelope, self.location, now)
        entry_id = conn.execute(_INSERT_ID, params).fetchall()[0][0]
        if self.tracking:
            insert_rows(conn, self.tracking)
        return self._entry(entry_id, params, now)

    @staticmethod
    def apply_batch(conn: sqlite3.Connection, ops: Sequence[_Enqueue]) -> list[QueueEntry]:
        """Several enqueues in one INSERT statement (see groupcommit)."""
        now = time.time()
        rows = []
        for op in ops:
            assert op.location is not None
            rows.append(_insert_params(op.queue, op.envelope, op.location, now))
        sql = _INSERT_MANY + ", ".join([_INSERT_ROW] * len(rows)) + " RETURNING id, tracking_id"
        ids = dict((tracking, entry_id) for entry_id, tracking in
                   conn.execute(sql, [value for row in rows for value in row]).fetchall())
        tracking = [row for op in ops for row in op.tracking]
        if tracking:
            insert_rows(conn, tracking)
        return [op._entry(ids[row[1]], row, now) for op, row in zip(ops, rows, strict=True)]

    def _entry(self, entry_id: int, params: tuple[Any, ...], now: float) -> QueueEntry:
        """The entry as a fresh SELECT would show it (no second read of the row)."""
        assert self.location is not None
        segment, offset, length = self.location
        envelope = self.envelope
        return QueueEntry(
            id=entry_id, queue=self.queue, state="ready", tracking_id=str(envelope.tracking_id),
            envelope=Envelope(sender=envelope.sender, recipients=json.loads(params[3]),
                              client_ip=envelope.client_ip, auth_user=envelope.auth_user,
                              tracking_id=envelope.tracking_id, extra=json.loads(params[6])),
            segment=segment, body_offset=offset, body_length=length, created_at=now,
            next_attempt_at=now, attempts=0, claimed_by=None, claim_expires=None,
            last_error=None)

    def committed(self) -> None:
        self.owner._release(self.segment)
        self.segment = None

    def discard(self) -> None:
        self.owner._release(self.segment)
        self.segment = None


class _EnqueueOnce(_Enqueue):
    """An enqueue that also records ``once_key``: a key seen before fails the operation
    with :class:`sqlite3.IntegrityError`, and nothing is queued (its savepoint)."""

    needs_savepoint = True
    apply_batch = None          # type: ignore[assignment]  # one by one: keys may clash

    def __init__(self, owner: SqliteQueue, queue: str, envelope: Envelope, body: Body,
                 once_key: str, track: Sequence[TrackingEvent] = ()) -> None:
        super().__init__(owner, queue, envelope, body, track)
        self.once_key = once_key

    def apply(self, conn: sqlite3.Connection) -> QueueEntry:
        conn.execute("INSERT INTO enqueue_once (key, tracking_id, at) VALUES (?, ?, ?)",
                     (self.once_key, str(self.envelope.tracking_id), time.time()))
        return super().apply(conn)


class _Claim(DatabaseOperation):
    """Lease up to ``limit`` due entries of a queue (:meth:`SqliteQueue.claim`).

    It runs in the writer's next batch, beside the routes and acknowledgements it
    would otherwise wait for: a claim of its own was a transaction of its own, on a
    connection whose page cache another process's commit had just made stale, and
    under the relay benchmark took 250-400 µs of CPU. A claim is a lease, not a
    promise: losing it in a crash only makes the entry claimable again, so it need
    not wait for the disk, and it is one statement (no savepoint).
    """

    durable = False
    needs_savepoint = False

    def __init__(self, queue: str, worker: str, limit: int, lease_seconds: float) -> None:
        self.queue, self.worker, self.limit = queue, worker, limit
        self.lease_seconds = lease_seconds

    def apply(self, conn: sqlite3.Connection) -> list[QueueEntry]:
        now = time.time()
        rows = conn.execute(_CLAIM, (self.worker, now + self.lease_seconds, self.queue, now,
                                     self.limit)).fetchall()
        return sorted((_entry(r) for r in rows), key=lambda e: e.id)


class _Route(DatabaseOperation):
    """Remove one entry and create its successors, sharing its body bytes."""

    def __init__(self, entry_id: int, targets: Sequence[tuple[str, Envelope]],
                 at: float | None = None, error: str | None = None,
                 track: Sequence[TrackingEvent] = ()) -> None:
        self.entry_id, self.targets = entry_id, targets
        self.at, self.error = at, error
        # Tracking rows go in the same transaction: recorded only if the route is.
        self.tracking = event_rows(track) if track else []

    def apply(self, conn: sqlite3.Connection) -> list[QueueEntry]:
        old = conn.execute("DELETE FROM queue_entry WHERE id=? RETURNING *",
                           (self.entry_id,)).fetchall()
        if not old:
            raise QueueError("entry", f"no queue entry {self.entry_id}")
        created = []
        for params in self._successors(old[0], time.time()):
            row = conn.execute(_INSERT, params).fetchall()[0]
            if self.at is not None or self.error is not None:
                row = conn.execute(
                    "UPDATE queue_entry SET next_attempt_at=coalesce(?, next_attempt_at), "
                    "last_error=? WHERE id=? RETURNING *",
                    (self.at, self.error, row["id"])).fetchall()[0]
            created.append(_entry(row))
        if self.tracking:
            insert_rows(conn, self.tracking)
        return created

    def _successors(self, source: sqlite3.Row, now: float) -> list[tuple[Any, ...]]:
        """The INSERT parameters of the successors of ``source`` (its deleted row): its
        body bytes, and its tracking id (``-1``, ``-2`` … when there are several)."""
        location = (source["segment"], source["body_offset"], source["body_length"])
        rows = []
        for n, (queue, envelope) in enumerate(self.targets, start=1):
            if envelope.tracking_id is None:
                envelope = _with_tracking(envelope, successor_tracking_id(
                    source["tracking_id"], n, len(self.targets)))
            rows.append(_insert_params(queue, envelope, location, now))
        return rows

    @staticmethod
    def apply_batch(conn: sqlite3.Connection, ops: Sequence[_Route]) -> list[list[QueueEntry]]:
        """Several routes in two statements: one DELETE for the entries, one INSERT for
        their successors (the MTA routes each message of a batch this way; one by one
        it was four statements per message). Routes that set a retry time or an
        error, or an entry that is gone, are refused: the writer then applies the
        run one by one, so that only the offending route fails."""
        if any(op.at is not None or op.error is not None for op in ops):
            raise ValueError("routes with a retry time go one by one")
        if sum(len(op.targets) for op in ops) * 12 > _MAX_VARIABLES:
            raise ValueError("too many successors for one statement")
        ids = [op.entry_id for op in ops]
        if len(set(ids)) != len(ids):
            raise ValueError("an entry routed twice in one batch goes one by one")
        with _savepoint(conn, "routes"):
            marks = ", ".join("?" * len(ids))
            sources = {row["id"]: row for row in conn.execute(
                f"DELETE FROM queue_entry WHERE id IN ({marks}) RETURNING *", ids).fetchall()}
            if len(sources) != len(ids):
                raise QueueError("entry", "a routed queue entry is gone")
            now = time.time()
            rows = [params for op in ops for params in op._successors(sources[op.entry_id], now)]
            created = {row["tracking_id"]: _entry(row) for row in conn.execute(
                _INSERT_MANY + ", ".join([_INSERT_ROW] * len(rows)) + " RETURNING *",
                [value for row in rows for value in row]).fetchall()}
            tracking = [row for op in ops for row in op.tracking]
            if tracking:
                insert_rows(conn, tracking)
        results, at = [], 0
        for op in ops:
            results.append([created[row[1]] for row in rows[at:at + len(op.targets)]])
            at += len(op.targets)
        return results


class _Ack(DatabaseOperation):
    """Remove a finished entry (one DELETE); its segment is collected later."""

    needs_savepoint = False      # a DELETE that matched nothing changed nothing

    def __init__(self, owner: SqliteQueue, entry_id: int, worker: str | None) -> None:
        self.owner, self.entry_id, self.worker = owner, entry_id, worker
        self.segment: str | None = None

    def apply(self, conn: sqlite3.Connection) -> None:
        rows = _delete_finished(conn, [self.entry_id], self.worker)
        if not rows:
            raise QueueError("entry", f"queue entry {self.entry_id} is gone or not claimed "
                                      f"by {self.worker} (its lease ran out?)")
        self.segment = rows[0][1]

    @staticmethod
    def apply_batch(conn: sqlite3.Connection, ops: Sequence[_Ack]) -> list[None]:
        """Several acknowledgements in one DELETE per worker, under a savepoint: if an
        entry is gone or no longer that worker's, nothing of the run stays and the
        writer applies it one by one, so that only that acknowledgement fails."""
        by_worker: dict[str | None, list[int]] = {}
        for op in ops:
            by_worker.setdefault(op.worker, []).append(op.entry_id)
        if sum(len(set(ids)) for ids in by_worker.values()) != len(ops) or \
                len(ops) >= _MAX_VARIABLES:
            raise ValueError("an entry acknowledged twice goes one by one")
        segments: dict[int, str] = {}
        with _savepoint(conn, "acks"):
            for worker, ids in by_worker.items():
                segments.update(_delete_finished(conn, ids, worker))
            if len(segments) != len(ops):
                raise QueueError("entry", "an acknowledged queue entry is gone")
        for op in ops:
            op.segment = segments[op.entry_id]
        return [None] * len(ops)

    def committed(self) -> None:
        if self.segment is not None:
            self.owner._collect_later(self.segment)


_CLAIM = (
    # Two index walks, each stopping after LIMIT rows, merged: the due ready entries in
    # queue_ready's order (next_attempt_at, then id: the index's own order, no sort),
    # and the claims whose lease ran out (queue_leases). One scan with an OR read every
    # entry of the queue and sorted them, at every claim (0010_queue_leases.sql).
    "UPDATE queue_entry SET state='claimed', claimed_by=?1, claim_expires=?2, "
    "attempts=attempts+1 WHERE id IN (SELECT id FROM ("
    "SELECT id, next_attempt_at FROM (SELECT id, next_attempt_at FROM queue_entry "
    "WHERE queue=?3 AND state='ready' AND next_attempt_at<=?4 "
    "ORDER BY next_attempt_at, id LIMIT ?5) "
    "UNION ALL SELECT id, next_attempt_at FROM (SELECT id, next_attempt_at FROM queue_entry "
    "WHERE queue=?3 AND state='claimed' AND claim_expires<=?4 "
    "ORDER BY next_attempt_at, id LIMIT ?5) "
    "ORDER BY next_attempt_at, id LIMIT ?5)) RETURNING *")


class SqliteQueue:
    """All connector queues of one data directory."""

    def __init__(self, store: Store, *, segment_limit: int = SEGMENT_LIMIT,
                 max_batch: int = 512) -> None:
        self._store = store
        self.root = store.home.root
        self.directory = store.home.queue
        self.segment_limit = segment_limit
        self._counter = itertools.count()
        self._segment: _Segment | None = None
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[Sequence[str]], None]] = []
        self._uncollected: set[str] = set()      # segments some ack may have emptied
        self._last_sweep = 0.0
        self._waker = Waker(store.home.root)
        self._writer = GroupCommitWriter("postroom-queue", self._writer_connection, self._flush,
                                         max_batch=max_batch, after_commit=self._after_commit,
                                         gate=store.write_gate)
        self.collected_on_open = self.collect_segments()
        self._forget_old_once_keys()

    @property
    def writer_stats(self) -> WriterStats:
        return self._writer.stats

    def _writer_connection(self) -> sqlite3.Connection:
        """The writer's connection, with temporary b-trees in memory: with the default,
        each claim (an ``UPDATE … WHERE id IN (subquery)``) set up and tore down a
        temporary database, 80 µs instead of 10. Only here: for the message store's
        statements it measured a little slower (IMAP load, three pairs)."""
        conn = self._store.new_connection()
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    def close(self) -> None:
        self._writer.close()
        self._waker.close()
        with contextlib.suppress(sqlite3.Error):
            self.collect_pending()
        with self._lock:
            if self._segment is not None:
                self._segment.close()
                self._segment = None

    # -- writing (group commit) --------------------------------------------------------

    def _current_segment(self) -> _Segment:
        """The segment to append to (writer thread only); counts a pending write."""
        with self._lock:
            if self._segment is None:
                self._segment = _Segment(self.directory, self._counter)
            self._segment.pending += 1
            return self._segment

    def _release(self, segment: _Segment | None) -> None:
        """An operation on ``segment`` committed or failed; close it once retired and idle."""
        if segment is None:
            return
        with self._lock:
            segment.pending -= 1
            finished = segment.retired and segment.pending == 0
        if finished:
            segment.close()
            self._collect(f"queue/{segment.name}")

    def _flush(self, ops: Sequence[Operation]) -> None:
        with self._lock:
            segment = self._segment
        if segment is None or not any(isinstance(op, _Enqueue) for op in ops):
            return
        segment.write_out()
        if any(isinstance(op, _Enqueue) and op.segment is not None
               and op.placed_at_failures not in (None, op.segment.failures)
               for op in ops):
            raise OSError(errno.EIO, "a write to the queue segment failed: bodies of this "
                                     "batch were never written")
        os.fdatasync(segment.fd)
        if segment.new:
            fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            segment.new = False
        if segment.size >= self.segment_limit:
            # Rotate: later batches write a new segment; this one is closed (its lock
            # released) once the operations that wrote to it have committed.
            with self._lock:
                segment.retired = True
                self._segment = None

    def enqueue(self, queue: str, envelope: Envelope, body: Body) -> QueueEntry:
        return self.enqueue_async(queue, envelope, body).result()

    def enqueue_async(self, queue: str, envelope: Envelope, body: Body,
                      once_key: str | None = None,
                      track: Sequence[TrackingEvent] = ()) -> Future[QueueEntry]:
        """Queue for the next batch; bad envelope or queue name is raised at once.

        With ``once_key``, a key already used (within :data:`ONCE_KEEP_DAYS`) makes the
        future fail with :class:`AlreadyQueued` and queues nothing. ``track``: message
        tracking events stored in the same transaction (so only for a queued entry).
        """
        check_queue_name(queue)
        envelope.check()
        if not _in_memory(body) and not os.path.isfile(body):
            raise QueueError("body", f"cannot read {body}: no such file")
        if envelope.tracking_id is None:
            envelope = _with_tracking(envelope, new_tracking_id())
        if once_key is not None:
            future: Future[QueueEntry] = Future()
            inner = self._writer.submit(_EnqueueOnce(self, queue, envelope, body, once_key,
                                                     track))
            inner.add_done_callback(lambda done: _once_outcome(done, future, once_key))
            return future
        return self._writer.submit(_Enqueue(self, queue, envelope, body, track))

    def route(self, entry_id: int, targets: Sequence[tuple[str, Envelope]], *,
              at: float | None = None, error: str | None = None,
              track: Sequence[TrackingEvent] = ()) -> list[QueueEntry]:
        """Enqueue ``targets`` on the same body bytes and remove the entry, atomically.
        ``at``/``error``: the new entries are due only then, with that error (a retry of
        some recipients, in the same transaction: no moment where they are due now).
        ``track``: tracking events stored in the same transaction."""
        return self.route_async(entry_id, targets, at=at, error=error, track=track).result()

    def route_async(self, entry_id: int, targets: Sequence[tuple[str, Envelope]], *,
                    at: float | None = None, error: str | None = None,
                    track: Sequence[TrackingEvent] = ()) -> Future[list[QueueEntry]]:
        if not targets:
            raise QueueError("targets", "at least one target queue is required")
        for queue, envelope in targets:
            check_queue_name(queue)
            envelope.check()
        return self._writer.submit(_Route(entry_id, list(targets), at, error, track))

    # -- working the queue -------------------------------------------------------------

    def claim(self, queue: str, worker: str, limit: int = 10,
              lease_seconds: float = 300.0) -> list[QueueEntry]:
        """Lease up to ``limit`` due entries to ``worker``; expired leases are reclaimed."""
        check_queue_name(queue)
        if limit < 1:
            raise QueueError("limit", "must be at least 1")
        if lease_seconds <= 0:
            raise QueueError("lease_seconds", "must be positive")
        claim = _Claim(queue, worker, limit, lease_seconds)
        conn = self._store.conn
        if conn.in_transaction:     # the caller's transaction holds the write lock: join it
            return claim.apply(conn)
        return self._writer.submit(claim).result()  # type: ignore[no-any-return]

    def read_body(self, entry: QueueEntry, limit: int | None = None) -> bytes:
        """The body (its first ``limit`` bytes) with ``pread`` straight from the segment:
        each message's body is read once per hop, and a file object around it (path
        join, raw and buffered readers) cost more than the read of a 5 KB message."""
        want = entry.body_length if limit is None else max(0, min(limit, entry.body_length))
        parts: list[bytes] = []
        done = 0
        fd = self._open_segment(entry)
        try:
            while done < want:      # one pread, unless the kernel returns less (> 2 GB)
                more = os.pread(fd, want - done, entry.body_offset + done)
                if not more:
                    break
                parts.append(more)
                done += len(more)
        finally:
            os.close(fd)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def open_body(self, entry: QueueEntry) -> BinaryIO:
        fd = self._open_segment(entry)
        return io.BufferedReader(  # type: ignore[return-value]
            SegmentSlice(fd, entry.body_offset, entry.body_length))

    def _open_segment(self, entry: QueueEntry) -> int:
        path = f"{self.root}/{entry.segment}"
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise QueueError("entry", f"body of {entry.tracking_id} is missing ({path})") \
                from None

    def ack(self, entry_id: int, worker: str | None = None) -> None:
        """The entry is done (delivered or routed): remove it.

        With ``worker``, only if that worker still holds the claim: a worker whose
        lease ran out (and whose entry another worker took) gets :class:`QueueError`.
        Acknowledgements share the writer's group commit: one transaction for many.
        """
        self.ack_async(entry_id, worker).result()

    def ack_async(self, entry_id: int, worker: str | None = None) -> Future[None]:
        return self._writer.submit(_Ack(self, int(entry_id), worker))

    def retry(self, entry_id: int, at: float, error: str, worker: str | None = None) -> None:
        self._update(entry_id, "state='ready', next_attempt_at=?, last_error=?, "
                               "claimed_by=NULL, claim_expires=NULL", (at, error), worker)
        if at <= time.time():
            with contextlib.suppress(QueueError):
                self._notify([self.get(entry_id).queue])

    def fail(self, entry_id: int, error: str, worker: str | None = None) -> None:
        self._update(entry_id, "state='failed', last_error=?, claimed_by=NULL, "
                               "claim_expires=NULL", (error,), worker)

    def requeue(self, entry_id: int, queue: str) -> QueueEntry:
        check_queue_name(queue)
        self._update(entry_id, "queue=?, state='ready', next_attempt_at=?, claimed_by=NULL, "
                               "claim_expires=NULL", (queue, time.time()))
        self._notify([queue])
        return self.get(entry_id)

    def move_to(self, entry_id: int, area: Area, reason: str) -> Path:
        """Take an entry out of processing: body and envelope to DIR/badmail|quarantine."""
        if area not in AREAS:
            raise QueueError("area", f"expected one of {', '.join(AREAS)}")
        entry = self.get(entry_id)
        directory = self.root / ("badmail" if area == "bad" else "quarantine")
        directory.mkdir(exist_ok=True)
        eml = directory / f"{entry.tracking_id}.eml"
        with self.open_body(entry) as source, open(eml, "wb") as out:
            shutil.copyfileobj(source, out, COPY_CHUNK)
            out.flush()
            os.fsync(out.fileno())
        meta = {"tracking_id": entry.tracking_id, "queue": entry.queue, "area": area,
                "reason": reason, "moved_at": time.time(), "created_at": entry.created_at,
                "attempts": entry.attempts, "last_error": entry.last_error,
                "envelope": _envelope_json(entry.envelope)}
        with open(eml.with_suffix(".json"), "w", encoding="utf-8") as out:
            json.dump(meta, out, indent=2, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        relative = eml.relative_to(self.root).as_posix()
        self._update(entry_id, "state=?, segment=?, body_offset=0, last_error=?, "
                               "claimed_by=NULL, claim_expires=NULL",
                     (area, relative, reason))
        self._collect(entry.segment)
        return eml

    def _update(self, entry_id: int, assignments: str, params: tuple[Any, ...],
                worker: str | None = None) -> None:
        with self._store.transaction() as conn:
            self._check_claim(conn, entry_id, worker)
            conn.execute(f"UPDATE queue_entry SET {assignments} WHERE id=?", (*params, entry_id))

    @staticmethod
    def _check_claim(conn: sqlite3.Connection, entry_id: int, worker: str | None) -> None:
        row = conn.execute("SELECT state, claimed_by FROM queue_entry WHERE id=?",
                           (entry_id,)).fetchone()
        if row is None:
            raise QueueError("entry", f"no queue entry {entry_id}")
        if worker is not None and (row["state"] != "claimed" or row["claimed_by"] != worker):
            raise QueueError("entry", f"queue entry {entry_id} is not claimed by {worker} "
                                      "(its lease ran out?)")

    def _forget_old_once_keys(self) -> None:
        with contextlib.suppress(sqlite3.Error), self._store.transaction() as conn:
            conn.execute("DELETE FROM enqueue_once WHERE at < ?",
                         (time.time() - ONCE_KEEP_DAYS * 86400,))

    # -- administration (manual 10.7) -------------------------------------------------

    def hold(self, entry_id: int) -> QueueEntry:
        with self._store.transaction() as conn:
            state = self._state(conn, entry_id)
            if state not in ("ready", "failed"):
                raise QueueError("entry", f"queue entry {entry_id} is {state}: only ready or "
                                          "failed entries can be held")
            conn.execute("UPDATE queue_entry SET state='held' WHERE id=?", (entry_id,))
        return self.get(entry_id)

    def release(self, entry_id: int) -> QueueEntry:
        with self._store.transaction() as conn:
            state = self._state(conn, entry_id)
            if state != "held":
                raise QueueError("entry", f"queue entry {entry_id} is {state}, not held")
            conn.execute("UPDATE queue_entry SET state='ready', next_attempt_at=? WHERE id=?",
                         (time.time(), entry_id))
        entry = self.get(entry_id)
        self._notify([entry.queue])
        return entry

    def delete(self, entry_id: int) -> QueueEntry:
        with self._store.transaction() as conn:
            state = self._state(conn, entry_id)
            if state == "claimed":
                raise QueueError("entry", f"queue entry {entry_id} is being processed; "
                                          "hold or delete it once its attempt ends")
            row = conn.execute("DELETE FROM queue_entry WHERE id=? RETURNING *",
                               (entry_id,)).fetchone()
        entry = _entry(row)
        if entry.state in AREAS:
            with contextlib.suppress(OSError):
                eml = self.root / entry.segment
                eml.unlink()
                eml.with_suffix(".json").unlink()
        else:
            self._collect(entry.segment)
        return entry

    def retry_now(self, entry_id: int | None = None, queue: str | None = None) -> int:
        sql = ("UPDATE queue_entry SET state='ready', next_attempt_at=? "
               "WHERE state IN ('ready', 'failed')")
        params: list[Any] = [time.time()]
        if entry_id is not None:
            sql += " AND id=?"
            params.append(int(entry_id))
        if queue is not None:
            sql += " AND queue=?"
            params.append(check_queue_name(queue))
        with self._store.transaction() as conn:
            if entry_id is not None:
                self._state(conn, int(entry_id))
            rows = conn.execute(sql + " RETURNING queue", params).fetchall()
        self._notify([r[0] for r in rows])
        return len(rows)

    def abandon(self, queue: str, workers: Sequence[str]) -> int:
        check_queue_name(queue)
        if not workers:
            return 0
        marks = ", ".join("?" * len(workers))
        with self._store.transaction() as conn:
            count = conn.execute(
                f"UPDATE queue_entry SET state='ready', next_attempt_at=?, claimed_by=NULL, "
                f"claim_expires=NULL WHERE queue=? AND state='claimed' AND claimed_by IN "
                f"({marks})", (time.time(), queue, *workers)).rowcount
        if count:
            self._notify([queue])
        return count

    def claimants(self, queue: str) -> list[str]:
        check_queue_name(queue)
        return [r[0] for r in self._store.conn.execute(
            "SELECT DISTINCT claimed_by FROM queue_entry WHERE queue=? AND state='claimed' "
            "AND claimed_by IS NOT NULL", (queue,))]

    @staticmethod
    def _state(conn: sqlite3.Connection, entry_id: int) -> str:
        row = conn.execute("SELECT state FROM queue_entry WHERE id=?", (entry_id,)).fetchone()
        if row is None:
            raise QueueError("entry", f"no queue entry {entry_id}")
        return str(row[0])

    # -- wake-up -----------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Sequence[str]], None]) -> None:
        self._subscribers.append(callback)

    def space_commits(self, seconds: float) -> None:
        self._writer.min_interval = max(0.0, float(seconds))

    def _collect_later(self, segment: str) -> None:
        """Note a segment to check; check the noted ones at most twice a second (each
        check is a query and a lock attempt: not worth doing per acknowledgement)."""
        with self._lock:
            self._uncollected.add(segment)
            due = time.monotonic() - self._last_sweep >= 0.5
        if due:
            self.collect_pending()

    def collect_pending(self) -> int:
        """Delete the noted segments that no entry references any more; return count."""
        with self._lock:
            self._last_sweep = time.monotonic()
            pending, self._uncollected = self._uncollected, set()
            current = f"queue/{self._segment.name}" if self._segment is not None else None
            if current in pending:
                pending.discard(current)           # still being written: later
                self._uncollected.add(current)
        return sum(self._collect(name) for name in pending)

    def _after_commit(self, ops: Sequence[Operation]) -> None:
        names: set[str] = set()
        for op in ops:
            if isinstance(op, _Enqueue):
                names.add(op.queue)
            elif isinstance(op, _Route):
                names.update(queue for queue, _ in op.targets)
        if names:
            self._notify(sorted(names))

    def _notify(self, queues: Sequence[str]) -> None:
        if not queues:
            return
        self._waker.notify(queues)
        for callback in list(self._subscribers):
            try:
                callback(queues)
            except Exception:  # pragma: no cover - a subscriber's bug must not stop mail
                logging.getLogger(__name__).exception("queue subscriber failed")

    # -- tracking rides along with the queue's group commit ----------------------------

    def submit_operation(self, op: Operation) -> Future[Any]:
        """Run a store operation in the queue writer's next batch (message tracking)."""
        return self._writer.submit(op)

    # -- reading -----------------------------------------------------------------------

    def get(self, id_or_tracking_id: int | str) -> QueueEntry:
        key = id_or_tracking_id
        if isinstance(key, str) and key.isdigit():
            key = int(key)
        column = "id" if isinstance(key, int) else "tracking_id"
        row = self._store.conn.execute(f"SELECT * FROM queue_entry WHERE {column}=?",
                                       (key,)).fetchone()
        if row is None:
            raise QueueError("entry", f"no queue entry {id_or_tracking_id!r}")
        return _entry(row)

    def list(self, queue: str | None = None, state: str | None = None,
             limit: int | None = None) -> list[QueueEntry]:
        sql, params = "SELECT * FROM queue_entry WHERE 1=1", []
        if queue is not None:
            sql += " AND queue=?"
            params.append(check_queue_name(queue))
        if state is not None:
            if state not in STATES:
                raise QueueError("state", f"expected one of {', '.join(STATES)}")
            sql += " AND state=?"
            params.append(state)
        sql += " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_entry(r) for r in self._store.conn.execute(sql, params)]

    def stats(self) -> dict[str, Any]:
        rows = self._store.conn.execute(
            "SELECT queue, state, COUNT(*) AS count, SUM(body_length) AS bytes, "
            "MIN(created_at) AS oldest FROM queue_entry GROUP BY queue, state "
            "ORDER BY queue, state").fetchall()
        segments = [p for p in self.directory.glob("*.seg")]
        return {
            "queues": [dict(r) for r in rows],
            "segments": len(segments),
            "segment_bytes": sum(_size(p) for p in segments),
        }

    # -- segment collection ------------------------------------------------------------

    def collect_segments(self) -> int:
        """Delete every segment no entry references and no writer holds; return count."""
        removed = 0
        for path in self.directory.iterdir():
            if path.name.startswith(".new-"):
                # Another process's segment between its creation and its lock: only a
                # dead process's leftover may go.
                pid = path.name.split("-")[1]
                if pid.isdigit() and process_alive(int(pid)):
                    continue
                removed += self._collect(f"queue/{path.name}")
            elif path.name.endswith(".seg"):
                removed += self._collect(f"queue/{path.name}")
        return removed

    def _collect(self, segment: str) -> int:
        if not segment.startswith("queue/"):
            return 0
        conn = self._store.conn
        if conn.execute("SELECT 1 FROM queue_entry WHERE segment=? LIMIT 1",
                        (segment,)).fetchone():
            return 0
        path = self.root / segment
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return 0
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0      # a writer still appends to it
            # Nothing references it and nobody can add a reference: only ``route`` reuses
            # a segment, and it needs a live entry in it.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return 1
        finally:
            os.close(fd)

    def segment_names(self) -> Iterable[str]:
        return sorted(p.name for p in self.directory.glob("*.seg"))


def _once_outcome(done: Future[QueueEntry], future: Future[QueueEntry], key: str) -> None:
    error = done.exception()
    if isinstance(error, sqlite3.IntegrityError):
        future.set_exception(AlreadyQueued("once_key", f"{key!r} was queued before"))
    elif error is not None:
        future.set_exception(error)
    else:
        future.set_result(done.result())


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _delete_finished(conn: sqlite3.Connection, ids: Sequence[int],
                     worker: str | None) -> list[tuple[int, str]]:
    """Delete finished entries: any of ``ids``, or with ``worker`` only those it still
    holds claimed. ``(id, segment)`` of each deleted row."""
    marks = ", ".join("?" * len(ids))
    if worker is None:
        sql, params = (f"DELETE FROM queue_entry WHERE id IN ({marks}) RETURNING id, segment",
                       list(ids))
    else:
        sql, params = (f"DELETE FROM queue_entry WHERE id IN ({marks}) AND state='claimed' "
                       "AND claimed_by=? RETURNING id, segment", [*ids, worker])
    return [(row[0], row[1]) for row in conn.execute(sql, params).fetchall()]


@contextlib.contextmanager
def _savepoint(conn: sqlite3.Connection, name: str) -> Iterator[None]:
    """Statements that stay together: on any exception, none of them stays."""
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        conn.execute(f"ROLLBACK TO {name}")
        conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")


def _with_tracking(envelope: Envelope, tracking_id: str) -> Envelope:
    return Envelope(sender=envelope.sender, recipients=list(envelope.recipients),
                    client_ip=envelope.client_ip, auth_user=envelope.auth_user,
                    tracking_id=tracking_id, extra=dict(envelope.extra))


def _envelope_json(envelope: Envelope) -> dict[str, Any]:
    return {"sender": envelope.sender, "recipients": list(envelope.recipients),
            "client_ip": envelope.client_ip, "auth_user": envelope.auth_user,
            "tracking_id": envelope.tracking_id, "extra": envelope.extra}


def _insert_params(queue: str, envelope: Envelope, location: tuple[str, int, int],
                   now: float) -> tuple[Any, ...]:
    segment, offset, length = location
    return (queue, envelope.tracking_id, envelope.sender, json.dumps(list(envelope.recipients)),
            envelope.client_ip, envelope.auth_user, json.dumps(envelope.extra, sort_keys=True),
            segment, offset, length, now, now)


def _entry(row: sqlite3.Row) -> QueueEntry:
    envelope = Envelope(sender=row["sender"], recipients=json.loads(row["recipients"]),
                        client_ip=row["client_ip"], auth_user=row["auth_user"],
                        tracking_id=row["tracking_id"], extra=json.loads(row["envelope"]))
    return QueueEntry(id=row["id"], queue=row["queue"], state=row["state"],
                      tracking_id=row["tracking_id"], envelope=envelope,
                      segment=row["segment"], body_offset=row["body_offset"],
                      body_length=row["body_length"], created_at=row["created_at"],
                      next_attempt_at=row["next_attempt_at"], attempts=row["attempts"],
                      claimed_by=row["claimed_by"], claim_expires=row["claim_expires"],
                      last_error=row["last_error"])
