"""Crash safety: SIGKILL a process in the middle of appends and enqueues, then check.

Every operation the child was told was durable must be there exactly once and whole;
nothing partial may be visible; the store must open and keep working. Run three
times on the same data directory with different kill timings, so recovery after
recovery is covered too.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from postroom.store import Store
from tests.store.crash_worker import number, payload
from tests.store.helpers import make_mailbox

ROOT = Path(__file__).parents[2]


def run_and_kill(home: Path, round_no: int, after: float) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "tests.store.crash_worker", str(home),
                             str(round_no), "6"], stdout=subprocess.PIPE, cwd=ROOT, env=env)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first == b"READY\n", first
    time.sleep(after)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    lines = out.decode().splitlines()
    # The last line may be torn by the kill.
    return [line for line in lines if len(line.split()) == 3]


def check(home: Path, reported: list[str], round_no: int) -> None:
    with Store.open(home) as store:
        conn = store.conn
        # Messages: every row has a complete file; no payload appears twice.
        rows = conn.execute("SELECT uid, path, size FROM message").fetchall()
        by_n: dict[int, int] = {}
        for row in rows:
            data = (home / "messages" / row["path"]).read_bytes()
            n = number(data)
            assert data == payload(n), f"message uid {row['uid']} is damaged"
            assert len(data) == row["size"]
            assert n not in by_n, f"payload {n} stored twice"
            by_n[n] = row["uid"]
        used, count = store.messages.usage("example", "bob")
        assert (used, count) == (sum(r["size"] for r in rows), len(rows))
        # Queue entries: every body complete.
        entries = {e.tracking_id: e for e in store.queue.list()}
        queued: dict[int, str] = {}
        for entry in entries.values():
            body = store.queue.read_body(entry)
            n = number(body)
            assert body == payload(n)
            assert n not in queued
            queued[n] = entry.tracking_id
        # Everything reported durable is there.
        kinds = collections.Counter(line[0] for line in reported)
        assert kinds["A"] > 10 and kinds["Q"] > 10, kinds
        for line in reported:
            kind, n_text, key = line.split()
            n = int(n_text)
            if kind == "A":
                assert by_n.get(n) == int(key), f"append {n} (uid {key}) lost"
            else:
                assert queued.get(n) == key, f"enqueue {n} ({key}) lost"
        # Files without rows (flushed, never committed) are invisible and were never
        # reported as delivered; they are complete, and the orphan scan finds them.
        appended = {int(line.split()[1]) for line in reported if line[0] == "A"}
        for orphan in store.messages.orphans(min_age=0):
            data = (home / "messages" / orphan).read_bytes()
            assert number(data) not in appended
        # The store keeps working.
        result = store.messages.append("example", "bob", "Inbox",
                                       payload(9_000_000 + round_no))
        assert result.uid > max(by_n.values(), default=0)
        assert not [p for p in (home / "tmp").iterdir() if p.name.startswith("msg-")]


@pytest.mark.slow
def test_sigkill_during_appends_and_enqueues_loses_nothing(home: Path) -> None:
    with Store.open(home) as store:
        make_mailbox(store)
    for round_no, after in enumerate((2.0, 1.3, 2.6), start=1):
        reported = run_and_kill(home, round_no, after)
        check(home, reported, round_no)
