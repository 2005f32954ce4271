"""The shared queue consumer: bulk claims, handlers that finish through a future."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Any

from postroom.services.queue_worker import QueueWorker
from postroom.store import Store
from postroom.store.queue import Envelope, QueueEntry

QUEUE = "SF.outgoing"


def _fill(store: Store, count: int) -> None:
    futures = [store.queue.enqueue_async(QUEUE, Envelope(sender="", recipients=["[SF:po/a]"]),
                                         f"Subject: {n}\r\n\r\nbody\r\n".encode())
               for n in range(count)]
    for future in futures:
        future.result()


def _wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _states(store: Store) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in store.queue.list(QUEUE):
        counts[entry.state] = counts.get(entry.state, 0) + 1
    return counts


def test_a_handler_finishing_through_a_future_frees_its_thread_at_once(store: Store) -> None:
    _fill(store, 40)
    seen: list[int] = []
    worker: QueueWorker

    def handler(entry: QueueEntry) -> Future[Any]:
        seen.append(entry.id)
        return store.queue.ack_async(entry.id, worker=worker.worker_id)  # type: ignore[attr-defined,no-any-return]

    worker = QueueWorker(store, QUEUE, handler, name="test", threads=lambda: 1,
                         poll_seconds=0.2, claim_batch=16)
    worker.start()
    try:
        _wait_for(lambda: worker.processed == 40)
    finally:
        worker.stop()
    assert len(seen) == len(set(seen)) == 40
    assert store.queue.list(QUEUE) == []                 # every entry acknowledged


def test_a_thread_busy_longer_than_the_slot_wait_does_not_stall_the_queue_until_the_poll(
        store: Store) -> None:
    """The dispatcher waits for a free thread on the slots, not on the wake listener: the
    next entry starts when the slow one ends, not at the next poll (30 s here)."""
    _fill(store, 3)
    started: list[float] = []

    def handler(entry: QueueEntry) -> None:
        started.append(time.monotonic())
        if len(started) == 1:
            time.sleep(1.5)          # longer than the dispatcher's one-second slot wait

    worker = QueueWorker(store, QUEUE, handler, name="test", threads=lambda: 1,
                         poll_seconds=30.0, claim_batch=1)
    begin = time.monotonic()
    worker.start()
    try:
        _wait_for(lambda: worker.processed == 3, timeout=10.0)
    finally:
        worker.stop()
    assert started[1] - started[0] < 3.0
    assert time.monotonic() - begin < 10.0


def test_a_failed_future_retries_the_entry(store: Store) -> None:
    _fill(store, 1)

    def handler(entry: QueueEntry) -> Future[Any]:
        failed: Future[Any] = Future()
        failed.set_exception(OSError("disk on fire"))
        return failed

    worker = QueueWorker(store, QUEUE, handler, name="test", threads=lambda: 2,
                         poll_seconds=0.2, error_retry_seconds=3600)
    worker.start()
    try:
        _wait_for(lambda: worker.processed == 1)
        _wait_for(lambda: _states(store) == {"ready": 1})
    finally:
        worker.stop()
    [entry] = store.queue.list(QUEUE)
    assert "disk on fire" in (entry.last_error or "")
    assert entry.next_attempt_at > time.time() + 3000     # retried later, not lost


def test_claimed_entries_no_thread_started_are_handed_back_at_stop(store: Store) -> None:
    _fill(store, 10)
    started = threading.Event()
    release = threading.Event()

    def handler(entry: QueueEntry) -> None:
        started.set()
        release.wait(10)

    worker = QueueWorker(store, QUEUE, handler, name="test", threads=lambda: 1,
                         poll_seconds=0.2, claim_batch=64)
    worker.start()
    assert started.wait(10)
    assert _states(store) == {"claimed": 10}              # one claim took them all
    stopper = threading.Thread(target=worker.stop)
    stopper.start()
    time.sleep(0.2)
    release.set()
    stopper.join(20)
    # The one being handled was finished (acknowledged); the other nine are ready again
    # for the next worker, not stuck in a claim until the lease runs out.
    assert worker.processed == 1
    assert _states(store) == {"ready": 9}


def test_entries_waiting_too_long_for_a_thread_are_handed_back_not_handled_late(
        store: Store) -> None:
    _fill(store, 5)
    handled: list[tuple[int, int]] = []

    def handler(entry: QueueEntry) -> None:
        handled.append((entry.id, entry.attempts))
        if len(handled) == 1:
            time.sleep(0.5)       # longer than a quarter of the lease: the others wait

    worker = QueueWorker(store, QUEUE, handler, name="test", threads=lambda: 1,
                         poll_seconds=0.2, lease_seconds=1.0, claim_batch=64)
    worker.start()
    try:
        _wait_for(lambda: worker.processed == 5)
    finally:
        worker.stop()
    assert sorted(entry_id for entry_id, _ in handled) == sorted(set(i for i, _ in handled))
    assert len(handled) == 5 and store.queue.list(QUEUE) == []
    assert {attempts for _, attempts in handled[1:]} == {2}   # claimed again, afresh


def test_a_batch_handler_gets_the_backlog_in_batches_and_each_outcome_counts(
        store: Store) -> None:
    """``batch_handler``: a thread hands its entry and the backlog's next ones to one
    call; an entry answered with an exception is retried, the others acknowledged."""
    _fill(store, 50)
    sizes: list[int] = []
    worker: QueueWorker

    def batch(entries: Any) -> list[Any]:
        sizes.append(len(entries))
        outcomes: list[Any] = []
        for entry in entries:
            if b"Subject: 7\r\n" in store.queue.read_body(entry):
                outcomes.append(OSError("disk on fire"))
            else:
                outcomes.append(store.queue.ack_async(  # type: ignore[attr-defined]
                    entry.id, worker=worker.worker_id))
        return outcomes

    def single(entry: QueueEntry) -> None:
        raise AssertionError("the batch handler should have been used")

    worker = QueueWorker(store, QUEUE, single, name="test", threads=lambda: 1,
                         poll_seconds=0.2, claim_batch=64, error_retry_seconds=3600,
                         batch_handler=batch, batch_size=16)
    worker.start()
    try:
        _wait_for(lambda: worker.processed == 50)
    finally:
        worker.stop()
    assert sum(sizes) == 50 and max(sizes) == 16 and len(sizes) <= 5
    [left] = store.queue.list(QUEUE)
    assert "disk on fire" in (left.last_error or "") and left.state == "ready"
    assert b"Subject: 7\r\n" in store.queue.read_body(left)


def test_with_join_after_one_thread_takes_fast_entries_and_others_join_a_stalled_one(
        store: Store) -> None:
    """join_after: fast handlers all run on one thread (no other competes for the
    interpreter lock); while it is stuck in a slow handler, other threads join, up to
    threads(), so the slow entry does not hold the rest back."""
    _fill(store, 30)
    threads_seen: set[int] = set()
    release = threading.Event()
    slow_started = threading.Event()
    lock = threading.Lock()
    handled: list[int] = []

    def handler(entry: QueueEntry) -> None:
        with lock:
            threads_seen.add(threading.get_ident())
            handled.append(entry.id)
            first_slow = len(handled) == 21
        if first_slow:
            slow_started.set()
            release.wait(10)

    worker = QueueWorker(store, QUEUE, handler, name="test", threads=lambda: 4,
                         poll_seconds=0.2, claim_batch=64, join_after=0.5)
    worker.start()
    try:
        assert slow_started.wait(10)
        assert len(threads_seen) == 1           # the first twenty on the one thread
        # The other nine are handled by threads that joined while the first was stuck.
        _wait_for(lambda: worker.processed == 29, timeout=10)
        assert 2 <= len(threads_seen) <= 4
        release.set()
        _wait_for(lambda: worker.processed == 30, timeout=10)
    finally:
        release.set()
        worker.stop()
    assert sorted(handled) == sorted(set(handled))
    assert store.queue.list(QUEUE) == []
