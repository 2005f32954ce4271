"""Group commit: a writer makes many callers' changes durable together.

Why: on this project's disk one fsync costs about 1.5 ms, so a server that flushes
once per message cannot beat ~700 messages/s (``DEPENDENCIES.md``). A single writer
instead takes everything pending (up to ``max_batch`` operations), performs
their file work, makes all of it durable with ONE flush, applies all their database
changes in ONE ``BEGIN IMMEDIATE`` … ``COMMIT`` transaction (on its own connection),
and only then completes each caller's future. With one caller there is no gain; with
20 or 100 concurrent callers each flush and commit is shared by the whole batch.
Nothing waits on a timer: a batch is whatever accumulated while the previous one was
being flushed and committed.

One thread does both the flush and the commit of a batch. An earlier design
pipelined them (a flusher thread and a committer thread, the next batch's flush
overlapping the previous commit); on two cores, where the services are bound by CPU
rather than by the disk, the hand-offs between the two threads cost more than the
overlap gained, and the batches were smaller. Measured with one thread: SMTP accept
1,130-1,170 → 1,260-1,310 messages/s (CPU 1.3 → 1.15 ms per message), end to end
680 → 730-750 messages/s.

Each operation runs its database part under its own SAVEPOINT, so one failing
operation (a full mailbox, a folder deleted meanwhile) gets its exception while the
others in the batch still commit. If the flush or the commit itself fails, every
operation of the batch fails and is told to discard its files.

Operations implement :class:`Operation`:

* ``prepare()``   file work before the flush, in the writer thread (may raise);
* ``apply(conn)`` database work inside the batch transaction; its return value is
  the caller's result;
* ``committed()`` after the commit (e.g. unlink files the change made unreferenced);
* ``discard()``   after a failure: remove files ``prepare`` (or the caller) wrote.

Operations of one class may also offer ``apply_batch(conn, ops) -> results`` (a
static method): several operations in ONE statement, all or nothing (enqueue: one
multi-row INSERT). The writer uses it for runs of up to :data:`BATCH_STATEMENT_ROWS`
consecutive operations of that class; if it refuses (a constraint, bad input), those
operations are applied one by one so that only the offending one fails.

Operations whose class has a true ``apply_last`` attribute (message tracking rows:
nothing else reads or depends on them within a batch) are applied after all the
others of their batch, so that they form one run for ``apply_batch`` instead of one
statement each between the operations they came with.

An operation that cannot fail half-way may say so with a false ``needs_savepoint``
attribute and runs without one (two statements fewer per operation): an ``apply`` of
exactly one SQL statement (SQLite undoes a failed statement by itself; enqueue is one
INSERT), or one that makes its checks first and then only writes what nothing but the
database itself can refuse (an I/O error fails the whole batch anyway): an IMAP flag
change, a \\Recent claim. Fewer statements matter beyond their own cost: the writer
gives up the interpreter lock at every one, and under load each time waits to get it
back.

Operations whose class has a false ``durable`` attribute (IMAP flag changes,
\\Recent claims, recorded CRLF sizes: what ``Store.transaction(durable=False)``
describes) need not wait for the disk: a batch made only of them commits with
``synchronous=NORMAL``, atomic and crash-safe but not flushed, and the next durable
commit's flush of the same WAL file covers it. A power loss can undo such changes,
never accepted mail; their callers are answered one flush sooner.

The flush itself is supplied by the owner (``syncfs`` of the message filesystem, or
``fdatasync`` of a queue segment) and receives the prepared operations.

**Spaced commits** (``min_interval``, 0 by default): a process whose callers do not
wait on the commit for anything a person waits for may ask its writer to leave at
least ``min_interval`` seconds between the end of one commit and the start of the next.
The MTA does (:mod:`postroom.mta.service`): its routes are handed to the writer and the
thread moves on, so a commit that waits only gathers more of them. An idle writer still
commits at once (the wait counts from the previous commit, long past); under load the
batches grow to what arrived meanwhile. Every commit costs CPU that does not depend on
its size (the flush, ``BEGIN``/``COMMIT``, the write gate, waking the callers) and holds
the gate that every process's commits share, so fewer, larger commits leave more of
both to the processes whose clients wait (SMTP in answering ``250``). Measured end to
end (relay benchmark, two CPUs): the MTA's commits fell from about 1,400 to 400 for
10,000 messages with 30 ms, its CPU from 0.75 to 0.66 ms a message, and SMTP accepted
faster (406 → 420 messages/s, four interleaved pairs).

Known limits: the writer is per process; processes sharing a data directory
serialise on SQLite's write lock (``busy_timeout``), each still batching its own
callers. A batch blocks new submissions only for the time it takes to queue them.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 512
BATCH_STATEMENT_ROWS = 200


class Operation(Protocol):
    def prepare(self) -> None: ...

    def apply(self, conn: sqlite3.Connection) -> Any: ...

    def committed(self) -> None: ...

    def discard(self) -> None: ...


class DatabaseOperation:
    """Base of operations with only database work: nothing to prepare before the flush,
    to clean up after the commit or to discard after a failure."""

    def prepare(self) -> None:
        return None

    def committed(self) -> None:
        return None

    def discard(self) -> None:
        return None


class WriterClosed(RuntimeError):
    """The store was closed; the operation was not performed."""


@dataclass
class WriterStats:
    batches: int = 0
    operations: int = 0
    largest_batch: int = 0
    sizes: dict[int, int] = field(default_factory=dict)   # batch size -> how many batches

    @property
    def mean_batch(self) -> float:
        return self.operations / self.batches if self.batches else 0.0


_STOP = object()
Batch = list[tuple[Operation, Future[Any]]]


class GroupCommitWriter:
    """Batches operations: one thread takes everything pending, prepares and flushes
    it, applies it in one transaction and completes the futures; then the next batch.
    """

    def __init__(self, name: str, connect: Callable[[], sqlite3.Connection],
                 flush: Callable[[Sequence[Operation]], None],
                 max_batch: int = DEFAULT_MAX_BATCH,
                 after_commit: Callable[[Sequence[Operation]], None] | None = None,
                 gate: contextlib.AbstractContextManager[Any] | None = None) -> None:
        self.name = name
        self._gate = gate if gate is not None else contextlib.nullcontext()
        self._after_commit = after_commit
        self._connect = connect
        self._flush = flush
        self.max_batch = max_batch
        self.stats = WriterStats()
        self._pending: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._durable = True        # the connection's synchronous=FULL (store's default)
        self.min_interval = 0.0
        """Seconds from the end of a commit to the start of the next (module docstring)."""
        self._committed_at = 0.0    # time.monotonic() at the end of the last commit

    def submit(self, op: Operation) -> Future[Any]:
        """Queue ``op`` for the next batch; the future completes after its commit."""
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise WriterClosed(f"{self.name}: store is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"{self.name}-writer",
                                                daemon=True)
                self._thread.start()
            self._pending.put((op, future))
        return future

    def close(self, timeout: float | None = 30.0) -> None:
        """Finish what was submitted, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._pending.put(_STOP)
        if thread is not None:
            thread.join(timeout)

    # -- the writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        conn = self._connect()
        stopping = False
        while not stopping:
            item = self._pending.get()
            if item is _STOP:
                break
            self._space()
            batch: Batch = [item]
            while len(batch) < self.max_batch:
                try:
                    item = self._pending.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            try:
                ready = self._prepare_and_flush(batch)
            except BaseException as exc:  # pragma: no cover - defensive: never lose a caller
                log.exception("%s: flush failed", self.name)
                self._fail_all(batch, exc)
                continue
            if not ready:
                continue
            try:
                self._commit(conn, ready)
            except BaseException as exc:  # pragma: no cover - defensive: never lose a caller
                log.exception("%s: commit failed", self.name)
                for _op, fut in ready:
                    if not fut.done():
                        fut.set_exception(exc)

    def _space(self) -> None:
        """Wait out the rest of ``min_interval`` since the last commit (module docstring)."""
        interval = self.min_interval
        if interval > 0:
            wait = self._committed_at + interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)

    def _prepare_and_flush(self, batch: Batch) -> Batch:
        ready: Batch = []
        for op, fut in batch:
            if not fut.set_running_or_notify_cancel():
                op.discard()
                continue
            try:
                op.prepare()
            except Exception as exc:
                op.discard()
                fut.set_exception(exc)
                continue
            ready.append((op, fut))
        if not ready:
            return ready
        try:
            self._flush([op for op, _ in ready])
        except Exception as exc:
            self._fail_all(ready, exc)
            return []
        return ready

    # -- one transaction -----------------------------------------------------------------

    def _commit(self, conn: sqlite3.Connection, ready: Batch) -> None:
        last = [item for item in ready if getattr(item[0], "apply_last", False)]
        if last and len(last) < len(ready):
            ready = [item for item in ready if not getattr(item[0], "apply_last", False)] + last
        outcomes: list[tuple[Operation, Future[Any], Any, BaseException | None]] = []
        try:
            with self._gate:
                try:
                    self._apply_all(conn, ready, outcomes)
                except Exception:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
        except Exception as exc:
            self._fail_all(ready, exc)
            return
        finally:
            self._committed_at = time.monotonic()
        self._count(len(ready))
        if self._after_commit is not None:
            try:
                self._after_commit([op for op, _f, _r, error in outcomes if error is None])
            except Exception:  # pragma: no cover - notification only
                log.exception("%s: after-commit hook failed", self.name)
        for op, fut, result, error in outcomes:
            if error is None:
                try:
                    op.committed()
                except Exception:  # pragma: no cover - cleanup only
                    log.exception("%s: post-commit cleanup failed", self.name)
                fut.set_result(result)
            else:
                op.discard()
                fut.set_exception(error)

    def _apply_all(self, conn: sqlite3.Connection, ready: Batch,
                   outcomes: list[tuple[Operation, Future[Any], Any, BaseException | None]],
                   ) -> None:
        """The batch's transaction: every operation under its savepoint, one COMMIT."""
        self._synchronous(conn, any(getattr(op, "durable", True) for op, _ in ready))
        conn.execute("BEGIN IMMEDIATE")
        one_by_one_until = 0
        for index, (op, fut) in enumerate(ready):
            if index < len(outcomes):
                continue      # applied with the operations before it (apply_batch)
            if index >= one_by_one_until:
                applied, run_end = self._apply_run(conn, ready, index)
                if applied:
                    outcomes.extend(applied)
                    continue
                one_by_one_until = run_end     # no run here, or it refused
            savepoint = getattr(op, "needs_savepoint", True)
            if savepoint:
                conn.execute("SAVEPOINT op")
            try:
                result = op.apply(conn)
            except sqlite3.DatabaseError as exc:
                if not isinstance(exc, sqlite3.IntegrityError):
                    raise     # I/O error, corruption, lock timeout: the batch fails
                if savepoint:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                outcomes.append((op, fut, None, exc))
                continue
            except Exception as exc:   # the operation's own refusal (quota ...)
                if savepoint:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                outcomes.append((op, fut, None, exc))
                continue
            if savepoint:
                conn.execute("RELEASE op")
            outcomes.append((op, fut, result, None))
        conn.execute("COMMIT")

    def _synchronous(self, conn: sqlite3.Connection, durable: bool) -> None:
        """``synchronous=FULL`` for a batch with a durable operation, else ``NORMAL``
        (see the module docstring); changed only when the batch differs."""
        if durable != self._durable:
            conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._durable = durable

    @staticmethod
    def _apply_run(conn: sqlite3.Connection, ready: Batch, start: int,
                   ) -> tuple[list[tuple[Operation, Future[Any], Any, BaseException | None]],
                              int]:
        """Apply the run of same-class operations at ``start`` with their ``apply_batch``;
        ([], end of the run) when there is no such run or the statement refused (then
        that run goes one by one; the operations after it may form runs again)."""
        kind = type(ready[start][0])
        apply_batch = getattr(kind, "apply_batch", None)
        if apply_batch is None:
            return [], start + 1
        end = start + 1
        limit = min(len(ready), start + BATCH_STATEMENT_ROWS)
        while end < limit and type(ready[end][0]) is kind:
            end += 1
        if end - start < 2:
            return [], end
        run = ready[start:end]
        try:
            results = apply_batch(conn, [op for op, _ in run])
        except sqlite3.DatabaseError as exc:
            if not isinstance(exc, sqlite3.IntegrityError):
                raise     # I/O error, corruption, lock timeout: the batch fails
            return [], end
        except Exception:
            return [], end
        return ([(op, fut, result, None) for (op, fut), result in zip(run, results, strict=True)],
                end)

    def _fail_all(self, ready: Batch, exc: BaseException) -> None:
        for op, fut in ready:
            try:
                op.discard()
            finally:
                if not fut.done():
                    fut.set_exception(exc)

    def _count(self, size: int) -> None:
        stats = self.stats
        stats.batches += 1
        stats.operations += size
        stats.largest_batch = max(stats.largest_batch, size)
        stats.sizes[size] = stats.sizes.get(size, 0) + 1
