"""The MTA pickup event (manual 6.1.2, "Enable pickup event").

"Executes a program or application when mail arrives ... The command line used to
execute the application is: ``program messagefilename connectortype`` ... The
pickup event is executed before any filters (antivirus for instance)." The manual's
example program appends text to each message, so a program may change the file.

How we run it (settings ``mta.general.pickup_event_enabled`` and
``mta.general.pickup_event_program``):

* The message is copied (streamed, never held in memory) to a private
  ``DIR/tmp/mta-pickup-*.eml`` file; the program gets its **full path** (the
  manual's program had to read the directory from the Windows registry, which does
  not exist here) and the connector type ``SMTP``, ``LS`` or ``SF``; its working
  directory is ``DIR/tmp``, so a program that only uses the bare file name works too.
* No shell: the program path is one argv element, so nothing in a message or a
  setting is ever interpreted by a shell. stdin is closed; stdout and stderr go to a
  file of which the first few kilobytes reach the debug log.
* A timeout (:data:`DEFAULT_TIMEOUT`, 30 s) bounds it; on expiry the program's whole
  process group is killed (a shell script's children too, which would otherwise keep
  running). It runs on the worker thread of its own message only, so a slow program
  never holds up other messages beyond the threads it occupies
  (``mta.general.max_threads``).
* A missing, failing (non-zero exit) or slow program is reported in the result and
  logged by the caller; the message goes on unchanged. If the program exits 0 after
  changing the file, :attr:`PickupEventResult.modified` tells the caller to continue
  with the changed message (see :mod:`postroom.mta.agent`).

Untrusted input: the message bytes (written to the file as they are) and the
program's output (only ever logged, as text with replacement characters).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

DEFAULT_TIMEOUT = 30.0
OUTPUT_LIMIT = 4096
CONNECTOR_TYPES = ("SMTP", "LS", "SF")
_CHUNK = 1 << 16


@dataclass(frozen=True)
class PickupEventResult:
    ok: bool                  # ran and exited 0 within the timeout
    returncode: int | None    # None: did not start, or killed on timeout
    timed_out: bool
    modified: bool            # the program changed the message file (and exited 0)
    seconds: float
    error: str = ""           # why it is not ok, for the logs
    output: str = ""          # the start of stdout + stderr


def spool_message(body: BinaryIO, directory: Path, prefix: str) -> tuple[Path, str]:
    """Copy ``body`` to a new private file in ``directory``; return it and its SHA-256."""
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".eml", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := body.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name), digest.hexdigest()


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


_running: set[subprocess.Popen[bytes]] = set()
_running_lock = threading.Lock()


def kill_running() -> int:
    """Kill every pickup event still running (service stop: a hung program must not
    hold the shutdown for its whole timeout); return how many. Their messages go on
    as after a failed event."""
    with _running_lock:
        running = list(_running)
    for proc in running:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    return len(running)


def run_pickup_event(program: str, message: Path, connector: str, *,
                     timeout: float = DEFAULT_TIMEOUT,
                     digest: str | None = None) -> PickupEventResult:
    """Run ``program message connector``; never raises for the program's faults."""
    started = time.monotonic()
    if connector not in CONNECTOR_TYPES:
        connector = "SMTP"
    executable = shutil.which(program) if program and os.sep not in program else program
    if not executable:
        return PickupEventResult(False, None, False, False, 0.0,
                                 f"program {program!r} not found")
    log_path = message.with_suffix(".out")
    try:
        with open(log_path, "wb") as output:
            try:
                proc = subprocess.Popen(
                    [executable, str(message), connector], stdin=subprocess.DEVNULL,
                    stdout=output, stderr=subprocess.STDOUT, cwd=message.parent,
                    start_new_session=True, close_fds=True)
            except OSError as exc:
                return PickupEventResult(False, None, False, False,
                                         time.monotonic() - started,
                                         f"cannot run {program!r}: {exc.strerror or exc}")
            timed_out = False
            with _running_lock:
                _running.add(proc)
            try:
                returncode: int | None = proc.wait(timeout=max(0.1, timeout))
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
                returncode = None
            finally:
                with _running_lock:
                    _running.discard(proc)
        text = _read_start(log_path)
    finally:
        log_path.unlink(missing_ok=True)
    seconds = time.monotonic() - started
    if timed_out:
        return PickupEventResult(False, None, True, False, seconds,
                                 f"killed after {timeout:g} s (timeout)", text)
    if returncode != 0:
        return PickupEventResult(False, returncode, False, False, seconds,
                                 f"exited with status {returncode}", text)
    modified = digest is not None and message.exists() and file_digest(message) != digest
    return PickupEventResult(True, returncode, False, modified, seconds, "", text)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the program and everything it started (its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _read_start(path: Path) -> str:
    try:
        with open(path, "rb") as source:
            return source.read(OUTPUT_LIMIT).decode("utf-8", "replace").strip()
    except OSError:
        return ""
