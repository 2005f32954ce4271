"""Quota under concurrency: exactly the messages that fit are accepted, usage is exact.

The quota check and the usage update share the batch transaction, so 20 threads (one
process) or 4 processes racing for the last bytes of a mailbox can never overshoot.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from postroom.store import Store
from postroom.store.messages import QuotaExceeded
from tests.store.helpers import append_in_process, make_mailbox, message

SIZE = 5000


def stored_sizes(store: Store, home: Path) -> list[int]:
    infos = store.messages.list_messages("example", "bob", "Inbox")
    for info in infos:
        assert (home / "messages" / info.path).stat().st_size == info.size
    return [info.size for info in infos]


def test_twenty_concurrent_appenders_fill_the_quota_exactly(store: Store, home: Path) -> None:
    # Room for 37 messages and a bit: 60 attempts from 20 threads race for it.
    make_mailbox(store, quota_bytes=37 * SIZE + 1234)
    barrier = threading.Barrier(20)

    def worker(n: int) -> tuple[int, int]:
        barrier.wait()
        ok = refused = 0
        for i in range(3):
            try:
                store.messages.append("example", "bob", "Inbox", message(n * 10 + i, SIZE))
                ok += 1
            except QuotaExceeded:
                refused += 1
        return ok, refused

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(worker, range(20)))
    accepted = sum(ok for ok, _ in results)
    assert accepted == 37
    assert sum(r for _, r in results) == 60 - 37
    sizes = stored_sizes(store, home)
    assert len(sizes) == 37
    assert store.messages.usage("example", "bob") == (sum(sizes), 37)
    uids = [m.uid for m in store.messages.list_messages("example", "bob", "Inbox")]
    assert uids == list(range(1, 38))
    # Refused messages left no file behind.
    assert len(list((home / "messages").rglob("*.eml"))) == 37
    # Batching happened: fewer batches than messages.
    stats = store.messages.writer_stats
    assert stats.batches < stats.operations  # type: ignore[attr-defined]


def test_four_processes_fill_the_quota_exactly(store: Store, home: Path) -> None:
    make_mailbox(store, quota_bytes=50 * SIZE)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=append_in_process,
                         args=(str(home), 30, SIZE, tag, barrier, results))
             for tag in range(1, 5)]
    for proc in procs:
        proc.start()
    outcome = dict(results.get(timeout=60) for _ in procs)
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    # Several processes got some of the space, none got all it asked for: they raced.
    shares = sorted(len(a) for a in outcome.values())
    assert sum(1 for n in shares if n) >= 2, shares
    accepted = [size for sizes in outcome.values() for size in sizes]
    assert len(accepted) == 50
    sizes = stored_sizes(store, home)
    assert len(sizes) == 50
    assert store.messages.usage("example", "bob") == (sum(sizes), 50)
    assert len(list((home / "messages").rglob("*.eml"))) == 50
