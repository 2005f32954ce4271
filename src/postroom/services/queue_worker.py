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

Handlers own the outcome of an entry: they call ``ack``/``route``/``retry``/``fail``
(with ``worker=self.worker_id``) themselves. An entry left claimed by a handler that
returned normally is acknowledged by the loop, so "returned" means "done".
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from postroom.store import Store
from postroom.store.processes import process_alive
from postroom.store.queue import QueueEntry, QueueError
from postroom.store.wake import WakeListener

log = logging.getLogger(__name__)

Handler = Callable[[QueueEntry], None]


class QueueWorker:
    """Consume ``queue`` with ``handler`` on up to ``threads()`` threads."""

    def __init__(self, store: Store, queue: str, handler: Handler, *, name: str,
                 threads: Callable[[], int] = lambda: 4, poll_seconds: float = 5.0,
                 lease_seconds: float = 600.0, error_retry_seconds: float = 300.0,
                 max_errors: int = 5) -> None:
        self.store = store
        self.queue = queue
        self.handler = handler
        self.name = name
        self.threads = threads
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.error_retry_seconds = error_retry_seconds
        self.max_errors = max_errors
        self.worker_id = f"{name}:{socket.gethostname()}:{os.getpid()}"
        self._listener: WakeListener | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._slots = threading.Semaphore(0)
        self._slot_count = 0
        self._in_flight: set[int] = set()
        self._lock = threading.Lock()
        self.processed = 0

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
        we are killed instead)."""
        self._stop.set()
        if self._listener is not None:
            self._listener.poke()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)
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
            # Shrinking: surplus slots are swallowed as they come back (_finish).

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
            if claimed:
                continue
            self._listener.wait(self.poll_seconds)

    def _claim_some(self) -> int:
        """Claim as many entries as there are free slots; 0 when the queue is empty."""
        if not self._slots.acquire(timeout=min(self.poll_seconds, 1.0)):
            return 0          # every thread busy: a finishing one pokes the listener
        free = 1
        while self._slots.acquire(blocking=False):
            free += 1
        if self._stop.is_set():
            self._give_back(free)
            return 0
        entries = self.store.queue.claim(self.queue, self.worker_id, limit=free,
                                         lease_seconds=self.lease_seconds)
        self._give_back(free - len(entries))
        assert self._pool is not None
        for entry in entries:
            with self._lock:
                self._in_flight.add(entry.id)
            self._pool.submit(self._process, entry)
        return len(entries)

    def _give_back(self, count: int) -> None:
        for _ in range(count):
            self._slots.release()

    def _process(self, entry: QueueEntry) -> None:
        try:
            self.handler(entry)
            self._ack_if_still_claimed(entry)
        except Exception as exc:
            log.exception("%s: entry %s (%s) failed", self.name, entry.id, entry.tracking_id)
            self._after_error(entry, exc)
        finally:
            with self._lock:
                self._in_flight.discard(entry.id)
                surplus = self._slot_count > max(1, int(self.threads()))
                if surplus:
                    self._slot_count -= 1
            self.processed += 1
            if not surplus:
                self._slots.release()
            if self._listener is not None:
                self._listener.poke()

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
