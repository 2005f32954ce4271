"""Several accept processes for one SMTP service (``smtp.inbound.accept_processes``).

Why: one Python process runs one core. Accepting mail is CPU work (parsing, policy,
logs, TLS) and one process tops out at a few hundred connections per second; with
``SO_REUSEPORT`` every process binds the same ports and the kernel spreads new
connections across them, so N processes use N cores. Each process has its own event
loop, store connection and group-commit writer (SQLite serialises their commits), so
the durability promise is unchanged: 250 only after the commit.

The process that ``postroom serve`` started is the *primary*: it binds first, runs
the drop folder, and starts ``N - 1`` *secondaries* (the same program, ``serve smtp``,
told its role through :data:`ROLE_ENV`). Secondaries die with the primary (Linux
parent-death signal), and the primary restarts a secondary that exits unexpectedly.

Known limits: counters that live in memory are per process. Connection limits (in
total and per IP) are divided by N and rounded up, so the sum over the processes is
about the setting; a client whose connections all land on one process is refused a
little early. Hourly recipient limits and the drop-after-errors counter count per
process. Logs are shared daily files written with ``O_APPEND``; connection ids are
interleaved (process i of N numbers i+1, i+1+N, ...) so they stay unique.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("postroom.smtp")

ROLE_ENV = "POSTROOM_SMTP_ROLE"
MAX_AUTO = 8
RESTART_DELAY = 2.0


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


def role_from_environment() -> Role | None:
    """The role a primary gave this process, or None when started by an administrator."""
    text = os.environ.get(ROLE_ENV, "")
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


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the primary dies (prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


class Secondaries:
    """The primary's children: started after its listeners are bound."""

    def __init__(self, home: Path, count: int) -> None:
        self.home = home
        self.count = count
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        for index in range(1, self.count):
            self._spawn(index)
        self._watch = asyncio.get_running_loop().create_task(self._supervise())

    def _spawn(self, index: int) -> None:
        env = dict(os.environ, **{ROLE_ENV: f"{index}/{self.count}"})
        self._procs[index] = subprocess.Popen(
            [sys.executable, "-m", "postroom.cli.main", "--home", str(self.home),
             "serve", "smtp"],
            env=env, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        log.info("smtp accept process %d/%d started (pid %d)", index + 1, self.count,
                 self._procs[index].pid)

    async def _supervise(self) -> None:
        while not self._stopping:
            await asyncio.sleep(RESTART_DELAY)
            for index, proc in list(self._procs.items()):
                code = proc.poll()
                if code is not None and not self._stopping:
                    log.warning("smtp accept process %d exited with %s; restarting",
                                index + 1, code)
                    self._spawn(index)

    async def stop(self, grace: float = 30.0) -> None:
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for proc in self._procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self._procs.values():
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self._procs.clear()

    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs.values() if proc.poll() is None]
