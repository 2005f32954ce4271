"""The ``mta`` service of ``postroom serve`` (manual 6.1): the agent on its queue.

One :class:`~postroom.services.queue_worker.QueueWorker` consumes ``MTA.inbound``
with :meth:`MtaAgent.handle <postroom.mta.agent.MtaAgent.handle>` on up to
``mta.general.max_threads`` threads (manual 6.1.2: "1 helps command-line scanners that
cannot run in parallel"); it wakes as soon as an entry is committed (in-process
subscription, or the wake socket for other processes), so a message moves on within
milliseconds of being queued. ``mta.general.inbound_max_delivery_time`` needs no code:
an entry is ready for the MTA the moment it is committed.

Logs (manual 6.1.2 "Advanced Logging"): ``DIR/logs/MTA/MTA-Activity-YYMMDD.log`` (one
line per routed target or failed recipient) and ``MTA-Debug-YYMMDD.log`` (what
happened and why), switched by ``mta.logging.activity_enabled`` and
``mta.logging.debug_enabled``. ``settings_changed`` applies log switches and the
thread count at once.
"""

from __future__ import annotations

import asyncio
import logging

from postroom.logs import ServiceLogs
from postroom.mta.agent import INBOUND, MtaAgent
from postroom.mta.pickup_event import DEFAULT_TIMEOUT, kill_running
from postroom.services.queue_worker import QueueWorker
from postroom.store import Store

log = logging.getLogger("postroom.mta")

COMMIT_INTERVAL = 0.03
"""Seconds between the MTA process's commits under load. The MTA hands its routes to the
store's writer and goes on (:mod:`postroom.mta.agent`): nobody waits on a route's commit
but the next connector, so it gathers what arrives meanwhile into one commit instead of
one per few messages (:mod:`postroom.store.groupcommit`, "spaced commits"). A message
crossing an idle MTA is not delayed; under load each waits up to this much longer."""


JOIN_AFTER = 0.05
"""Seconds every running MTA thread must have spent on one message before another
thread joins (:mod:`postroom.services.queue_worker`): routing is CPU work finished
through the store's writer, so one thread is fastest until a pickup event program or an
archive copy blocks it; ``mta.general.max_threads`` stays the most that run."""


class MtaService:
    """``postroom serve mta``."""

    name = "mta"
    commit_interval = COMMIT_INTERVAL
    """Read by the supervisor when the MTA has a process to itself (``postroom serve``)."""

    def __init__(self, store: Store, *, pickup_event_timeout: float = DEFAULT_TIMEOUT,
                 poll_seconds: float = 5.0) -> None:
        self.store = store
        self.pickup_event_timeout = pickup_event_timeout
        self.poll_seconds = poll_seconds
        self.logs: ServiceLogs | None = None
        self.agent: MtaAgent | None = None
        self.worker: QueueWorker | None = None

    def threads(self) -> int:
        try:
            return max(1, int(self.store.settings.get("mta.general.max_threads")))
        except (TypeError, ValueError):
            return 1

    async def start(self) -> None:
        self.logs = ServiceLogs("MTA", self.store.home.logs)
        self.logs.apply_settings(self.store.settings, "mta")
        self.agent = MtaAgent(self.store, logs=self.logs,
                              pickup_event_timeout=self.pickup_event_timeout)
        self.worker = QueueWorker(self.store, INBOUND, self.agent.handle_async, name="mta",
                                  threads=self.threads, poll_seconds=self.poll_seconds,
                                  join_after=JOIN_AFTER)
        self.agent.worker = self.worker.worker_id
        self.worker.start()
        log.info("mta: working %s with up to %d thread(s)", INBOUND, self.threads())

    async def stop(self) -> None:
        if self.worker is not None:
            killed = kill_running()
            if killed:
                log.info("mta: stopped %d pickup event program(s) still running", killed)
            await asyncio.to_thread(self.worker.stop)
            self.worker = None
        if self.logs is not None:
            self.logs.close()
            self.logs = None

    def settings_changed(self) -> None:
        if self.logs is not None:
            self.logs.apply_settings(self.store.settings, "mta")
        if self.worker is not None:
            self.worker.settings_changed()
