"""Child processes that run parts of Postroom, supervised by the process that started them.

Why processes: one Python process uses one core, and a service that crashes or is
killed must not take the others with it. ``postroom serve`` runs each service in a
process of its own (the manual's services are separate Windows services too), and
a network service may run several accept processes (``accept_processes.py``). Both
use this.

* Every child is ``python -m postroom.cli.main --home DIR serve ...`` (the same
  program, so the same code version), with an optional environment addition.
* A child dies with its parent: the Linux parent-death signal (``PR_SET_PDEATHSIG``)
  sends it SIGTERM if the parent is killed, so no orphan keeps a port or a lease.
* A child that exits while we are not stopping is restarted after
  :data:`RESTART_DELAY` seconds (doubling, at most a minute, while it keeps failing).
* ``stop()`` sends SIGTERM to all, waits for them to finish their work (grace
  period), then SIGKILL.
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
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("postroom.serve")

RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 60.0
STABLE_AFTER = 30.0


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


@dataclass
class Child:
    label: str
    args: list[str]                     # after ``postroom --home DIR``
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    delay: float = RESTART_DELAY
    due: float = 0.0                    # restart time after an unexpected exit


class Children:
    """Start, watch and stop a set of child processes."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.children: list[Child] = []
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    def add(self, label: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.children.append(Child(label, args, dict(env or {})))

    def start(self) -> None:
        for child in self.children:
            self._spawn(child)
        self._watch = asyncio.get_running_loop().create_task(self._supervise())

    def _spawn(self, child: Child) -> None:
        child.proc = subprocess.Popen(
            [sys.executable, "-m", "postroom.cli.main", "--home", str(self.home), *child.args],
            env={**os.environ, **child.env}, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)
        child.started = time.monotonic()
        child.due = 0.0
        log.info("%s started (pid %d)", child.label, child.proc.pid)

    async def _supervise(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for child in self.children:
                proc = child.proc
                if self._stopping or proc is None or proc.poll() is None:
                    continue
                if not child.due:
                    ran = now - child.started
                    child.delay = RESTART_DELAY if ran > STABLE_AFTER else \
                        min(MAX_RESTART_DELAY, child.delay * 2)
                    child.due = now + child.delay
                    log.warning("%s exited with %s; restarting in %.0f s", child.label,
                                proc.returncode, child.delay)
                elif now >= child.due:
                    self._spawn(child)

    async def stop(self, grace: float = 30.0) -> None:
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        running = [c.proc for c in self.children if c.proc is not None and c.proc.poll() is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in running:
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def pids(self) -> dict[str, int]:
        return {c.label: c.proc.pid for c in self.children
                if c.proc is not None and c.proc.poll() is None}
