"""The store: the one owner of persistent state, opened on a data directory.

Connectors, services and the CLI never open the database or the message folders
themselves; they hold a :class:`Store` and use its parts:

* ``store.settings``  server settings (``postroom.settings.server``)
* ``store.directory`` post offices, domains, mailboxes, address map, groups, lists
* ``store.messages``  mailbox folders and messages
* ``store.acl``       folder access control lists (RFC 4314) and shared-folder subscriptions
* ``store.queue``     connector queues (envelopes, retries, bad mail, quarantine)
* ``store.secrets``   encryption of recoverable secrets under the server key

Each thread gets its own SQLite connection (``store.conn``); the hot paths
(message append, enqueue) run a single writer thread each that batches many
callers into one flush and one transaction (group commit).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from postroom.store.backends.sqlite import db
from postroom.store.backends.sqlite.write_gate import WriteGate, gate_for
from postroom.store.datadir import DataDir
from postroom.store.secrets import SecretBox

if TYPE_CHECKING:
    from postroom.settings.server import Settings
    from postroom.store.acl import FolderAcl
    from postroom.store.directory import Directory
    from postroom.store.messages import MessageStore
    from postroom.store.queue import Queue
    from postroom.store.tracking import Tracking


class Store:
    def __init__(self, home: DataDir) -> None:
        self.home = home
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.secrets = SecretBox(home.read_secret_key())
        self._closers: list = []
        self.commits = 0        # transactions committed through this object

    @classmethod
    def open(cls, root: Path | str, *, migrate: bool = True) -> Store:
        """Open an initialised data directory, upgrading its schema if it is older."""
        home = DataDir(Path(root))
        home.check()
        store = cls(home)
        if migrate:
            db.migrate(store.conn)
        elif db.schema_version(store.conn) != db.latest_version():
            raise db.SchemaError("schema is not current; open with migrate=True")
        return store

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection to the store database."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.new_connection()
            self._local.conn = conn
        return conn

    def new_connection(self) -> sqlite3.Connection:
        """A connection owned by the caller (writer threads keep their own)."""
        conn = db.connect(self.home.database)
        with self._lock:
            self._connections.append(conn)
        return conn

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; rolls back on any exception.

        ``durable=False`` commits without waiting for the disk (WAL, ``synchronous=
        NORMAL``): the change is atomic and survives a crash of the process, and a power
        loss can only undo the last such commits, never corrupt. For what a client can
        simply redo and a mail server need not guarantee (a claim's lease, IMAP flag
        changes), never for accepted or delivered mail.
        """
        conn = self.conn
        if conn.in_transaction:
            # Nested use joins the outer transaction.
            yield conn
            return
        if not durable:
            conn.execute("PRAGMA synchronous=NORMAL")
        self._local.after_commit = []
        try:
            with self.write_gate:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        finally:
            if not durable:
                conn.execute("PRAGMA synchronous=FULL")
            callbacks, self._local.after_commit = self._local.after_commit, None
        self.commits += 1       # directory caches re-check their generation (directory_cache)
        for callback in callbacks:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this thread's open transaction has committed (at once
        when none is open). For caches changed inside a transaction another thread may
        read from before the commit: they must be read again afterwards."""
        pending = getattr(self._local, "after_commit", None)
        if pending is None or not self.conn.in_transaction:
            callback()
        else:
            pending.append(callback)

    @cached_property
    def write_gate(self) -> WriteGate:
        """Orders this process's write transactions (and other processes') without
        SQLite's sleeping retries (``backends/sqlite/write_gate.py``)."""
        return gate_for(self.home.database, db.BUSY_TIMEOUT_MS / 1000)

    @cached_property
    def settings(self) -> Settings:
        from postroom.settings.server import Settings

        return Settings(self)

    @cached_property
    def directory(self) -> Directory:
        from postroom.store.backends.sqlite.directory import SqliteDirectory

        return SqliteDirectory(self)

    @cached_property
    def messages(self) -> MessageStore:
        from postroom.store.backends.sqlite.messages import SqliteMessageStore

        store = SqliteMessageStore(self)
        self._closers.append(store.close)
        return store

    @cached_property
    def acl(self) -> FolderAcl:
        from postroom.store.backends.sqlite.acl import SqliteFolderAcl

        return SqliteFolderAcl(self)

    @cached_property
    def queue(self) -> Queue:
        from postroom.store.backends.sqlite.queue import SqliteQueue

        queue = SqliteQueue(self)
        self._closers.append(queue.close)
        return queue

    @cached_property
    def tracking(self) -> Tracking:
        from postroom.store.backends.sqlite.tracking import SqliteTracking

        return SqliteTracking(self)

    def close(self) -> None:
        for closer in reversed(self._closers):
            closer()
        self._closers.clear()
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def now() -> float:
    return time.time()
