"""The ``imap`` service of ``postroom serve`` (manual 6.3.3): listeners, logins, logs.

The start-up shared with POP3 (logs, TLS, host name, login checker, store pool,
accept processes) is :class:`~postroom.services.client_service.ClientService`; this
class adds what only IMAP sessions share (:class:`~.session.ImapContext`): the folder
watch that wakes IDLE sessions, the shared folder indexes, and the parsed-message and
header caches. Listener changes need a restart.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from postroom.net.listeners import ListenerSpec
from postroom.services.accept_processes import Role
from postroom.services.client_service import ClientService
from postroom.services.imap.message_cache import HeaderCache, MessageCache
from postroom.services.imap.server import ImapListeners, listener_specs
from postroom.services.imap.session import ImapContext
from postroom.services.imap.watch import FolderWatch
from postroom.store import Store
from postroom.store.backends.sqlite.folder_index import FolderIndexes


class ImapService(ClientService):
    """``postroom serve imap``."""

    name = "imap"
    log_folder = "IMAP"

    def __init__(self, store: Store, *, auth_failure_delay: float = 1.0) -> None:
        super().__init__(store, auth_failure_delay=auth_failure_delay)
        self.watch: FolderWatch | None = None
        self.cache: MessageCache | None = None
        self.headers: HeaderCache | None = None
        self.indexes: FolderIndexes | None = None

    def make_listeners(self, role: Role, pool: ThreadPoolExecutor) -> ImapListeners:
        assert self.logs is not None and self.logins is not None
        store = self.store
        indexes = FolderIndexes(snapshots=getattr(store.messages, "snapshots", None))
        self.indexes = indexes
        self.watch = FolderWatch(
            store, interval=int(store.settings.get("imap.general.idle_poll_interval")) / 1000,
            indexes=indexes)
        self.cache = MessageCache(store.home.messages)
        self.headers = HeaderCache(store.home.messages,
                                   directory=store.home.cache / "imap-headers")
        ctx = ImapContext(store=store, logins=self.logins, logs=self.logs, tls=self.tls,
                          indexes=indexes, hostname=self.hostname, store_pool=pool,
                          connection_ids=self.accept.connection_id, watch=self.watch,
                          cache=self.cache, failure_delay=self.auth_failure_delay,
                          headers=self.headers, processes=role.count)
        return ImapListeners(ctx)

    def listener_specs(self) -> list[ListenerSpec]:
        return listener_specs(self.store.settings)

    async def stop_parts(self) -> None:
        if self.watch is not None:
            await self.watch.stop()
        if self.indexes is not None:        # a snapshot being written is finished
            await asyncio.to_thread(self.indexes.close)
        if self.headers is not None:        # so is a folder's header cache file
            await asyncio.to_thread(self.headers.close)
