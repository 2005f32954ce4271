"""The ``smtp`` service of ``postroom serve`` (manual 6.2.3): listeners, drop folder, logs.

Start builds what every session shares (policy, authenticator, TLS context, resolver,
logs: :class:`~.session.ServerContext`), opens the listeners
(:func:`.server.listener_specs`) and starts the drop folder scanner
(:mod:`.pickup`). ``settings_changed`` (called by the supervisor when the settings
generation moves) applies what can change live: log switches and fields, the DNS
servers, a replaced certificate, the banner host name; the policy reads its settings
on every call anyway, and each new session reads limits and timeouts afresh.
Listener addresses and ports need a restart.

Start also removes the spool files (``DIR/tmp/smtp-<pid>-*``) of SMTP processes that
no longer run: a killed server leaves the bodies it was receiving there, and none of
them was ever answered 250 (a queued message lives in the queue, not in the spool).

The host name in the banner, EHLO reply and Received header is
``smtp.general.local_domain_name``, else the certificate's name, else the system's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from pathlib import Path

from postroom.connectors.smtp.auth import Authenticator
from postroom.connectors.smtp.pickup import DropFolder
from postroom.connectors.smtp.policy import InboundPolicy
from postroom.connectors.smtp.server import SmtpListeners, listener_specs
from postroom.connectors.smtp.session import ServerContext
from postroom.connectors.smtp.transcript import Transcript
from postroom.logs import ServiceLogs
from postroom.net.dns import Resolver
from postroom.net.hostname import server_hostname
from postroom.net.tls import ServerTls, TlsError
from postroom.services.accept_processes import AcceptGroup
from postroom.store import Store
from postroom.store.directory_cache import CachedDirectory
from postroom.store.processes import process_alive

log = logging.getLogger("postroom.smtp")


class SmtpService:
    """``postroom serve smtp``."""

    name = "smtp"

    def __init__(self, store: Store, *, auth_failure_delay: float = 1.0,
                 pickup_interval: float = 1.0, pickup_settle: float = 1.0) -> None:
        self.store = store
        self.auth_failure_delay = auth_failure_delay
        self.pickup_interval = pickup_interval
        self.pickup_settle = pickup_settle
        self.listeners: SmtpListeners | None = None
        self.logs: ServiceLogs | None = None
        self.tls: ServerTls | None = None
        self.authenticator: Authenticator | None = None
        self.pickup: DropFolder | None = None
        self._pickup_task: asyncio.Task[None] | None = None
        self._resolver: Resolver | None = None
        self._nameservers: object = None
        self._hostname = "localhost"
        self.accept = AcceptGroup("smtp")

    # -- shared pieces -------------------------------------------------------------------

    def hostname(self) -> str:
        return self._hostname

    def _compute_hostname(self) -> str:
        return server_hostname(self.store.settings, self.tls)

    def resolver(self) -> Resolver:
        if self._resolver is None:
            self._nameservers = self.store.settings.get("dns.nameservers")
            self._resolver = Resolver.from_settings(self.store.settings)
        return self._resolver

    # -- Service protocol ------------------------------------------------------------------

    async def start(self) -> None:
        store, settings = self.store, self.store.settings
        self.logs = ServiceLogs("SMTP", store.home.logs,
                                w3c_directory=settings.get("smtp.logging.w3c_directory") or None)
        self.logs.apply_settings(settings, "smtp")
        try:
            self.tls = ServerTls(store.home.cert_file, store.home.key_file)
        except TlsError as exc:
            log.warning("SMTP without TLS: %s", exc)
            self.tls = None
        self._hostname = self._compute_hostname()
        removed = remove_dead_spool_files(store.home.tmp)
        if removed:
            log.info("removed %d spool file(s) of SMTP processes that no longer run", removed)
        role = self.accept.decide(int(settings.get("smtp.inbound.accept_processes")))
        policy = InboundPolicy(settings, CachedDirectory(store))
        policy.process_count = role.count
        self.authenticator = Authenticator(store, failure_delay=self.auth_failure_delay)
        ctx = ServerContext(store=store, policy=policy, authenticator=self.authenticator,
                            logs=self.logs, tls=self.tls, resolver=self.resolver,
                            hostname=self.hostname, connection_ids=self.accept.connection_id)
        self.listeners = SmtpListeners(ctx)
        self.listeners.reuse_port = role.shared_ports
        await self.listeners.start(listener_specs(settings))
        for kind, port in self.listeners.bound().items():
            log.info("smtp %s listener on port %d", kind, port)
        if not role.primary:
            return                  # the drop folder and the other processes: primary's
        self.accept.start_others(store.home.root)
        self.pickup = DropFolder(store, policy, Transcript(self.logs, 0, "127.0.0.1", "", 0),
                                 self.hostname, interval=self.pickup_interval,
                                 settle=self.pickup_settle)
        self._pickup_task = asyncio.get_running_loop().create_task(self.pickup.run())

    async def stop(self) -> None:
        await self.accept.stop_others()
        if self._pickup_task is not None:
            self._pickup_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pickup_task
            self._pickup_task = None
        if self.listeners is not None:
            await self.listeners.stop()
            self.listeners = None
        if self.authenticator is not None:
            self.authenticator.close()
        if self.logs is not None:
            self.logs.close()

    def settings_changed(self) -> None:
        settings = self.store.settings
        if self.logs is not None:
            self.logs.apply_settings(settings, "smtp")
        if self.tls is not None:
            self.tls.reload_if_changed()
        if settings.get("dns.nameservers") != self._nameservers:
            self._resolver = None
        self._hostname = self._compute_hostname()

    def ports(self) -> dict[str, int]:
        """Listener kind (``mx``, ``submission``, ``smtps``) -> bound port."""
        return self.listeners.bound() if self.listeners else {}


SPOOL_FILE = re.compile(r"smtp-(\d+)-[0-9a-f]+\.(?:eml|new)")


def remove_dead_spool_files(tmp_dir: Path) -> int:
    """Delete the spool files (see :mod:`.spool`) whose process is gone; returns how many."""
    removed = 0
    try:
        entries = list(os.scandir(tmp_dir))
    except FileNotFoundError:
        return 0
    for entry in entries:
        match = SPOOL_FILE.fullmatch(entry.name)
        if match is None or process_alive(int(match.group(1))):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)
            removed += 1
    return removed
