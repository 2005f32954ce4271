"""What the POP3 and IMAP services share as services of ``postroom serve``: the
start-up of the parts every session uses and their orderly stop.

Both build the same things before their listeners open: the service's logs (manual
9.2, switched by ``<service>.logging.*``), the TLS context from the data directory's
certificate (a missing or broken one leaves the service without TLS, logged), the
host name of greetings (:func:`~postroom.net.hostname.server_hostname`), the login
checker (lockout, Argon2 in its own pool), a small pool for store work off the event
loop, and their place among the accept processes
(:class:`~postroom.services.accept_processes.AcceptGroup`). A subclass names itself
and builds only its own context and listener class from those parts.

``settings_changed`` applies what can change live: log switches, a replaced
certificate, the host name. Listener addresses and ports need a restart.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from postroom.auth.logins import LoginChecker
from postroom.logs import ServiceLogs
from postroom.net.hostname import server_hostname
from postroom.net.listeners import Listeners, ListenerSpec
from postroom.net.tls import ServerTls, TlsError
from postroom.services.accept_processes import AcceptGroup, Role
from postroom.store import Store

STORE_WORKERS = 4


class ClientService:
    """A mail client service (POP3, IMAP): see the module docstring."""

    name = ""                 # "pop3", "imap": the settings prefix and the service name
    log_folder = ""           # "POP3", "IMAP": the logs' folder and file prefix
    w3c_directory_setting: str | None = None    # where the manual lets the W3C log move

    def __init__(self, store: Store, *, auth_failure_delay: float = 1.0) -> None:
        self.store = store
        self.auth_failure_delay = auth_failure_delay
        self.listeners: Listeners | None = None
        self.logs: ServiceLogs | None = None
        self.tls: ServerTls | None = None
        self.logins: LoginChecker | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._hostname = "localhost"
        self.accept = AcceptGroup(self.name)
        self.log = logging.getLogger(f"postroom.{self.name}")

    def hostname(self) -> str:
        return self._hostname

    # -- what a subclass supplies ------------------------------------------------------

    def make_listeners(self, role: Role, pool: ThreadPoolExecutor) -> Listeners:
        """The service's context and listener object, from the shared parts."""
        raise NotImplementedError

    def listener_specs(self) -> list[ListenerSpec]:
        raise NotImplementedError

    async def stop_parts(self) -> None:
        """Stop what :meth:`make_listeners` started besides the listeners."""

    # -- start and stop ----------------------------------------------------------------

    async def start(self) -> None:
        store, settings = self.store, self.store.settings
        w3c_directory: Any = settings.get(self.w3c_directory_setting) \
            if self.w3c_directory_setting else None
        self.logs = ServiceLogs(self.log_folder, store.home.logs,
                                w3c_directory=w3c_directory or None)
        self.logs.apply_settings(settings, self.name)
        try:
            self.tls = ServerTls(store.home.cert_file, store.home.key_file)
        except TlsError as exc:
            self.log.warning("%s without TLS: %s", self.log_folder, exc)
            self.tls = None
        self._hostname = server_hostname(settings, self.tls)
        role = self.accept.decide(int(settings.get(f"{self.name}.general.accept_processes")))
        self.logins = LoginChecker(store, service=self.name)
        # Made now, not by the first client's login or mailbox: each imports and sets
        # up a part of the store (tens of ms without compiled bytecode at hand).
        store.directory, store.messages, store.acl  # noqa: B018
        self._pool = ThreadPoolExecutor(max_workers=STORE_WORKERS,
                                        thread_name_prefix=f"{self.name}-store")
        self._pool.submit(lambda: store.conn)   # a thread and its connection, ready
        self.listeners = self.make_listeners(role, self._pool)
        self.listeners.reuse_port = role.shared_ports
        await self.listeners.start(self.listener_specs())
        for kind, port in self.listeners.bound().items():
            self.log.info("%s %s listener on port %d", self.name, kind, port)
        self.accept.start_others(store.home.root)

    async def stop(self) -> None:
        await self.accept.stop_others()
        if self.listeners is not None:
            await self.listeners.stop()
            self.listeners = None
        await self.stop_parts()
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
            self.logs.apply_settings(self.store.settings, self.name)
        if self.tls is not None:
            self.tls.reload_if_changed()
        self._hostname = server_hostname(self.store.settings, self.tls)

    def ports(self) -> dict[str, int]:
        """Listener kind (``pop3``/``pop3s``, ``imap``/``imaps``) -> bound port."""
        return self.listeners.bound() if self.listeners else {}
