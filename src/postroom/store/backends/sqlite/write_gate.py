"""One writer at a time, queued in the kernel instead of SQLite's sleeping retries.

Why: SQLite lets one connection write at a time and makes the others wait through
its busy handler, which *sleeps* and retries (1, 2, 5, 10, 15, 20, 25 … ms). A
group commit holds the write lock for its fsync (about 1.5 ms here), so a flag
change or an expunge arriving meanwhile slept 8 ms or more before it even tried
again: under the IMAP load benchmark a ``STORE +FLAGS`` took 16 ms on average, most
of it asleep while the lock was already free.

The gate puts every ``BEGIN IMMEDIATE`` … ``COMMIT`` of this process behind one
:class:`threading.Lock` and, across processes (``postroom serve`` runs each service
in its own process, the CLI is another), behind an exclusive ``flock`` on
``<database>.write-lock`` beside the database. A thread waiting on another thread
runs the moment the holder releases; a process waiting on another process retries
after 50 µs, doubling up to every half millisecond. SQLite's own locking stays the
guarantee; the gate only orders the writers that use it (a writer that does not,
such as a single autocommit statement, still works through ``busy_timeout``).

Deadlock safety: a thread that waits longer than the busy timeout for the gate gets
the ``database is locked`` error SQLite would have given, as before.

``flock`` locks belong to an open file description, which a forked child shares with
its parent: the child therefore forgets the parent's gates and opens its own.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path

_gates: dict[str, WriteGate] = {}
_gates_lock = threading.Lock()
_FIRST_POLL = 0.00005     # seconds before the second try on another process's gate,
_POLL = 0.0005            # doubling up to this (a commit holds it for about 1-3 ms)


class WriteGate:
    """The write gate of one database file in this process (see the module doc)."""

    def __init__(self, database: Path, timeout: float) -> None:
        self.path = Path(str(database) + ".write-lock")
        self.timeout = timeout
        self._lock = threading.Lock()
        self._fd: int | None = None

    def __enter__(self) -> WriteGate:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        if not self._lock.acquire(timeout=self.timeout):
            raise sqlite3.OperationalError("database is locked (write gate timeout)")
        try:
            self._lock_file()
        except BaseException:
            self._lock.release()
            raise

    def release(self) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def _lock_file(self) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        # Another process writes. A blocking flock has no timeout (a hung holder would
        # hang us for good), so poll: every 0.5 ms is still far finer than SQLite's
        # busy handler, and this runs only while another process holds the gate.
        deadline = time.monotonic() + self.timeout
        pause = _FIRST_POLL
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise sqlite3.OperationalError(
                        "database is locked (write gate timeout)") from None
            time.sleep(pause)
            pause = min(pause * 2, _POLL)


def gate_for(database: Path, timeout: float) -> WriteGate:
    """The process-wide gate of ``database`` (shared by every Store on that file)."""
    key = os.path.realpath(database)
    with _gates_lock:
        gate = _gates.get(key)
        if gate is None:
            gate = _gates[key] = WriteGate(Path(key), timeout)
        return gate


def _forget_after_fork() -> None:
    global _gates_lock
    _gates.clear()            # the parent's open file descriptions are not ours
    _gates_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
