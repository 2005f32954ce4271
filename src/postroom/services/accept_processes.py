"""Several accept processes for one network service (``smtp.inbound.accept_processes``,
``pop3.general.accept_processes``).

Why: one Python process runs one core. Serving clients is CPU work (parsing, policy,
logs, TLS) and one process tops out at a few hundred connections per second; with
``SO_REUSEPORT`` every process binds the same ports and the kernel spreads new
connections across them, so N processes use N cores. Each process has its own event
loop, store connection and group-commit writer (SQLite serialises their commits), so
the durability promise is unchanged: 250 only after the commit.

The process that ``postroom serve`` started is the *primary*: it binds first, runs
what must run once (the SMTP drop folder), and starts ``N - 1`` *secondaries* (the
same program, ``serve SERVICE``, told its role through :func:`role_variable`).
Secondaries die with the primary (Linux parent-death signal), and the primary
restarts a secondary that exits unexpectedly (``postroom.services.children``).

Known limits: counters that live in memory are per process. Connection limits (in
total and per IP) are divided by N and rounded up, so the sum over the processes is
about the setting; a client whose connections all land on one process is refused a
little early. Hourly recipient limits and the drop-after-errors counter count per
process. Logs are shared daily files written with ``O_APPEND``; connection ids are
interleaved (process i of N numbers i+1, i+1+N, ...) so they stay unique.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

from postroom.services.children import Children

MAX_AUTO = 8


def role_variable(service: str) -> str:
    """The environment variable that tells a secondary of ``service`` its role."""
    return f"POSTROOM_{service.upper().replace('-', '_')}_ROLE"


@dataclass(frozen=True)
class Role:
    """Which accept process this is: ``index`` 0 is the primary."""

    index: int = 0
    count: int = 1

    @property
    def primary(self) -> bool:
        return self.index == 0

    @property
    def shared_ports(self) -> bool:
        return self.count > 1


def role_from_environment(service: str) -> Role | None:
    """The role a primary gave this process, or None when started by an administrator."""
    text = os.environ.get(role_variable(service), "")
    if not text:
        return None
    try:
        index, count = (int(part) for part in text.split("/", 1))
    except ValueError:
        return None
    if not 0 < index < count:
        return None
    return Role(index, count)


def wanted_processes(setting: int) -> int:
    """The setting's process count; 0 means one per CPU (at most :data:`MAX_AUTO`)."""
    if setting <= 0:
        return max(1, min(MAX_AUTO, os.cpu_count() or 1))
    return setting


def secondaries(home: Path, service: str, count: int) -> Children:
    """The primary's children (started once its listeners are bound)."""
    children = Children(home)
    for index in range(1, count):
        children.add(f"{service} accept process {index + 1}/{count}", ["serve", service],
                     {role_variable(service): f"{index}/{count}"})
    return children


def share(limit: int, count: int) -> int:
    """One process's part of a limit shared by ``count`` processes (rounded up)."""
    return -(-limit // count)


class AcceptGroup:
    """This process's place among its service's accept processes: its role, its
    connection ids (interleaved, so they stay unique across processes), and, in the
    primary, the other processes."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.role = role_from_environment(service) or Role()
        self._ids = itertools.count(self.role.index + 1, self.role.count)
        self._others: Children | None = None

    def decide(self, setting: int) -> Role:
        """The primary fixes the number of processes from the setting (at start);
        a secondary keeps the role its primary gave it."""
        if self.role.primary:
            count = wanted_processes(setting)
            self.role = Role(0, count)
            self._ids = itertools.count(1, count)
        return self.role

    def connection_id(self) -> int:
        return next(self._ids)

    def start_others(self, home: Path) -> None:
        """In the primary, once its listeners are bound: start the secondaries."""
        if self.role.primary and self.role.shared_ports and self._others is None:
            self._others = secondaries(home, self.service, self.role.count)
            self._others.start()

    async def stop_others(self) -> None:
        if self._others is not None:
            await self._others.stop()
            self._others = None
