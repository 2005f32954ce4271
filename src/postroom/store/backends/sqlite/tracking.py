"""Message tracking rows (manual 10.5) in the embedded store.

Events are written by the queue's group-commit writer as one multi-row INSERT per
batch: recording costs no flush or transaction of its own (see
:mod:`postroom.store.tracking` for the contract). Old events are pruned by
:meth:`SqliteTracking.prune` (the log retention of the management agents).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from postroom.store.groupcommit import DatabaseOperation
from postroom.store.tracking import TrackingEvent

if TYPE_CHECKING:
    from postroom.store.store import Store

log = logging.getLogger(__name__)

_COLUMNS = "(tracking_id, at, service, event, sender, recipient, detail)"
_ROW = "(?, ?, ?, ?, ?, ?, ?)"
MAX_FIELD = 2000


def event_rows(events: Sequence[TrackingEvent]) -> list[tuple[Any, ...]]:
    """The rows :func:`insert_rows` stores for ``events`` (fields cut to their limits)."""
    return [_params(event) for event in events]


def insert_rows(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert tracking rows, 100 to a statement, in the caller's transaction."""
    for start in range(0, len(rows), 100):
        chunk = rows[start:start + 100]
        conn.execute(f"INSERT INTO tracking_event {_COLUMNS} VALUES "
                     + ", ".join([_ROW] * len(chunk)),
                     [value for row in chunk for value in row])


def _params(event: TrackingEvent) -> tuple[Any, ...]:
    return (str(event.tracking_id)[:64], float(event.at), str(event.service)[:32],
            str(event.event)[:32], str(event.sender)[:MAX_FIELD],
            str(event.recipient)[:MAX_FIELD], str(event.detail)[:MAX_FIELD])


class _Record(DatabaseOperation):
    """Group-commit operation: insert some tracking rows (no file work)."""

    needs_savepoint = False
    apply_last = True           # one INSERT for all of a batch's events (groupcommit)

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def apply(self, conn: sqlite3.Connection) -> None:
        insert_rows(conn, self.rows)

    @staticmethod
    def apply_batch(conn: sqlite3.Connection, ops: Sequence[_Record]) -> list[None]:
        insert_rows(conn, [row for op in ops for row in op.rows])
        return [None] * len(ops)


class SqliteTracking:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._last: Future[Any] | None = None

    def record(self, *events: TrackingEvent) -> None:
        if not events:
            return
        try:
            rows = event_rows(events)
            self._last = self._store.queue.submit_operation(  # type: ignore[attr-defined]
                _Record(rows))
        except Exception:
            log.exception("tracking events dropped")

    def flush(self) -> None:
        last = self._last
        if last is not None:
            try:
                last.result(timeout=30)
            except Exception:
                log.exception("tracking events were not stored")

    def find(self, tracking_id: str | None = None, *, sender: str | None = None,
             recipient: str | None = None, since: float | None = None,
             until: float | None = None, limit: int = 1000) -> list[TrackingEvent]:
        sql = ("SELECT tracking_id, service, event, sender, recipient, detail, at "
               "FROM tracking_event WHERE 1=1")
        params: list[Any] = []
        if tracking_id:
            sql += " AND (tracking_id = ? OR (tracking_id > ? AND tracking_id < ?))"
            params += [tracking_id, f"{tracking_id}-", f"{tracking_id}-\U0010ffff"]
        if sender:
            sql += " AND instr(lower(sender), lower(?)) > 0"
            params.append(sender)
        if recipient:
            sql += " AND instr(lower(recipient), lower(?)) > 0"
            params.append(recipient)
        if since is not None:
            sql += " AND at >= ?"
            params.append(float(since))
        if until is not None:
            sql += " AND at <= ?"
            params.append(float(until))
        sql += " ORDER BY at, id LIMIT ?"
        params.append(max(1, int(limit)))
        return [TrackingEvent(tracking_id=r[0], service=r[1], event=r[2], sender=r[3],
                              recipient=r[4], detail=r[5], at=r[6])
                for r in self._store.conn.execute(sql, params)]

    def prune(self, older_than_days: float) -> int:
        cutoff = time.time() - older_than_days * 86400
        with self._store.transaction() as conn:
            return conn.execute("DELETE FROM tracking_event WHERE at < ?", (cutoff,)).rowcount
