"""The group-commit writer: one flush and one transaction per batch, failures isolated."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from postroom.store.backends.sqlite import db
from postroom.store.groupcommit import GroupCommitWriter, Operation, WriterClosed


class Insert:
    """Insert one value; values below zero are refused by ``apply``."""

    def __init__(self, value: int, log: list[str]) -> None:
        self.value, self.log = value, log

    def prepare(self) -> None:
        if self.value == 13:
            raise OSError("disk says no")
        self.log.append(f"prepare {self.value}")

    def apply(self, conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t VALUES (?)", (self.value,))
        if self.value < 0:
            raise ValueError("negative")
        return self.value * 2

    def committed(self) -> None:
        self.log.append(f"committed {self.value}")

    def discard(self) -> None:
        self.log.append(f"discard {self.value}")


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "t.db"
    conn = db.connect(path)
    conn.execute("CREATE TABLE t (v INTEGER UNIQUE)")
    conn.close()
    return path


def values(path: Path) -> list[int]:
    return sorted(r[0] for r in sqlite3.connect(path).execute("SELECT v FROM t"))


def test_one_failing_operation_does_not_fail_its_batch(database: Path) -> None:
    flushes: list[int] = []
    log: list[str] = []
    entered, gate = threading.Event(), threading.Event()

    def flush(ops: Sequence[Operation]) -> None:
        flushes.append(len(ops))
        entered.set()
        gate.wait(5)     # the first flush is slow: the rest pile up into one batch

    writer = GroupCommitWriter("test", lambda: db.connect(database), flush)
    first = writer.submit(Insert(0, log))
    assert entered.wait(5)
    futures = [writer.submit(Insert(v, log)) for v in (1, -2, 3, 13, 1, 4)]
    gate.set()
    assert first.result(5) == 0
    assert [f.exception(5) is None for f in futures] == [True, False, True, False, False, True]
    assert futures[2].result() == 6 and futures[5].result() == 8
    assert isinstance(futures[1].exception(), ValueError)       # refused by apply
    assert isinstance(futures[3].exception(), OSError)          # refused by prepare
    assert isinstance(futures[4].exception(), sqlite3.IntegrityError)   # duplicate
    assert values(database) == [0, 1, 3, 4]
    assert flushes == [1, 5]          # one flush per batch, failed prepares excluded
    assert writer.stats.batches == 2 and writer.stats.largest_batch == 5
    assert {"discard -2", "discard 13", "committed 3"} <= set(log)
    writer.close()
    with pytest.raises(WriterClosed):
        writer.submit(Insert(5, log))


def test_a_failed_flush_fails_the_whole_batch_and_commits_nothing(database: Path) -> None:
    log: list[str] = []

    def flush(ops: Sequence[Operation]) -> None:
        raise OSError("EIO")

    writer = GroupCommitWriter("test", lambda: db.connect(database), flush)
    future = writer.submit(Insert(7, log))
    assert isinstance(future.exception(5), OSError)
    writer.close()
    assert values(database) == []
    assert log == ["prepare 7", "discard 7"]


class BatchInsert(Insert):
    """Insert that can also be applied many at once (as enqueues and tracking rows are)."""

    batches: ClassVar[list[list[int]]] = []

    @staticmethod
    def apply_batch(conn: sqlite3.Connection, ops: Sequence[BatchInsert]) -> list[int]:
        BatchInsert.batches.append([op.value for op in ops])
        conn.executemany("INSERT INTO t VALUES (?)", [(op.value,) for op in ops])
        return [op.value * 2 for op in ops]


class LastInsert(BatchInsert):
    apply_last = True


def test_runs_are_batched_after_other_operations_and_last_ones_go_last(
        database: Path) -> None:
    log: list[str] = []
    entered, gate = threading.Event(), threading.Event()
    BatchInsert.batches = []

    def flush(ops: Sequence[Operation]) -> None:
        entered.set()
        gate.wait(5)

    writer = GroupCommitWriter("test", lambda: db.connect(database), flush)
    first = writer.submit(Insert(0, log))
    assert entered.wait(5)
    ops: list[Insert] = [LastInsert(100, log), Insert(1, log), BatchInsert(2, log),
                         BatchInsert(3, log), LastInsert(101, log), Insert(4, log),
                         BatchInsert(5, log), BatchInsert(6, log), LastInsert(102, log)]
    futures = [writer.submit(op) for op in ops]
    gate.set()
    assert first.result(5) == 0
    assert [f.result(5) for f in futures] == [op.value * 2 for op in ops]
    writer.close()
    # A plain operation before a run does not stop the run from being one statement;
    # the apply_last operations form one run at the end of their batch.
    assert BatchInsert.batches == [[2, 3], [5, 6], [100, 101, 102]]
    assert values(database) == [0, 1, 2, 3, 4, 5, 6, 100, 101, 102]


def test_spaced_commits_gather_a_stream_into_few_batches_yet_an_idle_writer_commits_at_once(
        database: Path) -> None:
    """``min_interval``: the MTA's writer waits for more routes under load, never when
    idle (a lone message is not delayed by the interval)."""
    log: list[str] = []
    writer = GroupCommitWriter("test", lambda: db.connect(database), lambda ops: None)
    writer.min_interval = 0.25
    try:
        started = time.monotonic()
        assert writer.submit(Insert(0, log)).result(5) == 0
        assert time.monotonic() - started < 0.2, "an idle writer waited for the interval"
        # A stream of 40 operations over about 0.4 s, each submitted without waiting:
        # they land in two or three commits, not one per operation.
        futures = []
        for value in range(20, 60):     # (13 is the value prepare refuses)
            futures.append(writer.submit(Insert(value, log)))
            time.sleep(0.01)
        assert [f.result(5) for f in futures] == [v * 2 for v in range(20, 60)]
        assert writer.stats.batches <= 1 + 4, writer.stats.sizes
        assert values(database) == [0, *range(20, 60)]
    finally:
        writer.close()
    # Without spacing the same stream takes a commit per operation or so.
    other = GroupCommitWriter("test", lambda: db.connect(database), lambda ops: None)
    try:
        for value in range(100, 120):
            other.submit(Insert(value, log))
            time.sleep(0.01)
        other.submit(Insert(120, log)).result(5)
        assert other.stats.batches >= 10, other.stats.sizes
    finally:
        other.close()
