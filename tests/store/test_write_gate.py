"""The write gate: one writer at a time across threads and processes, a timeout that
gives SQLite's own "database is locked" error, and a fresh gate in a forked child."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from postroom.store.backends.sqlite.write_gate import WriteGate, gate_for


def _hold_gate(database: str, ready: multiprocessing.synchronize.Event,
               release: multiprocessing.synchronize.Event) -> None:
    gate = gate_for(Path(database), 5.0)
    with gate:
        ready.set()
        release.wait(10)


def test_a_second_process_waits_for_the_holder(tmp_path: Path) -> None:
    database = tmp_path / "store.db"
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_gate, args=(str(database), ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        gate = WriteGate(database, 5.0)
        order: list[str] = []

        def writer() -> None:
            with gate:
                order.append("second writer")

        thread = threading.Thread(target=writer)
        thread.start()
        thread.join(0.3)
        assert thread.is_alive(), "the gate let a second process in while held"
        order.append("holder releases")
        release.set()
        thread.join(10)
        assert order == ["holder releases", "second writer"]
    finally:
        release.set()
        holder.join(10)


def test_waiting_longer_than_the_timeout_is_database_locked(tmp_path: Path) -> None:
    database = tmp_path / "store.db"
    holder = WriteGate(database, 5.0)
    waiter = WriteGate(database, 0.2)       # another open file description: like a process
    with holder, pytest.raises(sqlite3.OperationalError, match="database is locked"):
        waiter.acquire()
    with waiter:                             # free again once the holder is done
        pass


def test_a_writer_that_gave_up_leaves_the_gate_free_for_others(tmp_path: Path) -> None:
    database = tmp_path / "store.db"
    holder = WriteGate(database, 5.0)
    quitter = WriteGate(database, 0.2)
    third = WriteGate(database, 0.2)        # a third process
    with holder, pytest.raises(sqlite3.OperationalError):
        quitter.acquire()
    # The quitter's process got the lock once the holder let go, for nobody: it must
    # give it back rather than keep every other process out.
    deadline = time.monotonic() + 5
    while True:
        try:
            third.acquire()
            break
        except sqlite3.OperationalError:
            assert time.monotonic() < deadline, "the gate stayed locked for nobody"
    third.release()
    with quitter:                           # and the quitter can write later on
        pass


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    gate = gate_for(tmp_path / "store.db", 5.0)
    inside = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        for _ in range(50):
            with gate:
                with lock:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.0002)
                with lock:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert most == 1


def test_a_forked_child_has_its_own_gate(tmp_path: Path) -> None:
    database = tmp_path / "store.db"
    parent_gate = gate_for(database, 5.0)
    with parent_gate:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:                          # child: the parent holds the gate
            try:
                child_gate = gate_for(database, 0.3)
                try:
                    child_gate.acquire()
                    os.write(write, b"entered")
                except sqlite3.OperationalError:
                    os.write(write, b"locked")
            finally:
                os._exit(0)
        os.close(write)
        answer = os.read(read, 16)
        os.waitpid(pid, 0)
        os.close(read)
    assert answer == b"locked"
