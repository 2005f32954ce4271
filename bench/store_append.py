"""Benchmark: durable mailbox appends and queue enqueues with group commit.

Measures appends/s (``store.messages.append``) and enqueues/s (``store.queue.enqueue``)
with 1, 20 and 100 concurrent writer threads and 5 KB messages, beside the ceiling
of the naive design measured on the same disk in the same run with as many writers:
one file per message, ``fsync`` of the file and of its directory (Postfix-style).
Two ratios: to that ceiling with the same number of writers (ext4's journal merges
concurrent fsyncs, so the naive design also gains from concurrency) and to the
one-writer ceiling. With one writer there is nothing to batch: expect ≤ 1 there.
Appends are measured with both flush modes (``syncfs`` and per-file ``fsync``);
"(asyncio)" rows run N coroutines in one event loop thread calling ``append_async`` /
``enqueue_async``, the way the services will.

    .venv/bin/python bench/store_append.py [--seconds 3] [--dir PATH] [--json]

``--dir`` must be on the disk you care about (default: a temporary directory).
Figures are noisy (±20 %); compare ratios taken in one run (``DEPENDENCIES.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from postroom.store import Store
from postroom.store.backends.sqlite.messages import SqliteMessageStore
from postroom.store.initialise import initialise
from postroom.store.queue import Envelope

SIZE = 5 * 1024
PAYLOAD = (b"Subject: bench\r\n\r\n" + b"x" * SIZE)[:SIZE]


def run_threads(threads: int, seconds: float, op: Callable[[int, int], None]) -> tuple[int, float]:
    """Run ``op(thread, i)`` in a loop on ``threads`` threads for ``seconds``."""
    counts = [0] * threads
    start_gate = threading.Barrier(threads + 1)
    deadline = 0.0

    def loop(t: int) -> None:
        start_gate.wait()
        i = 0
        while time.perf_counter() < deadline:
            op(t, i)
            i += 1
        counts[t] = i

    workers = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    start_gate.wait()
    for w in workers:
        w.join()
    return sum(counts), time.perf_counter() - started


def baseline(root: Path, threads: int, seconds: float) -> float:
    """One file per message: write, fsync the file, fsync the directory."""
    directory = root / f"baseline-{threads}"
    directory.mkdir()

    def op(t: int, i: int) -> None:
        path = directory / f"{t}-{i}.eml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            os.write(fd, PAYLOAD)
            os.fsync(fd)
        finally:
            os.close(fd)
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    count, elapsed = run_threads(threads, seconds, op)
    shutil.rmtree(directory)
    return count / elapsed


def make_mailbox(store: Store, name: str) -> None:
    with store.transaction() as conn:
        row = conn.execute("SELECT id FROM postoffice WHERE name='bench'").fetchone()
        po = row[0] if row else conn.execute(
            "INSERT INTO postoffice (name, created_at) VALUES ('bench', ?)",
            (time.time(),)).lastrowid
        mb = conn.execute("INSERT INTO mailbox (postoffice_id, name, created_at) "
                          "VALUES (?, ?, ?)", (po, name, time.time())).lastrowid
        store.messages.create_folders(conn, mb, ("Inbox",))


def bench_append(home: Path, threads: int, seconds: float, flush_mode: str) -> dict[str, Any]:
    with Store.open(home) as store:
        messages = SqliteMessageStore(store, flush_mode=flush_mode)
        name = f"{flush_mode}-{threads}"
        make_mailbox(store, name)
        try:
            count, elapsed = run_threads(threads, seconds, lambda t, i: messages.append(
                "bench", name, "Inbox", PAYLOAD))
        finally:
            messages.close()
        stats = messages.writer_stats
        return {"rate": count / elapsed, "ops": count,
                "mean_batch": stats.mean_batch, "largest_batch": stats.largest_batch}


def bench_enqueue(home: Path, threads: int, seconds: float) -> dict[str, Any]:
    envelope = Envelope("bench@example.net", ["[SMTP:bob@example.com]"], client_ip="192.0.2.1")
    with Store.open(home) as store:
        queue = store.queue
        before_batches = queue.writer_stats.batches  # type: ignore[attr-defined]
        before_ops = queue.writer_stats.operations  # type: ignore[attr-defined]
        queue.writer_stats.largest_batch = 0  # type: ignore[attr-defined]
        count, elapsed = run_threads(threads, seconds, lambda t, i: queue.enqueue(
            "SMTP.inbound", envelope, PAYLOAD))
        stats = queue.writer_stats
        batches = stats.batches - before_batches  # type: ignore[attr-defined]
        ops = stats.operations - before_ops  # type: ignore[attr-defined]
        return {"rate": count / elapsed, "ops": count,
                "mean_batch": ops / batches if batches else 0.0,
                "largest_batch": stats.largest_batch}  # type: ignore[attr-defined]


def run_coroutines(tasks: int, seconds: float,
                   submit: Callable[[], Future[Any]]) -> tuple[int, float]:
    """``tasks`` coroutines in ONE event loop thread, each awaiting ``submit()`` in a loop:
    how the SMTP and delivery services will call the store."""
    async def main() -> tuple[int, float]:
        deadline = time.perf_counter() + seconds
        counts = [0] * tasks

        async def loop(t: int) -> None:
            while time.perf_counter() < deadline:
                await asyncio.wrap_future(submit())
                counts[t] += 1

        started = time.perf_counter()
        await asyncio.gather(*(loop(t) for t in range(tasks)))
        return sum(counts), time.perf_counter() - started

    return asyncio.run(main())


def bench_asyncio(home: Path, tasks: int, seconds: float, what: str) -> dict[str, Any]:
    envelope = Envelope("bench@example.net", ["[SMTP:bob@example.com]"], client_ip="192.0.2.1")
    with Store.open(home) as store:
        name = f"asyncio-{tasks}"
        if what == "append":
            make_mailbox(store, name)
            part: Any = store.messages

            def submit() -> Future[Any]:
                return store.messages.append_async("bench", name, "Inbox", PAYLOAD)
        else:
            part = store.queue

            def submit() -> Future[Any]:
                return store.queue.enqueue_async("SMTP.inbound", envelope, PAYLOAD)
        before = (part.writer_stats.batches, part.writer_stats.operations)
        count, elapsed = run_coroutines(tasks, seconds, submit)
        batches = part.writer_stats.batches - before[0]
        ops = part.writer_stats.operations - before[1]
        return {"rate": count / elapsed, "ops": count,
                "mean_batch": ops / batches if batches else 0.0,
                "largest_batch": part.writer_stats.largest_batch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 20, 100])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="postroom-bench-", dir=args.dir))
    try:
        home = base / "data"
        initialise(home, hostname="bench.test")
        ceiling = {t: baseline(base, t, args.seconds) for t in args.threads}
        rows: list[dict[str, Any]] = []
        for threads in args.threads:
            for mode in ("syncfs", "fsync"):
                result = bench_append(home, threads, args.seconds, mode)
                rows.append({"case": f"append ({mode})", "writers": threads, **result})
            result = bench_enqueue(home, threads, args.seconds)
            rows.append({"case": "enqueue", "writers": threads, **result})
            if threads > 1:
                for what in ("append", "enqueue"):
                    result = bench_asyncio(home, threads, args.seconds, what)
                    rows.append({"case": f"{what} (asyncio)", "writers": threads, **result})
        for row in rows:
            # Like for like: the naive design with as many concurrent writers (the
            # kernel's journal merges concurrent fsyncs, so that ceiling rises too) ...
            row["ratio"] = row["rate"] / ceiling[row["writers"]]
            # ... and against one writer's fsync rate, the figure DEPENDENCIES.md cites.
            row["ratio_1"] = row["rate"] / ceiling[min(ceiling)]
        report = {"message_bytes": SIZE, "seconds": args.seconds,
                  "ceiling_fsync_file_and_dir": {str(t): r for t, r in ceiling.items()},
                  "results": rows}
    finally:
        shutil.rmtree(base, ignore_errors=True)

    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    print("ceiling: one 5 KB file per message, fsync file + fsync dir, same disk, same run:")
    for threads, rate in ceiling.items():
        print(f"  {threads:>3} writers: {rate:>7,.0f}/s")
    print(f"{'case':<18} {'writers':>7} {'ops/s':>9} {'× same-N':>9} {'× 1-writer':>10} "
          f"{'mean batch':>11} {'max batch':>10}")
    for row in rows:
        print(f"{row['case']:<18} {row['writers']:>7} {row['rate']:>9,.0f} {row['ratio']:>9.2f} "
              f"{row['ratio_1']:>10.2f} {row['mean_batch']:>11.1f} {row['largest_batch']:>10}")


if __name__ == "__main__":
    main()
