"""The post office connector "SF" as a service of ``postroom serve`` (manual 6.2.4).

:class:`PostOfficeService` works the ``SF.outgoing`` queue with the shared
:class:`~postroom.services.queue_worker.QueueWorker` (claim, thread pool, instant
wake-up on enqueue, retry then bad mail on errors) and :class:`~.delivery.Delivery`
as the handler. The manual gives the post office connector no thread setting, so it
runs :data:`THREADS` deliveries at once.

Logs (manual 6.2.4.3, ``postoffice_connector.logging.activity_enabled`` /
``debug_enabled``): ``DIR/logs/SF/SF-Activity-YYMMDD.log`` (one line per recipient:
``DELIVER [SF:po/mb]`` and the outcome) and ``SF-Debug-YYMMDD.log`` (why: loops,
skipped auto-replies, duplicates), per ``docs/logs.md``. Settings changes apply at
once (``settings_changed``).

Throughput: the worker's handler is :meth:`PostOfficeConnector.handle_batch`: a
thread takes up to :data:`BATCH` claimed entries and delivers them together
(:meth:`~.delivery.Delivery.handle_many`): every entry's mailbox appends go to the
message store's group-commit writer before the thread waits, once, for all of them
(a message is durably in the mailbox before anything else), so one flush and one
commit serve the whole batch. Then each entry's acknowledgement goes to the queue's
group-commit writer and the thread moves on. A crash before that commit only makes
the entry come back, and delivery is exactly once by ``delivery_id`` (see
:mod:`.delivery`). Why batches on a few threads rather than one entry per thread on
many: 32 threads each waiting for its own append made batches of about 10 and spent
more CPU handing the GIL and waking threads (about 40 context switches per message)
than delivering.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from postroom.connectors.postoffice.autoresponder import MARK_PREFIX as AUTOREPLY_PREFIX
from postroom.connectors.postoffice.delivery import (
    DONE_PREFIX,
    REDIRECT_PREFIX,
    SERVICE,
    Delivery,
)
from postroom.connectors.postoffice.delivery_event import DeliveryEvents, EventResult
from postroom.connectors.postoffice.sent_marks import SentMarks
from postroom.logs import ServiceLogs
from postroom.services.queue_worker import QueueWorker
from postroom.store import Store
from postroom.store.queue import QueueEntry
from postroom.store.tracking import TrackingEvent

log = logging.getLogger("postroom.postoffice")

QUEUE = "SF.outgoing"
THREADS = 2
BATCH = 64
# Marks older than this are of no use: retries of an entry end long before (bad mail
# after a few attempts), and auto-replies are once per day.
MARK_LIFETIME = 15 * 86400
PURGE_EVERY = 3600.0


class PostOfficeConnector:
    """The SF handler with its logs and delivery events, usable without the service."""

    def __init__(self, store: Store, *, event_timeout: float = 30.0) -> None:
        self.store = store
        self.logs = ServiceLogs(SERVICE, store.home.logs)
        self.logs.apply_settings(store.settings, "postoffice_connector")
        self.events = DeliveryEvents(timeout=event_timeout, on_result=self._event_result)
        self.marks = SentMarks(store)
        self.delivery = Delivery(store, logs=self.logs, events=self.events, marks=self.marks)
        self.worker: str | None = None      # the queue worker's id, set by the service
        self._last_purge = 0.0

    def handle(self, entry: QueueEntry) -> None:
        self.delivery.handle(entry)
        self.purge_marks()

    def handle_batch(self, entries: Sequence[QueueEntry],
                     ) -> list[Future[Any] | Exception | None]:
        """Deliver ``entries`` together; for each, the future of its acknowledgement
        (None without a worker id: the caller acknowledges) or why it failed."""
        results = self.delivery.handle_many(entries)
        self.purge_marks()
        outcomes: list[Future[Any] | Exception | None] = []
        for entry, result in zip(entries, results, strict=True):
            if isinstance(result, Exception):
                outcomes.append(result)
            elif self.worker is None:
                outcomes.append(None)
            else:
                outcomes.append(self.store.queue.ack_async(  # type: ignore[attr-defined]
                    entry.id, worker=self.worker))
        return outcomes

    def handle_async(self, entry: QueueEntry) -> Future[Any] | None:
        """:meth:`handle_batch` for one entry (the queue worker's single-entry form)."""
        outcome = self.handle_batch([entry])[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def purge_marks(self, *, force: bool = False) -> int:
        now = time.time()
        if not force and now - self._last_purge < PURGE_EVERY:
            return 0
        self._last_purge = now
        removed = 0
        for prefix in (DONE_PREFIX, REDIRECT_PREFIX, AUTOREPLY_PREFIX):
            removed += self.marks.purge(prefix, now - MARK_LIFETIME)
        return removed

    def settings_changed(self) -> None:
        self.logs.apply_settings(self.store.settings, "postoffice_connector")

    def _event_result(self, result: EventResult) -> None:
        request = result.request
        self.logs.debug.write(f"delivery event {request.program} for {request.mailbox}: "
                              f"{result.detail}", connection_id=request.tracking_id)
        try:
            self.store.tracking.record(TrackingEvent(
                tracking_id=request.tracking_id, service=SERVICE, event="event",
                sender=request.sender, recipient=request.mailbox,
                detail=f"delivery event {request.program}: {result.detail}"[:500]))
        except Exception:
            log.exception("SF: tracking event not recorded")

    def close(self) -> None:
        self.events.close()
        self.logs.close()


class PostOfficeService:
    """``postroom serve postoffice``: delivers ``SF.outgoing`` into mailboxes."""

    name = "postoffice"

    def __init__(self, store: Store, *, poll_seconds: float = 5.0,
                 event_timeout: float = 30.0) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.event_timeout = event_timeout
        self.connector: PostOfficeConnector | None = None
        self.worker: QueueWorker | None = None

    async def start(self) -> None:
        self.connector = PostOfficeConnector(self.store, event_timeout=self.event_timeout)
        self.worker = QueueWorker(self.store, QUEUE, self.connector.handle_async, name="SF",
                                  threads=lambda: THREADS, poll_seconds=self.poll_seconds,
                                  batch_handler=self.connector.handle_batch,
                                  batch_size=BATCH, claim_batch=THREADS * BATCH)
        self.connector.worker = self.worker.worker_id
        await asyncio.to_thread(self.worker.start)
        log.info("post office connector working %s", QUEUE)

    async def stop(self) -> None:
        if self.worker is not None:
            await asyncio.to_thread(self.worker.stop)
            self.worker = None
        if self.connector is not None:
            await asyncio.to_thread(self.connector.close)
            self.connector = None

    def settings_changed(self) -> None:
        if self.connector is not None:
            self.connector.settings_changed()
        if self.worker is not None:
            self.worker.settings_changed()
