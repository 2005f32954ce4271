"""`postroom serve`: run every service (or the ones named) in one process.

A service is an object with ``name``, ``async start()``, ``async stop()`` and
``settings_changed()``; the supervisor starts them, stops them in reverse order
on SIGTERM/SIGINT, and polls the settings generation so that changes made with
``postroom settings set`` reach running services without a restart (the services
decide what they can apply live; listener addresses need a restart).

Without names, ``postroom serve`` runs each service in a process of its own
(:func:`serve_processes`); ``--one-process`` (or naming services) runs them in this
process, sharing one event loop.

Services register themselves in :data:`SERVICES` (name -> factory taking the
store), imported lazily so that `postroom` starts fast: ``smtp``, ``mta``,
``postoffice`` and ``smtp-out`` so far; POP3, IMAP and the web server add
themselves the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence
from typing import Protocol

from postroom.services.children import Children
from postroom.store import Store

log = logging.getLogger("postroom.serve")

SETTINGS_POLL_SECONDS = 2.0


class Service(Protocol):
    name: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def settings_changed(self) -> None: ...


SERVICES: dict[str, Callable[[Store], Service]] = {}


def _smtp(store: Store) -> Service:
    from postroom.connectors.smtp.service import SmtpService

    return SmtpService(store)


def _mta(store: Store) -> Service:
    from postroom.mta.service import MtaService

    return MtaService(store)


def _postoffice(store: Store) -> Service:
    from postroom.connectors.postoffice.connector import PostOfficeService

    return PostOfficeService(store)


def _pop3(store: Store) -> Service:
    from postroom.services.pop3.service import Pop3Service

    return Pop3Service(store)


def _smtp_out(store: Store) -> Service:
    from postroom.connectors.smtp.outbound.service import SmtpOutService

    return SmtpOutService(store)


SERVICES["smtp"] = _smtp
SERVICES["mta"] = _mta
SERVICES["postoffice"] = _postoffice
SERVICES["smtp-out"] = _smtp_out
SERVICES["pop3"] = _pop3


def _imap(store: Store) -> Service:
    from postroom.services.imap.service import ImapService

    return ImapService(store)


SERVICES["imap"] = _imap


class UnknownService(ValueError):
    pass


def select(names: list[str]) -> list[str]:
    """The services to run: all registered ones, or the named ones (validated)."""
    if not names:
        return list(SERVICES)
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        known = ", ".join(SERVICES) or "none yet"
        raise UnknownService(f"service: unknown {', '.join(unknown)} (available: {known})")
    return names


async def serve_processes(store: Store, stop: asyncio.Event | None = None) -> None:
    """Every service in a process of its own (``postroom serve`` without names).

    One core per service instead of one for all, and a service that crashes is
    restarted alone (:mod:`postroom.services.children`). Each child follows the
    settings itself.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    children = Children(store.home.root)
    for name in SERVICES:
        children.add(f"service {name}", ["serve", name])
    children.start()
    try:
        await stop.wait()
    finally:
        await children.stop()
        log.info("stopped %s", ", ".join(SERVICES))


def space_commits(store: Store, running: Sequence[Service]) -> float:
    """Space this process's queue commits by the shortest interval its services accept
    (a service without ``commit_interval`` accepts none): only a process running services
    whose callers never wait on a commit (the MTA alone) spaces them. The interval set."""
    interval = min((float(getattr(s, "commit_interval", 0.0)) for s in running), default=0.0)
    store.queue.space_commits(interval)
    return interval


async def serve(store: Store, names: list[str], stop: asyncio.Event | None = None) -> None:
    """Start the services, follow settings changes, and stop cleanly on a signal."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    running: list[Service] = []
    try:
        for name in select(names):
            service = SERVICES[name](store)
            await service.start()
            running.append(service)
            log.info("started %s", name)
        if not running:
            log.warning("no network services are available in this version; "
                        "watching settings only")
        space_commits(store, running)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SETTINGS_POLL_SECONDS)
            if store.settings.reload_if_changed():
                for service in running:
                    service.settings_changed()
    finally:
        for service in reversed(running):
            await service.stop()
            log.info("stopped %s", service.name)
