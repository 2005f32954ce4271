"""What the post office connector has already done once: the "send once" marks.

Several promises of the connector are "at most once": one auto-reply per sender per
day (manual 6.2.4.2), one quota notice per threshold crossing (manual 5.3.5, 6.2.4.2),
one NDR and one redirected copy per recipient even when a queue entry is handled
again after a crash (queue entries are at-least-once; mailbox appends are made
exactly-once by ``delivery_id``, the rest by these marks).

Why a table in the store rather than a JSON file in DIR: several worker threads, and
on a shared store several processes, ask "was this sent already?" at the same time;
``INSERT OR IGNORE`` on a primary key answers it atomically, and the marks are backed
up with the rest of the state. The table (``postoffice_sent_mark``, migration 0006)
belongs to this module alone; keys are ``kind:details`` strings, and old marks are
purged by age.
"""

from __future__ import annotations

import time

from postroom.store import Store


class SentMarks:
    def __init__(self, store: Store) -> None:
        self.store = store

    def first(self, key: str, now: float | None = None) -> bool:
        """Set the mark; True when it was not set before (the caller may act)."""
        with self.store.transaction() as conn:
            cursor = conn.execute("INSERT OR IGNORE INTO postoffice_sent_mark (key, at) "
                                  "VALUES (?, ?)", (key, time.time() if now is None else now))
            return cursor.rowcount == 1

    def has(self, key: str) -> bool:
        row = self.store.conn.execute("SELECT 1 FROM postoffice_sent_mark WHERE key=?",
                                      (key,)).fetchone()
        return row is not None

    def mark(self, key: str) -> None:
        self.first(key)

    def forget(self, key: str) -> bool:
        """Clear a mark (a threshold crossed back); True if it was set."""
        if not self.has(key):
            return False        # the common case costs a read, not a write transaction
        with self.store.transaction() as conn:
            return conn.execute("DELETE FROM postoffice_sent_mark WHERE key=?",
                                (key,)).rowcount == 1

    def purge(self, prefix: str, older_than: float) -> int:
        """Remove marks of one kind (``prefix``) set before ``older_than``."""
        with self.store.transaction() as conn:
            return conn.execute("DELETE FROM postoffice_sent_mark WHERE at < ? AND "
                                "substr(key, 1, ?) = ?",
                                (older_than, len(prefix), prefix)).rowcount
