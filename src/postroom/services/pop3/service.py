"""The ``pop3`` service of ``postroom serve`` (manual 6.3.4): listeners, logins, logs.

Start builds what every session shares (:class:`~.session.Pop3Context`: the login
checker with its Argon2 pool, a small pool for store work, the TLS context, the logs)
and opens the listeners (:func:`.server.listener_specs`). ``settings_changed``
applies what can change live: log switches and fields, a replaced certificate, the
host name; policies read their settings for every connection and command anyway.
Listener addresses and ports need a restart.

The host name in the greeting is ``smtp.general.local_domain_name`` (the server's
mail name), else the certificate's name, else the system's.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from postroom.auth.logins import LoginChecker
from postroom.logs import ServiceLogs
from postroom.net.hostname import server_hostname
from postroom.net.tls import ServerTls, TlsError
from postroom.services.accept_processes import AcceptGroup
from postroom.services.pop3.server import Pop3Listeners, listener_specs
from postroom.services.pop3.session import Pop3Context
from postroom.store import Store

log = logging.getLogger("postroom.pop3")

STORE_WORKERS = 4


class Pop3Service:
    """``postroom serve pop3``."""

    name = "pop3"

    def __init__(self, store: Store, *, auth_failure_delay: float = 1.0) -> None:
        self.store = store
        self.auth_failure_delay = auth_failure_delay
        self.listeners: Pop3Listeners | None = None
        self.logs: ServiceLogs | None = None
        self.tls: ServerTls | None = None
        self.logins: LoginChecker | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._hostname = "localhost"
        self.accept = AcceptGroup("pop3")

    def hostname(self) -> str:
        return self._hostname

    def _compute_hostname(self) -> str:
        return server_hostname(self.store.settings, self.tls)

    async def start(self) -> None:
        store, settings = self.store, self.store.settings
        self.logs = ServiceLogs("POP3", store.home.logs,
                                w3c_directory=settings.get("pop3.logging.w3c_directory") or None)
        self.logs.apply_settings(settings, "pop3")
        try:
            self.tls = ServerTls(store.home.cert_file, store.home.key_file)
        except TlsError as exc:
            log.warning("POP3 without TLS: %s", exc)
            self.tls = None
        self._hostname = self._compute_hostname()
        role = self.accept.decide(int(settings.get("pop3.general.accept_processes")))
        self.logins = LoginChecker(store, service="pop3")
        self._pool = ThreadPoolExecutor(max_workers=STORE_WORKERS,
                                        thread_name_prefix="pop3-store")
        ctx = Pop3Context(store=store, logins=self.logins, logs=self.logs, tls=self.tls,
                          hostname=self.hostname, store_pool=self._pool,
                          connection_ids=self.accept.connection_id,
                          failure_delay=self.auth_failure_delay,
                          processes=role.count)
        self.listeners = Pop3Listeners(ctx)
        self.listeners.reuse_port = role.shared_ports
        await self.listeners.start(listener_specs(settings))
        for kind, port in self.listeners.bound().items():
            log.info("pop3 %s listener on port %d", kind, port)
        self.accept.start_others(store.home.root)

    async def stop(self) -> None:
        await self.accept.stop_others()
        if self.listeners is not None:
            await self.listeners.stop()
            self.listeners = None
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
            self.logs.apply_settings(self.store.settings, "pop3")
        if self.tls is not None:
            self.tls.reload_if_changed()
        self._hostname = self._compute_hostname()

    def ports(self) -> dict[str, int]:
        """Listener kind (``pop3``, ``pop3s``) -> bound port."""
        return self.listeners.bound() if self.listeners else {}
