"""``postroom serve smtp-out``: deliver the ``SMTP.outgoing`` queue to remote servers.

Manual 6.2.3.4 (outbound: send threads, remote timeout, poll interval, message size,
IP binding, TLS), 6.2.3.8 (delivery: retries, notifications, NDRs, concurrent
connections per server), 6.2.3.9 (smart host), 6.2.3.10 (logs).

**Why not** :class:`~postroom.services.queue_worker.QueueWorker`. Its handlers run one
entry per thread and return; outbound delivery wants the opposite shape: few
connections, each carrying many messages to one destination, and a limit per
destination that must not eat the send threads (the manual's reason for the limit).
So this module has its own claim loop, on asyncio, in the same style: it sleeps on a
:class:`~postroom.store.wake.WakeListener` (woken from other processes) and the
queue's in-process ``subscribe`` callback, falls back to polling every
``smtp.outbound.queue_poll_interval`` seconds, uses worker ids
``smtp-out:HOST:PID``, and takes back at once the claims of a killed ``smtp-out``
process of this host (as QueueWorker does).

**Shape.** Claimed entries wait in memory per route key (:mod:`.routing`: one MX
domain, or one smart host); one asyncio task per open connection takes entries of
its key one after the other over the same session (connection reuse), and lingers
``idle_seconds`` for more before QUIT. At most ``smtp.outbound.max_send_threads``
connections are open in all, at most ``smtp.delivery.limit_concurrent_connections``
per key when that limit is enabled; at most :data:`IN_MEMORY_PER_THREAD` claimed
entries per thread wait in memory. A key that cannot be reached (DNS, no answer)
defers every entry waiting for it with the same error, instead of trying each.

**At-least-once boundary.** An entry is acknowledged (group commit) after the
remote server's 250 to its data. A crash (SIGKILL, power loss) between that 250 and
the commit of the acknowledgement leaves the entry claimed; it is taken back on
restart and sent again: the only duplicates are transactions in flight at the crash
(at most one per open connection, plus acknowledgements still in the writer's
batch). A crash before the 250 loses nothing: the entry is simply tried again. (So
a connection waits for its acknowledgement's commit before its next transaction;
overlapping the two was tried and let the crash test see more duplicates than open
connections.)

**Cost per message** (``bench/smtp_relay.py``): two round trips with a PIPELINING
server (:mod:`.session`), and a small message is DKIM-signed on the event loop (a
thread hop costs more than signing 5 KB).

**Clock.** ``clock`` (default ``time.time``) drives the retry schedule, lifetime and
notice decisions, so tests move time instead of sleeping; the queue's own times stay
wall-clock (a retry due in 15 minutes of the service clock is due in 15 real ones).

Untrusted input: messages and envelopes (see :mod:`.message`), DNS answers and remote
replies (see :mod:`.routing`, :mod:`.session`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from postroom.connectors.smtp.outbound import outcome
from postroom.connectors.smtp.outbound.message import (
    PeerRefusal,
    for_peer,
    mail_options,
    prepare,
    rcpt_options,
    wire_address,
)
from postroom.connectors.smtp.outbound.outcome import QUEUE, Attempt, Result
from postroom.connectors.smtp.outbound.routing import Route, RouteFailure, hops, route_for
from postroom.connectors.smtp.outbound.schedule import History
from postroom.connectors.smtp.outbound.session import (
    Connection,
    ConnectionLost,
    Options,
    Reply,
)
from postroom.connectors.smtp.policy.autowhitelist import remember_peer
from postroom.logs import ServiceLogs
from postroom.mta.ndr import plain_address, server_name
from postroom.net.dns import Resolver
from postroom.store import Store
from postroom.store.directory_cache import CachedDirectory
from postroom.store.queue import QueueEntry, QueueError
from postroom.store.wake import WakeListener

log = logging.getLogger("postroom.smtp.out")

NAME = "smtp-out"
LEASE_SECONDS = 1800.0
IN_MEMORY_PER_THREAD = 16
LARGE_BODY = 256 * 1024


class SmtpOutService:
    """The outbound SMTP delivery agent (see the module docstring)."""

    name = NAME

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time,
                 resolver: Resolver | None = None, idle_seconds: float = 1.0,
                 poll_seconds: float | None = None) -> None:
        self.store = store
        self.clock = clock
        self.idle_seconds = idle_seconds
        self._poll_override = poll_seconds
        self._resolver = resolver
        self._resolver_key: Any = None
        self.worker_id = f"{NAME}:{socket.gethostname()}:{os.getpid()}"
        self.directory = CachedDirectory(store)
        self.logs: ServiceLogs | None = None
        self.options = Options("localhost", None, 300.0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._listener: WakeListener | None = None
        self._stopping = False
        self._claimer: asyncio.Task[None] | None = None
        self._waiter: threading.Thread | None = None
        self._claimed: dict[int, QueueEntry] = {}
        self._queues: dict[str, deque[tuple[QueueEntry, Route]]] = {}
        self._active: dict[str, int] = {}
        self._idle: dict[str, int] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._total = 0
        self._whitelisted: set[str] = set()     # peers already remembered (autowhitelist)
        self.delivered = 0

    # -- settings ---------------------------------------------------------------------------

    def threads(self) -> int:
        return max(1, int(self.store.settings.get("smtp.outbound.max_send_threads")))

    def per_destination(self) -> int:
        settings = self.store.settings
        if settings.get("smtp.delivery.limit_concurrent_connections_enabled"):
            return max(1, int(settings.get("smtp.delivery.limit_concurrent_connections")))
        return self.threads()

    def poll_seconds(self) -> float:
        if self._poll_override is not None:
            return self._poll_override
        return float(self.store.settings.get("smtp.outbound.queue_poll_interval"))

    def _read_settings(self) -> None:
        settings = self.store.settings
        source = str(settings.get("smtp.outbound.ip_binding") or "").strip() or None
        self.options = Options(ehlo_name(self.store, source), source,
                               float(settings.get("smtp.outbound.remote_timeout")))
        if self.logs is not None:
            self.logs.apply_settings(settings, "smtp")
        key = settings.get("dns.nameservers")
        if self._resolver is None or (self._resolver_key is not None
                                      and self._resolver_key != key):
            self._resolver = Resolver.from_settings(settings)
            self._resolver_key = key

    @property
    def resolver(self) -> Resolver:
        assert self._resolver is not None
        return self._resolver

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        settings = self.store.settings
        self.logs = ServiceLogs("SMTP", self.store.home.logs,
                                w3c_directory=settings.get("smtp.logging.w3c_directory") or None)
        self._read_settings()
        self._listener = WakeListener(self.store.home.root, QUEUE)
        self.store.queue.subscribe(self._on_commit)
        self._waiter = threading.Thread(target=self._wait_for_news, name="smtp-out-wake",
                                        daemon=True)
        self._waiter.start()
        self._claimer = asyncio.create_task(self._claim_loop(), name="smtp-out-claim")
        log.info("smtp-out: delivering %s with up to %d connection(s)", QUEUE, self.threads())

    async def stop(self) -> None:
        self._stopping = True
        self._poke()
        if self._claimer is not None:
            self._claimer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._claimer
        for event in self._events.values():
            event.set()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=30)
        for task in list(self._tasks):
            task.cancel()
        if self._listener is not None:
            self._listener.close()
        if self._waiter is not None:
            await asyncio.to_thread(self._waiter.join, 5)
        self._listener = None
        if self.logs is not None:
            self.logs.close()
            self.logs = None

    def settings_changed(self) -> None:
        self._read_settings()
        self._poke()

    # -- waking -----------------------------------------------------------------------------

    def _on_commit(self, queues: Sequence[str]) -> None:
        if QUEUE in queues:
            self._poke()

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(wake.set)

    def _wait_for_news(self) -> None:
        listener = self._listener
        while listener is not None and not self._stopping:
            if listener.wait(self.poll_seconds()):
                self._poke()

    # -- claiming ---------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        assert self._wake is not None
        last_reclaim = 0.0
        while not self._stopping:
            if time.monotonic() - last_reclaim >= self.poll_seconds():
                last_reclaim = time.monotonic()
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self._reclaim_from_dead)
            self._wake.clear()
            room = self.threads() * IN_MEMORY_PER_THREAD - len(self._claimed)
            entries: list[QueueEntry] = []
            if room > 0:
                try:
                    entries = await asyncio.to_thread(
                        self.store.queue.claim, QUEUE, self.worker_id, min(room, 256),
                        LEASE_SECONDS)
                except Exception:
                    log.exception("smtp-out: claim failed")
            for entry in entries:
                self._dispatch(entry)
            if entries and len(entries) >= min(room, 256):
                continue
            # asyncio.timeout, not wait_for (which, on Python 3.11, swallows a cancellation
            # arriving with a wake-up: stop() would wait forever).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds()):
                    await self._wake.wait()

    def _reclaim_from_dead(self) -> int:
        prefix = f"{NAME}:{socket.gethostname()}:"
        dead = [c for c in self.store.queue.claimants(QUEUE)
                if c.startswith(prefix) and c != self.worker_id
                and c[len(prefix):].isdigit() and not _alive(int(c[len(prefix):]))]
        count = self.store.queue.abandon(QUEUE, dead) if dead else 0
        if count:
            log.warning("smtp-out: took back %d entr(y/ies) of %s", count, ", ".join(dead))
        return count

    def _dispatch(self, entry: QueueEntry) -> None:
        if entry.id in self._claimed:
            return      # our own lease ran out and we claimed it again: already waiting
        self._claimed[entry.id] = entry
        now = self.clock()
        history = History.of(entry, now)
        if history.not_before > now + 1:
            self._spawn_task(self._wait_more(entry, history.not_before - now))
            return
        recipients = entry.envelope.recipients
        domain = plain_address(recipients[0]).rpartition("@")[2]
        try:
            self.directory.refresh()
            route = route_for(self.store.settings, self.directory, domain,
                              plain_address(entry.envelope.sender))
        except Exception as exc:
            log.exception("smtp-out: no route for %s", entry.tracking_id)
            route = Route(f"error:{domain}", domain, None, local_error=RouteFailure(
                "4.3.0", f"Routing error: {exc}", permanent=False))
        if route.local_error is not None:
            if route.local_error.status == "5.4.6":
                log.error("smtp-out: %s: recipients in hosted domain %s reached the "
                          "outgoing queue (routing bug); bounced", entry.tracking_id, domain)
            attempt = Attempt(entry)
            self._all(attempt, route.local_error.status, route.local_error.reply, None,
                      route.local_error.permanent)
            self._spawn_task(self._finish(attempt))
            return
        queue = self._queues.setdefault(route.key, deque())
        queue.append((entry, route))
        self._spawn_connections(route.key, route)

    async def _wait_more(self, entry: QueueEntry, seconds: float) -> None:
        """A replaced entry claimed before its retry time: back to wait."""
        try:
            await asyncio.to_thread(self.store.queue.retry, entry.id, time.time() + seconds,
                                    entry.last_error or "waiting for retry", self.worker_id)
        except (QueueError, LookupError):
            pass
        finally:
            self._claimed.pop(entry.id, None)

    # -- connections ------------------------------------------------------------------------

    def _spawn_task(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _spawn_connections(self, key: str, route: Route) -> None:
        queue = self._queues.get(key)
        if not queue:
            return
        event = self._events.setdefault(key, asyncio.Event())
        takers = self._idle.get(key, 0)
        if takers:
            event.set()
        while (len(queue) > takers and self._active.get(key, 0) < self.per_destination()
               and self._total < self.threads() and not self._stopping):
            self._active[key] = self._active.get(key, 0) + 1
            self._total += 1
            takers += 1
            self._spawn_task(self._connection(key, route))

    def _respawn(self) -> None:
        """A connection slot came free: open one for a key that waits."""
        for key, queue in list(self._queues.items()):
            if queue and self._total < self.threads():
                self._spawn_connections(key, queue[0][1])
            elif not queue and not self._active.get(key):
                self._queues.pop(key, None)
                self._events.pop(key, None)

    async def _connection(self, key: str, route: Route) -> None:
        queue = self._queues[key]
        connection: Connection | None = None
        try:
            try:
                connection = await Connection.open(route, await hops(self.resolver, route),
                                                   self.options, self.logs)
            except RouteFailure as failure:
                self._fail_waiting(queue, failure)
                return
            while not self._stopping:
                if not queue and not await self._linger(key, queue):
                    break
                entry, _ = queue.popleft()
                await self._deliver(connection, entry)
                if not connection.usable:
                    break
        except Exception:
            log.exception("smtp-out: connection for %s failed", key)
        finally:
            if connection is not None:
                await connection.quit()
            self._active[key] -= 1
            self._total -= 1
            self._respawn()

    async def _linger(self, key: str, queue: deque[Any]) -> bool:
        """Wait ``idle_seconds`` for more mail to this key; False: close the connection."""
        if any(q and k != key and not self._active.get(k) for k, q in self._queues.items()):
            return False    # another destination waits for a connection slot
        event = self._events.setdefault(key, asyncio.Event())
        deadline = time.monotonic() + self.idle_seconds
        self._idle[key] = self._idle.get(key, 0) + 1
        try:
            while not queue and not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                event.clear()       # woken with the others and the entry was taken: wait on
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), left)
        finally:
            self._idle[key] -= 1
        return bool(queue) and not self._stopping

    def _fail_waiting(self, queue: deque[tuple[QueueEntry, Route]],
                      failure: RouteFailure) -> None:
        """The destination cannot be reached: every entry waiting for it gets the error."""
        while queue:
            entry, _ = queue.popleft()
            attempt = Attempt(entry)
            self._all(attempt, failure.status, failure.reply, None, failure.permanent)
            self._spawn_task(self._finish(attempt))

    @staticmethod
    def _all(attempt: Attempt, status: str, text: str, remote: str | None,
             permanent: bool) -> None:
        results = [Result(r, status, text, remote) for r in attempt.entry.envelope.recipients]
        (attempt.failed if permanent else attempt.deferred).extend(results)

    # -- one message ------------------------------------------------------------------------

    async def _deliver(self, connection: Connection, entry: QueueEntry) -> None:
        attempt = Attempt(entry)
        try:
            await self._transaction(connection, entry, attempt)
        except Exception as exc:        # never lose the entry to a bug: retry it later
            log.exception("smtp-out: delivering %s failed", entry.tracking_id)
            attempt = Attempt(entry)
            self._all(attempt, "4.3.0", f"451 4.3.0 Internal error: {exc}"[:300], None, False)
        await self._finish(attempt)

    async def _transaction(self, connection: Connection, entry: QueueEntry,
                           attempt: Attempt) -> None:
        store = self.store
        if entry.body_length > LARGE_BODY:
            body = await asyncio.to_thread(store.queue.read_body, entry)
        else:
            body = store.queue.read_body(entry)
        settings = store.settings
        limit = int(settings.get("smtp.outbound.limit_message_size"))
        if settings.get("smtp.outbound.limit_message_size_enabled") and limit \
                and len(body) > limit:
            self._all(attempt, "5.3.4", f"552 5.3.4 Message exceeds the outbound size limit "
                                        f"({len(body)} > {limit} bytes)", None, True)
            return
        prepared = prepare(store, entry, body)
        extensions = connection.extensions
        try:
            data = await for_peer(store, prepared, extensions,
                                  asyncio.to_thread if len(body) > LARGE_BODY else _inline)
        except PeerRefusal as refusal:
            self._all(attempt, refusal.status, refusal.reply, connection.remote, True)
            return
        utf8 = prepared.flagged_smtputf8 and "smtputf8" in extensions
        rcpts = [(r, wire_address(plain_address(r), utf8), rcpt_options(entry, r, extensions))
                 for r in entry.envelope.recipients]
        remote = connection.remote + (" (TLS)" if connection.tls else "")
        try:
            refused, results = await connection.transaction(
                wire_address(prepared.sender, utf8), mail_options(entry, prepared, data,
                                                                  extensions),
                rcpts, data, entry.tracking_id)
        except ConnectionLost as lost:
            self._all(attempt, "4.4.2", f"451 4.4.2 Connection lost: {lost}", remote, False)
            return
        attempt.dsn_passed = "dsn" in extensions
        if not refused and any(reply.ok for reply in results.values()) \
                and connection.hop.address not in self._whitelisted:
            await self._remember_peer(connection.hop.address)
        for recipient in entry.envelope.recipients:
            reply: Reply = refused or results.get(recipient) or Reply(451, "451 4.3.0 no reply")
            result = Result(recipient, reply.status, reply.text, remote)
            if reply.ok:
                attempt.delivered.append(result)
            elif reply.permanent:
                attempt.failed.append(result)
            else:
                attempt.deferred.append(result)

    async def _remember_peer(self, address: str) -> None:
        """Manual 6.2.3.12: a host that took our mail may send to us unhindered. Never
        in the way of delivery: a failure is logged and tried again next time."""
        try:
            await asyncio.to_thread(remember_peer, self.store, address)
        except Exception:
            log.exception("smtp-out: could not add %s to the outbound white list", address)
            return
        self._whitelisted.add(address)

    async def _finish(self, attempt: Attempt) -> None:
        entry = attempt.entry
        try:
            outcome.track(self.store, attempt, time.time())
            if attempt.simple_success:
                await outcome.ack(self.store, entry, self.worker_id)
            else:
                await asyncio.to_thread(outcome.finish, self.store, attempt, self.worker_id,
                                        self.clock(), time.time())
            self.delivered += len(attempt.delivered)
        except Exception:
            log.exception("smtp-out: could not finish %s; it is retried when its lease ends",
                          entry.tracking_id)
        finally:
            self._claimed.pop(entry.id, None)
            if self._wake is not None:
                self._wake.set()


async def _inline(func: Callable[..., Any], *args: Any) -> Any:
    """Run ``func`` on the event loop: for a small message, signing (well under a
    millisecond) costs less than handing it to a thread and back."""
    return func(*args)


def ehlo_name(store: Store, source_ip: str | None) -> str:
    """The EHLO name: the host name set for the source IP (``smtp.general.ip_host_names``,
    ``IP=HOST``), else ``smtp.general.local_domain_name``, else the certificate's or the
    system's name."""
    if source_ip:
        for item in store.settings.get("smtp.general.ip_host_names") or ():
            ip, _, host = str(item).partition("=")
            if ip.strip() == source_ip and host.strip():
                return host.strip()
    return server_name(store)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return True
