"""Waking idling sessions when their folder changes (RFC 2177 IDLE; issue 8: new mail
reaches IDLE clients within a second).

Delivery happens in another process (the post office connector), so an in-process
signal is not enough. Until the store publishes change records, :class:`FolderWatch`
polls: every :data:`POLL_INTERVAL` seconds it reads UIDNEXT and HIGHESTMODSEQ of each
folder that has at least one idling session — one query per folder, whatever the
number of sessions idling on it — and sets the events of that folder's sessions when
the values moved. Every append, expunge and flag change bumps one of the two. Before
waking them it brings the shared folder index up to date (:mod:`.folder_index`), so
thousands of woken sessions each find it ready instead of each asking the store.

Wake-up: the message store notifies :data:`~postroom.store.wake.MAILBOX_CHANGES`
after every append, flag change and expunge (:mod:`postroom.store.wake`); the watch
listens on it and polls at once, so new mail reaches IDLE sessions within
milliseconds. It is a broadcast: the watch of every IMAP accept process has its own
listener slot, and every one is woken. The poll every ``interval`` seconds
(``imap.general.idle_poll_interval``, :data:`POLL_INTERVAL` by default) stays as the
fallback should a wake-up be lost (all slots taken, a full socket buffer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Protocol

from postroom.services.imap.mailboxes import folder_state
from postroom.store.wake import MAILBOX_CHANGES, WakeListener

if TYPE_CHECKING:
    from postroom.store import Store
    from postroom.store.backends.sqlite.folder_index import FolderIndexes

log = logging.getLogger("postroom.imap")
POLL_INTERVAL = 0.5
Key = tuple[str, str, str]          # post office, mailbox, folder


class Waiter(Protocol):
    """An IDLE session's wake-up (``mailbox_commands.IdleWakeup``, or an asyncio.Event)."""

    def set(self) -> None: ...


class FolderWatch:
    def __init__(self, store: Store, interval: float = POLL_INTERVAL,
                 indexes: FolderIndexes | None = None) -> None:
        self.store = store
        self.indexes = indexes
        self.interval = interval
        self._waiters: dict[Key, set[Waiter]] = {}
        self._seen: dict[Key, tuple[int, int, int] | None] = {}
        self._task: asyncio.Task[None] | None = None
        self._kick: asyncio.Event | None = None
        self._listener: WakeListener | None = None
        self._listening: threading.Thread | None = None
        self.polls = 0

    def add(self, key: Key, event: Waiter) -> None:
        if key not in self._waiters:
            self._waiters[key] = set()
            self._seen[key] = folder_state(self.store, *key)
        self._waiters[key].add(event)
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._kick = asyncio.Event()
            self._start_listening(loop)
            self._task = loop.create_task(self._run())

    def _start_listening(self, loop: asyncio.AbstractEventLoop) -> None:
        """A thread that waits for the store's wake-up and kicks the poll at once."""
        listener = WakeListener(self.store.home.root, MAILBOX_CHANGES)
        if not listener.bound:          # every slot taken: poll only
            listener.close()
            return
        self._listener = listener
        kick = self._kick

        def listen() -> None:
            while self._listener is listener:
                if listener.wait(1.0) and kick is not None:
                    with contextlib.suppress(RuntimeError):   # loop closed
                        loop.call_soon_threadsafe(kick.set)

        self._listening = threading.Thread(target=listen, name="imap-idle-wake",
                                           daemon=True)
        self._listening.start()

    def state(self, key: Key) -> tuple[int, int, int] | None:
        """The folder's state as the last poll read it (None: not watched, or gone)."""
        return self._seen.get(key)

    def remove(self, key: Key, event: Waiter) -> None:
        waiters = self._waiters.get(key)
        if waiters is None:
            return
        waiters.discard(event)
        if not waiters:
            del self._waiters[key]
            self._seen.pop(key, None)

    async def _run(self) -> None:
        while True:
            assert self._kick is not None
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a
            # cancellation that arrives as the kick does, and stop() then waited forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._kick.wait()
            self._kick.clear()
            for key in list(self._waiters):
                try:
                    state = folder_state(self.store, *key)
                except Exception:
                    log.exception("IDLE poll of %s failed", key)
                    continue
                self.polls += 1
                if state != self._seen.get(key):
                    self._seen[key] = state
                    if self.indexes is not None and state is not None:
                        # List once here, so the woken sessions all find the index.
                        with contextlib.suppress(Exception):
                            await asyncio.get_running_loop().run_in_executor(
                                None, self.indexes.get, self.store, *key)
                    for event in self._waiters.get(key, ()):
                        event.set()

    async def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._listening is not None:
            self._listening.join(2)
            self._listening = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
