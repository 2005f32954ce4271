"""The IDLE watch stops when asked, even when a wake-up arrives at the same moment."""

from __future__ import annotations

import asyncio

from postroom.services.imap.watch import FolderWatch
from postroom.store import Store
from tests.store.helpers import make_mailbox


def test_the_watch_stops_when_a_wake_up_comes_with_the_stop(store: Store) -> None:
    """A mailbox change kicks the watch as the service stops (the group commit wakes it
    after every batch): asyncio.wait_for on Python 3.11 swallowed that cancellation and
    the service's stop then waited forever."""
    make_mailbox(store)

    async def scenario() -> None:
        watch = FolderWatch(store, interval=30)
        watch.add(("example", "bob", "Inbox"), asyncio.Event())
        await asyncio.sleep(0.05)           # the poll is waiting for a kick
        for _ in range(10):
            poll, kick = watch._task, watch._kick
            assert poll is not None and kick is not None
            kick.set()                      # a wake-up and the stop, together
            stopping = asyncio.ensure_future(watch.stop())
            done, _ = await asyncio.wait({stopping}, timeout=5)
            assert stopping in done and poll.done()     # stopped, and on its own
            watch.add(("example", "bob", "Inbox"), asyncio.Event())
            await asyncio.sleep(0.01)
        await asyncio.wait_for(watch.stop(), 5)

    asyncio.run(scenario())
