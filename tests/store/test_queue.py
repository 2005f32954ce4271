"""Connector queues: enqueue, claim with leases, retry, fail, bad mail, quarantine, route."""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from postroom.store import Store
from postroom.store.backends.sqlite.queue import SqliteQueue
from postroom.store.queue import Envelope, QueueError, new_tracking_id
from tests.store.helpers import message


def envelope(n: int = 1, **extra: object) -> Envelope:
    return Envelope(sender=f"sender{n}@example.net", recipients=["[SMTP:bob@example.com]"],
                    client_ip="192.0.2.7", extra=dict(extra))


def test_tracking_ids_are_short_unique_and_sorted_by_time() -> None:
    ids = [new_tracking_id(1_800_000_000 + n) for n in range(50)]
    assert all(len(i) == 16 and i.isalnum() for i in ids)
    assert ids == sorted(ids)
    assert len({new_tracking_id() for _ in range(1000)}) == 1000


def test_enqueue_then_read_back(store: Store) -> None:
    entry = store.queue.enqueue("SMTP.inbound", envelope(helo="mx.example.net"), message(1))
    assert entry.state == "ready" and entry.size == 5000
    assert entry.envelope.extra == {"helo": "mx.example.net"}
    assert store.queue.read_body(entry) == message(1)
    with store.queue.open_body(entry) as body:
        assert body.read(5) == b"From:"
        assert len(body.read()) == 4995
    same = store.queue.get(entry.tracking_id)
    assert same == store.queue.get(entry.id) == entry
    assert entry.segment.startswith("queue/") and entry.segment.endswith(".seg")


def test_read_body_reads_all_or_the_first_bytes(store: Store) -> None:
    entry = store.queue.enqueue("SMTP.inbound", envelope(), message(2))
    assert store.queue.read_body(entry) == message(2)
    assert store.queue.read_body(entry, 10) == message(2)[:10]
    assert store.queue.read_body(entry, 10_000_000) == message(2)
    assert store.queue.read_body(entry, 0) == b""


def test_enqueue_from_spool_file(store: Store, tmp_path: Path) -> None:
    spool = tmp_path / "big.eml"
    spool.write_bytes(message(3, 3_000_000))
    entry = store.queue.enqueue("SMTP.inbound", envelope(), spool)
    assert store.queue.read_body(entry) == spool.read_bytes()


def test_bodies_and_spool_files_of_one_batch_keep_their_order(store: Store,
                                                             tmp_path: Path) -> None:
    spool = tmp_path / "big.eml"
    spool.write_bytes(message(7, 400_000))
    bodies: list[bytes | Path] = [message(1), message(2), spool, message(3), spool, message(4)]
    futures = [store.queue.enqueue_async("SMTP.inbound", envelope(n), body)
               for n, body in enumerate(bodies)]
    entries = [f.result() for f in futures]
    for entry, body in zip(entries, bodies, strict=True):
        expected = body.read_bytes() if isinstance(body, Path) else body
        assert store.queue.read_body(entry) == expected


def test_short_writes_and_a_full_disk_leave_every_body_where_its_entry_says(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch's bodies go out in one writev: a short write continues where it stopped,
    and after a failed one (the disk full) later bodies are still found at their offsets."""
    real = os.writev

    def short(fd: int, views: list[memoryview]) -> int:
        return real(fd, [views[0][:700]])

    monkeypatch.setattr(os, "writev", short)
    futures = [store.queue.enqueue_async("SMTP.inbound", envelope(n), message(n))
               for n in range(5)]
    entries = [f.result() for f in futures]
    assert [store.queue.read_body(e) for e in entries] == [message(n) for n in range(5)]

    def full(fd: int, views: list[memoryview]) -> int:
        real(fd, [views[0][:100]])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "writev", full)
    with pytest.raises(OSError):
        store.queue.enqueue("SMTP.inbound", envelope(9), message(9))
    monkeypatch.setattr(os, "writev", real)
    later = [store.queue.enqueue("SMTP.inbound", envelope(n), message(n)) for n in (10, 11)]
    assert [store.queue.read_body(e) for e in later] == [message(10), message(11)]
    assert len(store.queue.list("SMTP.inbound")) == 7


def test_a_failed_write_fails_the_batch_whose_bodies_it_left_unwritten(
        store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A body in memory waits for the batch's writev; a spool file after it in the same
    batch writes it out first. If that write fails, the earlier body's entry must not
    commit pointing at bytes that were never written."""
    spool = tmp_path / "big.eml"
    spool.write_bytes(message(5, 300_000))
    real = os.writev
    first = store.queue.enqueue_async("SMTP.inbound", envelope(1), message(1))
    with store.write_gate:                 # the writer now waits with `first` flushed
        time.sleep(0.5)                    # ... and the next two queue up as one batch
        failed_once: list[bool] = []

        def full_once(fd: int, views: list[memoryview]) -> int:
            if not failed_once and any(bytes(v) == message(2) for v in views):
                failed_once.append(True)
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(fd, views)

        monkeypatch.setattr(os, "writev", full_once)
        in_memory = store.queue.enqueue_async("SMTP.inbound", envelope(2), message(2))
        from_file = store.queue.enqueue_async("SMTP.inbound", envelope(3), spool)
    assert store.queue.read_body(first.result()) == message(1)
    assert failed_once
    for future in (in_memory, from_file):
        with pytest.raises(OSError):
            future.result()
    later = store.queue.enqueue("SMTP.inbound", envelope(4), message(4))
    assert store.queue.read_body(later) == message(4)
    assert sorted(e.envelope.sender for e in store.queue.list("SMTP.inbound")) == [
        "sender1@example.net", "sender4@example.net"]


def test_bad_input_is_refused_and_changes_nothing(store: Store) -> None:
    bad = [
        (("smtp inbound", envelope(), b"x"), "queue"),
        (("SMTP.inbound", Envelope("a@b", []), b"x"), "recipients"),
        (("SMTP.inbound", Envelope("a@b", ["x"], tracking_id="no spaces"), b"x"),
         "tracking_id"),
    ]
    for args, field in bad:
        with pytest.raises(QueueError) as info:
            store.queue.enqueue(*args)
        assert info.value.field == field
    with pytest.raises(QueueError) as info:
        store.queue.enqueue("SMTP.inbound", envelope(), Path("/nonexistent/spool"))
    assert info.value.field == "body"
    assert store.queue.list() == []
    with pytest.raises(QueueError):
        store.queue.list(state="lost")
    with pytest.raises(QueueError):
        store.queue.ack(12345)


def test_concurrent_enqueues_share_flushes(store: Store) -> None:
    barrier = threading.Barrier(20)

    def worker(n: int) -> list[str]:
        barrier.wait()
        return [store.queue.enqueue("SMTP.inbound", envelope(n), message(n * 100 + i)).tracking_id
                for i in range(10)]

    with ThreadPoolExecutor(20) as pool:
        ids = [t for batch in pool.map(worker, range(20)) for t in batch]
    assert len(set(ids)) == 200
    entries = store.queue.list("SMTP.inbound")
    assert len(entries) == 200
    for entry in entries[:: 17]:
        body = store.queue.read_body(entry)
        assert body.startswith(b"From:") and len(body) == 5000
    stats = store.queue.writer_stats
    assert stats.batches < stats.operations  # type: ignore[attr-defined]


def test_claim_lease_expiry_and_retry(store: Store) -> None:
    q = store.queue
    first = q.enqueue("SF.outgoing", envelope(1), message(1))
    later = q.enqueue("SF.outgoing", envelope(2), message(2))
    q.retry(later.id, time.time() + 3600, "try later")   # not due yet
    claimed = q.claim("SF.outgoing", "worker-a", limit=10, lease_seconds=0.2)
    assert [e.id for e in claimed] == [first.id]
    assert claimed[0].state == "claimed" and claimed[0].claimed_by == "worker-a"
    assert q.claim("SF.outgoing", "worker-b", lease_seconds=10) == []
    time.sleep(0.25)     # worker-a "crashed": its lease runs out
    reclaimed = q.claim("SF.outgoing", "worker-b", lease_seconds=10)
    assert [(e.id, e.claimed_by, e.attempts) for e in reclaimed] == [(first.id, "worker-b", 2)]
    # worker-a comes back late: its ack is refused, worker-b's claim stands.
    with pytest.raises(QueueError, match="not claimed by worker-a"):
        q.ack(first.id, worker="worker-a")
    assert q.get(first.id).claimed_by == "worker-b"
    q.retry(first.id, time.time() - 1, "421 try again", worker="worker-b")
    again = q.claim("SF.outgoing", "worker-b")
    assert again[0].last_error == "421 try again"
    q.ack(first.id, worker="worker-b")
    assert [e.id for e in q.list("SF.outgoing")] == [later.id]
    assert q.claim("SMTP.outgoing", "w") == []


def test_claim_takes_the_longest_due_first_with_expired_leases_among_them(
        store: Store) -> None:
    """A claim's two halves (due ready entries, run-out leases) are merged in due
    order and share one limit; not-due, held, other queues' and live leases stay."""
    q = store.queue
    now = time.time()
    made = [q.enqueue("SF.outgoing", envelope(n), message(n)) for n in range(6)]
    for offset, entry in zip((-50, -40, -30, -20, -10, 3600), made, strict=True):
        q.retry(entry.id, now + offset, "waiting")
    other = q.enqueue("LS.outgoing", envelope(9), message(9))
    q.retry(other.id, now - 100, "waiting")
    # made[1] and made[3] were claimed by a worker that died: their leases run out.
    with store.transaction() as conn:
        conn.execute("UPDATE queue_entry SET state='claimed', claimed_by='dead', "
                     "claim_expires=? WHERE id IN (?, ?)", (now - 1, made[1].id, made[3].id))
        # made[2] is claimed by a live worker.
        conn.execute("UPDATE queue_entry SET state='claimed', claimed_by='alive', "
                     "claim_expires=? WHERE id=?", (now + 600, made[2].id))
    first = q.claim("SF.outgoing", "w", limit=3)
    assert [e.id for e in first] == [made[0].id, made[1].id, made[3].id]
    assert {e.claimed_by for e in first} == {"w"}
    rest = q.claim("SF.outgoing", "w", limit=3)
    assert [e.id for e in rest] == [made[4].id]       # made[5] is not due, made[2] is taken
    assert q.get(made[2].id).claimed_by == "alive"
    assert q.get(other.id).state == "ready"


def test_claim_inside_an_open_transaction_joins_it(store: Store) -> None:
    entry = store.queue.enqueue("SF.outgoing", envelope(), message(1))
    with store.transaction():
        claimed = store.queue.claim("SF.outgoing", "w")
    assert [e.id for e in claimed] == [entry.id]
    assert store.queue.get(entry.id).claimed_by == "w"


def test_claim_walks_indexes_instead_of_the_whole_queue(store: Store) -> None:
    """Thousands of claimed or future entries must not make every claim slower."""
    from postroom.store.backends.sqlite.queue import _CLAIM

    plan = " | ".join(row[3] for row in store.conn.execute(
        "EXPLAIN QUERY PLAN " + _CLAIM, ("w", 1.0, "SF.outgoing", 1.0, 10)))
    assert "queue_ready (queue=? AND state=? AND next_attempt_at<?)" in plan
    assert "queue_leases (queue=? AND claim_expires<?)" in plan
    assert "SCAN queue_entry" not in plan


def test_fail_keeps_the_entry_for_the_administrator(store: Store) -> None:
    entry = store.queue.enqueue("SMTP.outgoing", envelope(), message(1))
    store.queue.fail(entry.id, "550 no such user")
    failed = store.queue.list(state="failed")
    assert [(e.id, e.last_error) for e in failed] == [(entry.id, "550 no such user")]
    assert store.queue.claim("SMTP.outgoing", "w") == []
    assert store.queue.read_body(failed[0]) == message(1)


@pytest.mark.parametrize("area,folder", [("bad", "badmail"), ("quarantine", "quarantine")])
def test_move_to_bad_mail_and_quarantine(store: Store, home: Path, area: str,
                                         folder: str) -> None:
    entry = store.queue.enqueue("SMTP.inbound", envelope(), message(5))
    path = store.queue.move_to(entry.id, area, "virus found")  # type: ignore[arg-type]
    assert path == home / folder / f"{entry.tracking_id}.eml"
    assert path.read_bytes() == message(5)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["reason"] == "virus found"
    assert meta["envelope"]["recipients"] == ["[SMTP:bob@example.com]"]
    moved = store.queue.get(entry.id)
    assert moved.state == area and store.queue.read_body(moved) == message(5)
    assert store.queue.claim("SMTP.inbound", "w") == []
    with pytest.raises(QueueError):
        store.queue.move_to(entry.id, "trash", "x")  # type: ignore[arg-type]


def test_route_shares_the_body_and_removes_the_original(store: Store) -> None:
    q = store.queue
    entry = q.enqueue("SMTP.inbound", envelope(), message(8))
    created = q.route(entry.id, [
        ("SF.outgoing", Envelope("a@b", ["[SF:example/bob]"])),
        ("SMTP.outgoing", Envelope("a@b", ["[SMTP:x@remote.example]"])),
    ])
    assert [e.queue for e in created] == ["SF.outgoing", "SMTP.outgoing"]
    assert [e.tracking_id for e in created] == [f"{entry.tracking_id}-1",
                                                f"{entry.tracking_id}-2"]
    assert all(e.segment == entry.segment and e.body_offset == entry.body_offset
               for e in created)
    assert q.read_body(created[1]) == message(8)
    with pytest.raises(QueueError):
        q.get(entry.id)
    with pytest.raises(QueueError):
        q.route(entry.id, [("SF.outgoing", envelope())])
    # A single target keeps the tracking id, so message tracking follows the message.
    single = q.route(created[0].id, [("LS.outgoing", Envelope("a@b", ["[LS:example/news]"]))])
    assert single[0].tracking_id == created[0].tracking_id
    moved = q.requeue(single[0].id, "SF.inbound")
    assert moved.queue == "SF.inbound" and moved.state == "ready"


def test_routes_of_one_batch_each_get_their_successors_and_a_gone_entry_fails_alone(
        store: Store) -> None:
    q = store.queue
    entries = [q.enqueue("MTA.inbound", envelope(n), message(n)) for n in range(40)]
    q.ack(entries[7].id)                       # gone before its route
    futures = [q.route_async(e.id, [("SF.outgoing", Envelope("a@b", [f"[SF:po/u{n}]"]))]
                             + ([("SMTP.outgoing", Envelope("a@b", ["[SMTP:x@r.example]"]))]
                                if n % 3 == 0 else []))
               for n, e in enumerate(entries)]
    for n, (entry, future) in enumerate(zip(entries, futures, strict=True)):
        if n == 7:
            with pytest.raises(QueueError):
                future.result()
            continue
        created = future.result()
        assert [c.queue for c in created] == (["SF.outgoing", "SMTP.outgoing"] if n % 3 == 0
                                              else ["SF.outgoing"])
        assert created[0].envelope.recipients == [f"[SF:po/u{n}]"]
        assert created[0].tracking_id == (f"{entry.tracking_id}-1" if n % 3 == 0
                                          else entry.tracking_id)
        assert q.read_body(created[0]) == message(n)
    assert q.list("MTA.inbound") == []
    assert len(q.list("SF.outgoing")) == 39 and len(q.list("SMTP.outgoing")) == 14
    stats = q.writer_stats
    assert stats.batches < stats.operations  # type: ignore[attr-defined]


def test_acks_of_one_batch_remove_their_entries_and_a_stolen_lease_fails_alone(
        store: Store) -> None:
    q = store.queue
    for n in range(30):
        q.enqueue("SF.outgoing", envelope(n), message(n))
    mine = q.claim("SF.outgoing", "w1", limit=20)
    theirs = q.claim("SF.outgoing", "w2", limit=10)
    futures = [q.ack_async(e.id, worker="w1") for e in mine]
    futures.append(q.ack_async(theirs[0].id, worker="w1"))     # not w1's claim
    futures += [q.ack_async(e.id, worker="w2") for e in theirs[1:]]
    for future in futures[:20] + futures[21:]:
        assert future.result() is None
    with pytest.raises(QueueError):
        futures[20].result()
    assert [e.id for e in q.list("SF.outgoing")] == [theirs[0].id]


def test_segments_rotate_and_are_deleted_when_unreferenced(store: Store, home: Path) -> None:
    queue = SqliteQueue(store, segment_limit=20_000)
    try:
        entries = [queue.enqueue("SMTP.inbound", envelope(n), message(n)) for n in range(10)]
        segments = {e.segment for e in entries}
        assert len(segments) >= 3
        first = entries[0].segment
        routed = queue.route(entries[0].id, [("SF.outgoing", envelope())])
        for e in entries[1:]:
            if e.segment == first:
                queue.ack(e.id)
        queue.collect_pending()
        assert (home / first).exists()          # still referenced by the routed entry
        queue.ack(routed[0].id)
        queue.collect_pending()                 # (acks note segments; sweeps run 2/s)
        assert not (home / first).exists()
        for e in entries[1:]:
            if e.segment != first:
                queue.ack(e.id)
        queue.collect_pending()
        # Only the segment the writer still holds remains.
        assert len(list((home / "queue").glob("*.seg"))) == 1
        stats = queue.stats()
        assert stats["queues"] == [] and stats["segments"] == 1
    finally:
        queue.close()
    # A later open collects the last one, now that no writer holds it.
    reopened = SqliteQueue(store)
    try:
        assert reopened.collected_on_open == 1
        assert list((home / "queue").glob("*.seg")) == []
    finally:
        reopened.close()


def test_stats_count_per_queue_and_state(store: Store) -> None:
    for n in range(3):
        store.queue.enqueue("SMTP.inbound", envelope(n), message(n))
    e = store.queue.enqueue("SMTP.outgoing", envelope(), message(9))
    store.queue.fail(e.id, "boom")
    stats = store.queue.stats()
    counts = {(r["queue"], r["state"]): (r["count"], r["bytes"]) for r in stats["queues"]}
    assert counts == {("SMTP.inbound", "ready"): (3, 15000),
                      ("SMTP.outgoing", "failed"): (1, 5000)}
    assert stats["segments"] == 1 and stats["segment_bytes"] >= 20000
