"""A queue's consumer: claim entries, hand them to worker threads, finish each one.

The MTA and every connector (post office, SMTP out, list server) work a queue the
same way (manual chapter 3): wait for entries, take a few, process each, and leave
each one acknowledged, routed, retried or failed. This is that loop, once.

* **No polling delay:** the dispatcher sleeps on a :class:`~postroom.store.wake.WakeListener`
  (other processes) and the queue's in-process ``subscribe`` callback; it also wakes
  every ``poll_seconds`` as a fallback (retries that came due, expired leases of a
  worker that crashed, a second consumer that could not bind the wake name).
* **Bounded concurrency:** at most ``threads()`` entries in flight (the manual's
  "maximum threads" settings); the store's blocking calls release the GIL.
* **A killed process's entries come back at once:** worker ids are
  ``name:host:pid``; a worker takes back the claims of its own kind on this host whose
  process no longer runs (at start and at every poll), instead of waiting out the
  lease (which stays the guard for other hosts and hung processes).
* **Never stuck, never down:** a handler that raises does not stop the loop. The entry
  is retried after ``error_retry_seconds``; after ``max_errors`` attempts it goes to the
  bad mail area (manual: messages that cannot be processed), so one poisonous message
  cannot block or loop forever.

* **Claims in bulk:** the dispatcher claims up to :data:`CLAIM_BATCH` entries at once
  (one write transaction for all of them, instead of one per free thread); those
  no thread can take yet wait in a local backlog, and a thread that finishes an entry
  takes the next one from it without a round through the dispatcher. Entries still in
  the backlog at ``stop``, or after a quarter of their lease (slow handlers, one
  thread), are handed back rather than handled late: a lease must not run out while
  the entry waits here, or another worker could take it too.

Handlers own the outcome of an entry: they call ``ack``/``route``/``retry``/``fail``
(with ``worker=self.worker_id``) themselves. An entry left claimed by a handler that
returned normally is acknowledged by the loop, so "returned" means "done".

**Finishing asynchronously.** A handler may instead return the
:class:`~concurrent.futures.Future` of the store call that finishes the entry
(``route_async``, ``ack_async``): its thread is free at once for the next entry, and
the entry's outcome is that future's. This is what lets the group-commit writers make
one batch of many entries: a thread that waited for its own commit would keep each
batch as small as the thread count. A failed future is handled like a handler that
raised (retry, then bad mail); at most :data:`MAX_PENDING` futures are outstanding
(a handler returning one more waits), and ``stop`` waits for them.

**Threads join when the running ones stall** (``join_after``, off unless given). With
handlers that do their work on the CPU and finish through a future (the MTA), every
thread beyond the first only competes for the interpreter lock: each system call of a
handler hands the lock to another thread and waits to get it back. A worker given
``join_after`` therefore starts one thread, which takes the backlog entry after entry,
and lets another join only while every running thread has been inside one handler for
``join_after`` seconds (a pickup event program, a command-line virus scanner: the
blocking work the manual's thread setting is for), one more per ``join_after``, up to
``threads()``. Measured with ``bench/delivery_stages.py --stage mta`` (4,000 messages,
``max_threads`` 8): 0.70-0.76 ms of CPU a message with every thread started at once,
0.65-0.70 with ``join_after`` (one thread ran: 8.8 → 3.0 context switches a message),
as with ``max_threads`` 1 in the same session (0.61-0.67).

**Batches.** A handler that works best on several entries at once (the post office
connector: one group commit for all their mailbox appends, one thread instead of
dozens waiting on the GIL) is given as ``batch_handler`` with ``batch_size``: a thread
takes its entry and up to ``batch_size - 1`` more from the backlog, and the handler
answers for each what a single handler would return, or the exception it would raise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from postroom.store import Store
from postroom.store.processes import process_alive
from postroom.store.queue import QueueEntry, QueueError
from postroom.store.wake import WakeListener

log = logging.getLogger(__name__)

Handler = Callable[[QueueEntry], "Future[Any] | None"]
BatchHandler = Callable[[Sequence[QueueEntry]], Sequence["Future[Any] | Exception | None"]]

CLAIM_BATCH = 64
MAX_PENDING = 1024


class QueueWorker:
    """Consume ``queue`` with ``handler`` on up to ``threads()`` threads."""

    def __init__(self, store: Store, queue: str, handler: Handler, *, name: str,
                 threads: Callable[[], int] = lambda: 4, poll_seconds: float = 5.0,
                 lease_seconds: float = 600.0, error_retry_seconds: float = 300.0,
                 max_errors: int = 5, claim_batch: int = CLAIM_BATCH,
                 batch_handler: BatchHandler | None = None, batch_size: int = 1,
                 join_after: float | None = None) -> None:
        self.store = store
        self.queue = queue
        self.handler = handler
        self.batch_handler = batch_handler
        self.batch_size = max(1, batch_size) if batch_handler is not None else 1
        self.name = name
        self.threads = threads
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.error_retry_seconds = error_retry_seconds
        self.max_errors = max_errors
        self.claim_batch = max(1, claim_batch)
        self.join_after = join_after
        # Running threads (join_after): since when each has been in its current handler
        # (None: between two entries); set when a thread ends.
        self._busy_since: dict[int, float | None] = {}
        self._starting = 0          # handed to the pool, not running yet
        self._thread_ended = threading.Event()
        self.worker_id = f"{name}:{socket.gethostname()}:{os.getpid()}"
        self._listener: WakeListener | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._slots = threading.Semaphore(0)
        self._slot_count = 0
        # Claimed, not started yet: (entry, monotonic time of the claim).
        self._backlog: deque[tuple[QueueEntry, float]] = deque()
        self._room = threading.Semaphore(MAX_PENDING)  # for futures still to complete
        self._pending = 0
        self._lock = threading.Lock()
        self._settled_all = threading.Condition(self._lock)
        self.processed = 0      # entries finished (handler returned, future completed)

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        self._listener = WakeListener(self.store.home.root, self.queue)
        self.store.queue.subscribe(self._on_commit)
        self._resize(max(1, int(self.threads())))
        self._pool = ThreadPoolExecutor(max_workers=256, thread_name_prefix=self.name)
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-dispatch",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Take no new entries; wait for the ones in flight (their leases expire if
        we are killed instead); hand back the claimed ones no thread started."""
        self._stop.set()
        if self._listener is not None:
            self._listener.poke()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)
        with self._settled_all:
            self._settled_all.wait_for(lambda: self._pending == 0, timeout)
            unstarted, self._backlog = [e for e, _ in self._backlog], deque()
        self._hand_back(unstarted)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def settings_changed(self) -> None:
        self._resize(max(1, int(self.threads())))
        self.wake()

    def wake(self) -> None:
        if self._listener is not None:
            self._listener.poke()

    # -- the loop ---------------------------------------------------------------------

    def _on_commit(self, queues: Sequence[str]) -> None:
        if self.queue in queues:
            self.wake()

    def _resize(self, wanted: int) -> None:
        with self._lock:
            while self._slot_count < wanted:
                self._slot_count += 1
                self._slots.release()
            # Shrinking: surplus slots are swallowed as they come back (_process).

    def reclaim_from_dead(self) -> int:
        """Entries claimed by a process of this host that no longer runs (killed, crashed)
        become ready at once instead of after their lease."""
        prefix = f"{self.name}:{socket.gethostname()}:"
        dead = []
        for claimant in self.store.queue.claimants(self.queue):
            if not claimant.startswith(prefix) or claimant == self.worker_id:
                continue
            pid = claimant[len(prefix):]
            if pid.isdigit() and not process_alive(int(pid)):
                dead.append(claimant)
        count = self.store.queue.abandon(self.queue, dead) if dead else 0
        if count:
            log.warning("%s: took back %d entr(y/ies) of %s", self.name, count,
                        ", ".join(dead))
        return count

    def _run(self) -> None:
        assert self._listener is not None
        last_reclaim = 0.0
        while not self._stop.is_set():
            if time.monotonic() - last_reclaim >= self.poll_seconds:
                last_reclaim = time.monotonic()
                try:
                    self.reclaim_from_dead()
                except Exception:
                    log.exception("%s: reclaiming entries failed", self.name)
            try:
                claimed = self._claim_some()
            except Exception:
                log.exception("%s: claim failed", self.name)
                claimed = 0
            if claimed != 0:
                continue      # started some (more may be due), or no thread was free yet
            self._listener.wait(self.poll_seconds)

    def _claim_some(self) -> int | None:
        """Start as many entries as there are free slots (from the backlog first, else
        claimed now, up to ``claim_batch`` at once); 0 when the queue is empty, None when
        no thread was free for a while.

        The dispatcher waits for a free thread on the slots' semaphore, which a finishing
        thread releases, and sleeps on the wake listener only after the queue had nothing
        due: a finishing thread need not poke it (a datagram, and a wake-up of the
        dispatcher, per entry)."""
        if not self._slots.acquire(timeout=min(self.poll_seconds, 1.0)):
            return None
        free = 1
        while self._slots.acquire(blocking=False):
            free += 1
        if self._stop.is_set():
            self._give_back(free)
            return 0
        if self.join_after is not None:
            self._thread_ended.clear()
            wait = self._until_join()
            if wait is not None:
                self._give_back(free)
                return self._feed_running(wait)
            self._give_back(free - 1)      # one thread joins at a time
            free = 1
        started: list[QueueEntry] = []
        try:
            while len(started) < free:
                entry = self._from_backlog()
                if entry is None:
                    break
                started.append(entry)
            if not started:
                entries = self._claim(max(free, self.claim_batch))
                started = entries[:free]
                self._to_backlog(entries[free:])
        finally:
            self._give_back(free - len(started))
        assert self._pool is not None
        with self._lock:
            self._starting += len(started)
        for entry in started:
            self._pool.submit(self._process, entry)
        return len(started)

    def _until_join(self) -> float | None:
        """Seconds until another thread may be needed, or None: start one now (none
        runs, or every running one has been in its handler ``join_after`` seconds)."""
        assert self.join_after is not None
        now = time.monotonic()
        with self._lock:
            if self._starting:
                return self.join_after
            running = list(self._busy_since.values())
        soonest: float | None = None
        for since in running:
            left = self.join_after if since is None else since + self.join_after - now
            if left > 0:
                soonest = left if soonest is None else min(soonest, left)
        return soonest

    def _feed_running(self, wait: float) -> int:
        """Threads are running and not stalled: keep their backlog filled and look
        again when one ends or may have stalled; 0 when the queue had nothing due."""
        with self._lock:
            empty = not self._backlog
        if empty:
            entries = self._claim(self.claim_batch)
            if not entries:
                return 0
            self._to_backlog(entries)
        self._thread_ended.wait(max(wait, 0.001))
        return 1

    def _claim(self, limit: int) -> list[QueueEntry]:
        return self.store.queue.claim(self.queue, self.worker_id, limit=limit,
                                      lease_seconds=self.lease_seconds)

    def _to_backlog(self, entries: Sequence[QueueEntry]) -> None:
        """Claimed entries for the threads to take, stamped with the time of the claim."""
        now = time.monotonic()
        with self._lock:
            self._backlog.extend((entry, now) for entry in entries)

    def _from_backlog(self) -> QueueEntry | None:
        """The next claimed entry to start; those that waited too long are handed back."""
        stale: list[QueueEntry] = []
        found = None
        limit = time.monotonic() - self.lease_seconds / 4
        with self._lock:
            while self._backlog and not self._stop.is_set():
                entry, claimed = self._backlog.popleft()
                if claimed >= limit:
                    found = entry
                    break
                stale.append(entry)
        self._hand_back(stale)
        return found

    def _hand_back(self, entries: Sequence[QueueEntry]) -> None:
        """Claimed entries we will not handle: ready again at once, for any worker."""
        for entry in entries:
            with contextlib.suppress(Exception):
                self.store.queue.retry(entry.id, time.time(), entry.last_error or "",
                                       worker=self.worker_id)

    def _give_back(self, count: int) -> None:
        for _ in range(count):
            self._slots.release()

    def _process(self, entry: QueueEntry | None) -> None:
        """Handle ``entry``, then the backlog's next ones, on this thread and slot."""
        surplus = False
        me = threading.get_ident()
        busy = self._busy_since
        with self._lock:
            self._starting -= 1
            busy[me] = None
        try:
            while entry is not None:
                busy[me] = time.monotonic()
                if self.batch_size > 1:
                    self._handle_batch(entry)
                else:
                    self._handle(entry)
                busy[me] = None
                with self._lock:
                    surplus = self._slot_count > max(1, int(self.threads()))
                    if surplus:
                        self._slot_count -= 1
                entry = None if surplus else self._from_backlog()
        finally:
            with self._lock:
                busy.pop(me, None)
            if not surplus:
                self._slots.release()
            self._thread_ended.set()

    def _handle(self, entry: QueueEntry) -> None:
        try:
            outcome: Future[Any] | Exception | None = self.handler(entry)
        except Exception as exc:
            outcome = exc
        self._finish(entry, outcome)

    def _handle_batch(self, first: QueueEntry) -> None:
        """``first`` and what the backlog holds, up to ``batch_size``, in one call."""
        assert self.batch_handler is not None
        batch = [first]
        while len(batch) < self.batch_size:
            entry = self._from_backlog()
            if entry is None:
                break
            batch.append(entry)
        try:
            outcomes: Sequence[Future[Any] | Exception | None] = self.batch_handler(batch)
            if len(outcomes) != len(batch):
                raise RuntimeError(f"{len(outcomes)} outcomes for {len(batch)} entries")
        except Exception as exc:
            outcomes = [exc] * len(batch)
        for entry, outcome in zip(batch, outcomes, strict=True):
            self._finish(entry, outcome)

    def _finish(self, entry: QueueEntry, outcome: Future[Any] | Exception | None) -> None:
        """What the handler answered for ``entry``: an error, a future or done."""
        if isinstance(outcome, Exception):
            log.error("%s: entry %s (%s) failed", self.name, entry.id, entry.tracking_id,
                      exc_info=outcome)
            self._after_error(entry, outcome)
            self._count()
            return
        if isinstance(outcome, Future):
            self._room.acquire()
            with self._lock:
                self._pending += 1
            outcome.add_done_callback(lambda done: self._settle(entry, done))
            return
        self._ack_if_still_claimed(entry)
        self._count()

    def _settle(self, entry: QueueEntry, done: Future[Any]) -> None:
        """A handler's future completed (run by the thread that completed it)."""
        try:
            error = done.exception()
            if isinstance(error, QueueError | LookupError):
                # The entry is gone or no longer ours (finished meanwhile, lease lost):
                # nothing to retry.
                log.warning("%s: entry %s (%s): %s", self.name, entry.id, entry.tracking_id,
                            error)
            elif error is not None:
                log.error("%s: entry %s (%s) failed", self.name, entry.id, entry.tracking_id,
                          exc_info=error)
                self._error_later(entry, error)
        finally:
            self._room.release()
            with self._settled_all:
                self._pending -= 1
                self.processed += 1
                self._settled_all.notify_all()

    def _error_later(self, entry: QueueEntry, error: BaseException) -> None:
        """Reschedule on a pool thread, not on the store's writer thread that runs
        future callbacks; inline when the pool is gone (stopping)."""
        exc = error if isinstance(error, Exception) else RuntimeError(str(error))
        try:
            assert self._pool is not None
            self._pool.submit(self._after_error, entry, exc)
        except RuntimeError:
            self._after_error(entry, exc)

    def _count(self) -> None:
        with self._lock:
            self.processed += 1

    def _ack_if_still_claimed(self, entry: QueueEntry) -> None:
        """The handler returned: acknowledge, unless it already finished the entry
        (routed, retried, failed, acknowledged): then the store refuses, harmlessly."""
        with contextlib.suppress(QueueError, LookupError):
            self.store.queue.ack(entry.id, worker=self.worker_id)

    def _after_error(self, entry: QueueEntry, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"[:500]
        try:
            if entry.attempts + 1 >= self.max_errors:
                self.store.queue.move_to(entry.id, "bad", f"{self.name}: {error}")
            else:
                self.store.queue.retry(entry.id, time.time() + self.error_retry_seconds,
                                       error, worker=self.worker_id)
        except Exception:
            log.exception("%s: could not reschedule entry %s", self.name, entry.id)
