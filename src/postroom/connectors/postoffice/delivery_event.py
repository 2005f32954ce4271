"""Mailbox delivery events (manual 5.5.6, 6.2.4.2): run a program per delivered message.

The manual's command line is ``program messagefilename connectortype``; we run
exactly that, without a shell: ``PROGRAM MESSAGEFILE CONNECTORTYPE`` where
MESSAGEFILE is the **full path** of a private copy of the delivered message (the
manual's program had to find the directory in the Windows registry; we have none)
and CONNECTORTYPE is where the message came from (``SMTP``, ``LS``, ``SF``). The
envelope travels in the environment: ``POSTROOM_SENDER`` (empty for the null
sender), ``POSTROOM_RECIPIENT`` (``[SF:po/mailbox]``), ``POSTROOM_MAILBOX``
(``mailbox@postoffice``), ``POSTROOM_FOLDER``, ``POSTROOM_TRACKING_ID``.

Settings: the mailbox's ``delivery_event.enabled`` / ``delivery_event.program``; bulk
and system messages are skipped unless ``postoffice_connector.delivery_event_on_bulk``.
The manual defines no post office level event, so there is none.

Never blocks or fails delivery: the program runs after the message is stored, on a
small pool of background threads, in its own session with stdin closed; after
``timeout`` seconds (30) its whole process group is killed. A missing program, a
non-zero exit or a timeout is logged (and recorded in message tracking as an
``event``), nothing more. The private copy is deleted when the program ends, so
the program may read it but must not keep its name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("postroom.postoffice")

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class EventRequest:
    program: str
    message_path: Path
    connector_type: str
    sender: str
    recipient: str
    mailbox: str
    folder: str
    tracking_id: str


@dataclass(frozen=True)
class EventResult:
    request: EventRequest
    ok: bool
    detail: str


def connector_type(extra: dict[str, object]) -> str:
    """Where a message came from, in the manual's words (SMTP, LS, SF)."""
    source = str(extra.get("source") or "").upper()
    if source in ("SF", "LS"):
        return source
    return "SMTP"     # SMTP sessions and the drop folder (the SMTP pickup)


class DeliveryEvents:
    """Runs delivery event programs in the background; ``close()`` ends them."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, threads: int = 4,
                 on_result: Callable[[EventResult], None] | None = None) -> None:
        self.timeout = timeout
        self.on_result = on_result
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sf-event")
        self._running: set[subprocess.Popen[bytes]] = set()
        self._pending: set[Path] = set()
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, request: EventRequest) -> None:
        """Run the program later; takes ownership of ``request.message_path``."""
        if self._closed:
            request.message_path.unlink(missing_ok=True)
            return
        with self._lock:
            self._pending.add(request.message_path)
        try:
            self._pool.submit(self._run, request)
        except RuntimeError:          # shutting down
            with self._lock:
                self._pending.discard(request.message_path)
            request.message_path.unlink(missing_ok=True)

    def _run(self, request: EventRequest) -> EventResult:
        try:
            result = self._execute(request)
        finally:
            request.message_path.unlink(missing_ok=True)
            with self._lock:
                self._pending.discard(request.message_path)
        if result.ok:
            log.info("delivery event %s for %s: %s", request.program, request.mailbox,
                     result.detail)
        else:
            log.warning("delivery event %s for %s failed: %s", request.program,
                        request.mailbox, result.detail)
        if self.on_result is not None:
            try:
                self.on_result(result)
            except Exception:
                log.exception("delivery event result handler failed")
        return result

    def _execute(self, request: EventRequest) -> EventResult:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "POSTROOM_SENDER": request.sender,
            "POSTROOM_RECIPIENT": request.recipient,
            "POSTROOM_MAILBOX": request.mailbox,
            "POSTROOM_FOLDER": request.folder,
            "POSTROOM_TRACKING_ID": request.tracking_id,
        }
        try:
            proc = subprocess.Popen(
                [request.program, str(request.message_path), request.connector_type],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                env=env, start_new_session=True, close_fds=True)
        except OSError as exc:
            return EventResult(request, False, f"cannot run: {exc.strerror or exc}")
        with self._lock:
            self._running.add(proc)
        try:
            try:
                _out, err = proc.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.communicate()
                return EventResult(request, False, f"killed after {self.timeout:g} s")
        finally:
            with self._lock:
                self._running.discard(proc)
        if proc.returncode != 0:
            tail = (err or b"")[-300:].decode("utf-8", "replace").strip()
            return EventResult(request, False, f"exit status {proc.returncode}"
                                               + (f": {tail}" if tail else ""))
        return EventResult(request, True, "exit status 0")

    def close(self) -> None:
        """Stop: pending events are dropped, running programs killed."""
        self._closed = True
        with self._lock:
            running = list(self._running)
        for proc in running:
            _kill_group(proc)
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            left, self._pending = list(self._pending), set()
        for path in left:           # events cancelled before they ran
            path.unlink(missing_ok=True)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
