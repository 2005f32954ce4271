"""Exactly-once delivery ids, queue administration, wake-up calls and tracking rows."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from postroom.store import Store
from postroom.store.messages import QuotaExceeded
from postroom.store.queue import Envelope, QueueError
from postroom.store.tracking import TrackingEvent
from postroom.store.wake import WakeListener, Waker
from tests.store.helpers import make_mailbox, message


def envelope() -> Envelope:
    return Envelope(sender="[SMTP:a@example.net]", recipients=["[SF:example/bob]"])


def test_a_delivery_id_stores_the_message_once(store: Store) -> None:
    make_mailbox(store)
    first = store.messages.append("example", "bob", "Inbox", message(1),
                                  delivery_id="T1/[SF:example/bob]")
    again = store.messages.append("example", "bob", "Inbox", message(1),
                                  delivery_id="T1/[SF:example/bob]")
    assert not first.duplicate and again.duplicate and again.uid == first.uid
    assert len(store.messages.list_messages("example", "bob", "Inbox")) == 1
    assert store.messages.usage("example", "bob")[1] == 1
    files = list((store.home.messages).rglob("*.eml"))
    assert len(files) == 1                 # the second copy's file was removed


def test_ignore_quota_accepts_over_quota_and_counts_it(store: Store) -> None:
    make_mailbox(store, quota_bytes=100)
    with pytest.raises(QuotaExceeded):
        store.messages.append("example", "bob", "Inbox", b"x" * 500)
    store.messages.append("example", "bob", "Inbox", b"x" * 500, ignore_quota=True)
    assert store.messages.usage("example", "bob") == (500, 1)


def test_hold_release_delete_and_retry_now(store: Store) -> None:
    queue = store.queue
    entry = queue.enqueue("SF.outgoing", envelope(), b"Subject: x\r\n\r\nbody\r\n")
    assert queue.hold(entry.id).state == "held"
    assert queue.claim("SF.outgoing", "w") == []            # held entries are skipped
    assert queue.release(entry.id).state == "ready"
    with pytest.raises(QueueError, match="not held"):
        queue.release(entry.id)
    assert queue.get(entry.id).state == "ready"
    claimed = queue.claim("SF.outgoing", "w")
    assert [e.id for e in claimed] == [entry.id]
    with pytest.raises(QueueError, match="processed"):
        queue.delete(entry.id)
    queue.retry(entry.id, time.time() + 3600, "451 later", worker="w")
    assert queue.claim("SF.outgoing", "w") == []
    assert queue.retry_now(queue="SF.outgoing") == 1
    assert queue.get(entry.id).next_attempt_at <= time.time()
    gone = queue.delete(entry.id)
    assert gone.tracking_id == entry.tracking_id
    with pytest.raises(QueueError, match="no queue entry"):
        queue.get(entry.id)
    with pytest.raises(QueueError, match="no queue entry"):
        queue.retry_now(entry.id)


def test_subscribers_hear_of_enqueues_and_routes(store: Store) -> None:
    heard: list[str] = []
    store.queue.subscribe(heard.extend)
    entry = store.queue.enqueue("MTA.inbound", envelope(), b"\r\n")
    store.queue.route(entry.id, [("SF.outgoing", envelope()), ("SMTP.outgoing", envelope())])
    deadline = time.time() + 5
    while len(set(heard)) < 3 and time.time() < deadline:
        time.sleep(0.01)
    assert {"MTA.inbound", "SF.outgoing", "SMTP.outgoing"} <= set(heard)


def test_wake_up_crosses_processes(home: Path) -> None:
    listener = WakeListener(home, "SF.outgoing")
    assert listener.bound
    assert not WakeListener(home, "SF.outgoing").bound      # one listener per queue
    assert listener.wait(0.05) is False
    script = (f"from postroom.store.wake import Waker; from pathlib import Path; "
              f"Waker(Path({str(home)!r})).notify(['SF.outgoing'])")
    started = time.monotonic()
    threading.Timer(0.2, lambda: subprocess.run([sys.executable, "-c", script],
                                                check=True)).start()
    assert listener.wait(10) is True
    assert time.monotonic() - started < 9
    Waker(home).notify(["MTA.inbound"])                     # nobody listening: no error
    listener.close()


def test_tracking_finds_a_message_and_its_derived_ids(store: Store) -> None:
    t = store.tracking
    t.record(TrackingEvent("ABC", "SMTP", "received", sender="a@example.net",
                           recipient="bob@example.com", at=100.0),
             TrackingEvent("ABC-1", "SF", "delivered", recipient="bob@example.com",
                           detail="example/bob/Inbox", at=101.0),
             TrackingEvent("ABD", "SMTP", "received", sender="c@example.net", at=102.0))
    t.flush()
    assert [e.event for e in t.find("ABC")] == ["received", "delivered"]
    assert [e.tracking_id for e in t.find(sender="C@EXAMPLE")] == ["ABD"]
    assert [e.tracking_id for e in t.find(recipient="bob@", since=100.5)] == ["ABC-1"]


def test_directory_changes_bump_the_generation(store: Store) -> None:
    def generation() -> int:
        return int(store.conn.execute("SELECT value FROM meta WHERE key="
                                      "'directory_generation'").fetchone()[0])

    before = generation()
    store.directory.create_postoffice("gen")
    after_create = generation()
    assert after_create > before
    make_mailbox(store, "gen", "zed")
    bumped = generation()
    store.messages.append("gen", "zed", "Inbox", message(1))   # usage columns: no bump
    assert generation() == bumped > after_create


def test_an_enqueue_once_key_queues_nothing_the_second_time(store: Store) -> None:
    from postroom.store.queue import AlreadyQueued

    first = store.queue.enqueue_async("MTA.inbound", envelope(), b"\r\none\r\n",
                                      once_key="file-1").result()
    with pytest.raises(AlreadyQueued):
        store.queue.enqueue_async("MTA.inbound", envelope(), b"\r\none\r\n",
                                  once_key="file-1").result()
    assert [e.id for e in store.queue.list("MTA.inbound")] == [first.id]
    store.queue.enqueue_async("MTA.inbound", envelope(), b"\r\ntwo\r\n",
                              once_key="file-2").result()
    assert len(store.queue.list("MTA.inbound")) == 2


def test_tracking_events_given_to_an_enqueue_exist_exactly_when_the_entry_does(
        store: Store) -> None:
    """The SMTP service hands its "received" step to the enqueue: one transaction, so
    a refused enqueue leaves no step behind, and a batch of enqueues keeps each step."""
    from postroom.store.queue import AlreadyQueued

    def received(tracking_id: str) -> TrackingEvent:
        return TrackingEvent(tracking_id, "SMTP", "received", sender="a@example.net",
                             recipient="bob@example.com", detail="from 192.0.2.7")

    def steps(tracking_id: str) -> list[tuple[str, str]]:
        return [(e.service, e.event) for e in store.tracking.find(tracking_id)]

    futures = []
    for n in range(5):                       # several in one batch: the multi-row path
        env = dataclasses.replace(envelope(), tracking_id=f"TRK{n:09d}")
        futures.append(store.queue.enqueue_async("MTA.inbound", env, b"\r\nbody\r\n",
                                                 track=(received(env.tracking_id),)))
    entries = [f.result() for f in futures]
    for n, entry in enumerate(entries):
        assert entry.tracking_id == f"TRK{n:09d}"
        assert steps(entry.tracking_id) == [("SMTP", "received")]

    env = dataclasses.replace(envelope(), tracking_id="TRKONCE00001")
    store.queue.enqueue_async("MTA.inbound", env, b"\r\none\r\n", once_key="file-9",
                              track=(received("TRKONCE00001"),)).result()
    again = dataclasses.replace(envelope(), tracking_id="TRKONCE00002")
    with pytest.raises(AlreadyQueued):
        store.queue.enqueue_async("MTA.inbound", again, b"\r\none\r\n", once_key="file-9",
                                  track=(received("TRKONCE00002"),)).result()
    assert steps("TRKONCE00001") == [("SMTP", "received")]
    assert steps("TRKONCE00002") == []       # not queued, so not received either


def test_tracking_events_given_to_a_route_exist_exactly_when_its_entries_do(
        store: Store) -> None:
    """The MTA hands its "routed" steps to the route: one transaction, so a route that
    fails (its entry is gone) leaves no step behind, a batch of routes keeps each
    route's steps, and the steps name the ids the new entries get."""
    from postroom.store.queue import successor_tracking_id

    q = store.queue
    entries = [q.enqueue("MTA.inbound", envelope(), b"\r\nbody\r\n") for _ in range(6)]
    q.ack(entries[2].id)                      # gone before its route
    futures = []
    for n, entry in enumerate(entries):
        count = 2 if n % 2 else 1
        targets = [("SF.outgoing", Envelope("a@b", [f"[SF:po/u{n}-{k}]"]))
                   for k in range(count)]
        steps = [TrackingEvent(successor_tracking_id(entry.tracking_id, k + 1, count),
                               "MTA", "routed", sender="a@example.net",
                               recipient=f"u{n}-{k}@example.com", detail="SF")
                 for k in range(count)]
        futures.append(q.route_async(entry.id, targets, track=steps))
    for n, (entry, future) in enumerate(zip(entries, futures, strict=True)):
        if n == 2:
            with pytest.raises(QueueError):
                future.result()
            assert store.tracking.find(entry.tracking_id) == []
            continue
        created = future.result()
        found = [(e.tracking_id, e.service, e.event, e.recipient)
                 for e in store.tracking.find(entry.tracking_id)]
        assert sorted(found) == sorted((c.tracking_id, "MTA", "routed", f"u{n}-{k}@example.com")
                                       for k, c in enumerate(created))


def test_a_non_durable_transaction_is_still_atomic_and_restores_full_sync(
        store: Store) -> None:
    make_mailbox(store)
    uid = store.messages.append("example", "bob", "Inbox", message(1)).uid
    modseq = store.messages.set_flags("example", "bob", "Inbox", [uid], ["\\Seen"])
    assert store.messages.list_messages("example", "bob", "Inbox")[0].flags == ("\\Seen",)
    assert modseq > 0
    with pytest.raises(RuntimeError), store.transaction(durable=False) as conn:
        conn.execute("UPDATE message SET flags='' WHERE uid=?", (uid,))
        raise RuntimeError("rolled back")
    assert store.messages.list_messages("example", "bob", "Inbox")[0].flags == ("\\Seen",)
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2     # FULL again
