"""The ``imap`` service of ``postroom serve`` (manual 6.3.3): listeners, logins, logs.

Start builds what every session shares (:class:`~.session.ImapContext`: the login
checker, a small pool for store work, the TLS context, the logs, the folder watch that
wakes IDLE sessions, the parsed-message cache) and opens the listeners
(:func:`.server.listener_specs`). ``settings_changed`` applies log switches, a
replaced certificate and the host name live; listener changes need a restart.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from postroom.auth.logins import LoginChecker
from postroom.logs import ServiceLogs
from postroom.net.hostname import server_hostname
from postroom.net.tls import ServerTls, TlsError
from postroom.services.accept_processes import AcceptGroup
from postroom.services.imap.folder_index import FolderIndexes
from postroom.services.imap.message_cache import HeaderCache, MessageCache
from postroom.services.imap.server import ImapListeners, listener_specs
from postroom.services.imap.session import ImapContext
from postroom.services.imap.watch import FolderWatch
from postroom.store import Store

log = logging.getLogger("postroom.imap")

STORE_WORKERS = 4


class ImapService:
    """``postroom serve imap``."""

    name = "imap"

    def __init__(self, store: Store, *, auth_failure_delay: float = 1.0) -> None:
        self.store = store
        self.auth_failure_delay = auth_failure_delay
        self.listeners: ImapListeners | None = None
        self.logs: ServiceLogs | None = None
        self.tls: ServerTls | None = None
        self.logins: LoginChecker | None = None
        self.watch: FolderWatch | None = None
        self.cache: MessageCache | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._hostname = "localhost"
        self.accept = AcceptGroup("imap")

    def hostname(self) -> str:
        return self._hostname

    def _compute_hostname(self) -> str:
        return server_hostname(self.store.settings, self.tls)

    async def start(self) -> None:
        store, settings = self.store, self.store.settings
        self.logs = ServiceLogs("IMAP", store.home.logs)
        self.logs.apply_settings(settings, "imap")
        try:
            self.tls = ServerTls(store.home.cert_file, store.home.key_file)
        except TlsError as exc:
            log.warning("IMAP without TLS: %s", exc)
            self.tls = None
        self._hostname = self._compute_hostname()
        role = self.accept.decide(int(settings.get("imap.general.accept_processes")))
        self.logins = LoginChecker(store, service="imap")
        self._pool = ThreadPoolExecutor(max_workers=STORE_WORKERS,
                                        thread_name_prefix="imap-store")
        indexes = FolderIndexes()
        self.watch = FolderWatch(
            store, interval=int(settings.get("imap.general.idle_poll_interval")) / 1000,
            indexes=indexes)
        self.cache = MessageCache(store.home.messages)
        ctx = ImapContext(store=store, logins=self.logins, logs=self.logs, tls=self.tls,
                          indexes=indexes,
                          hostname=self.hostname, store_pool=self._pool,
                          connection_ids=self.accept.connection_id, watch=self.watch,
                          cache=self.cache, failure_delay=self.auth_failure_delay,
                          headers=HeaderCache(store.home.messages),
                          processes=role.count)
        self.listeners = ImapListeners(ctx)
        self.listeners.reuse_port = role.shared_ports
        await self.listeners.start(listener_specs(settings))
        for kind, port in self.listeners.bound().items():
            log.info("imap %s listener on port %d", kind, port)
        self.accept.start_others(store.home.root)

    async def stop(self) -> None:
        await self.accept.stop_others()
        if self.listeners is not None:
            await self.listeners.stop()
            self.listeners = None
        if self.watch is not None:
            await self.watch.stop()
        if self.logins is not None:
            self.logins.close()
            self.logins = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if self.logs is not None:
            self.logs.close()

    def settings_changed(self) -> None:
        if self.logs is not None:
            self.logs.apply_settings(self.store.settings, "imap")
        if self.tls is not None:
            self.tls.reload_if_changed()
        self._hostname = self._compute_hostname()

    def ports(self) -> dict[str, int]:
        """Listener kind (``imap``, ``imaps``) -> bound port."""
        return self.listeners.bound() if self.listeners else {}
