"""Dated, append-only log files shared by threads, asyncio tasks and processes.

Manual chapter 9.2 and 9.4: every service writes its logs into its own folder
(``Logging\\SMTP`` on Windows; ``DIR/logs/<service>/`` here) and names each file
after the day it covers (``SMTP-Activity-YYMMDD.log``, ``SMTP-Debug-YYMMDD.log``,
W3C ``exYYMMDD.log``).  A file covers one period of the clock the log was given;
the first line written after midnight opens the next day's file.

Why this shape:

* Several processes may log for the same service (``postroom serve smtp`` on one
  node next to an admin command), and many asyncio tasks and threads in each.
  Every record is encoded first and handed to the kernel in a single ``write()``
  on a descriptor opened with ``O_APPEND``, so records from different writers
  never interleave inside a line (Linux appends to a regular file under the
  inode lock).  A short write (disk full) is finished with further writes
  under this process's lock; other processes may then interleave, which is the
  accepted cost of not locking every line.
* Logs are not mail: a line is never fsynced (a power cut may lose the last
  seconds of log).  ``write`` hands it to the page cache at once; a busy writer
  (an SMTP session logs every command) may instead collect its lines in a
  :class:`LogBuffer` and write them with one ``write()`` per batch: fewer system
  calls, at the price of losing the unwritten lines (at most a second's worth)
  if the process dies.
* Time stamps have a resolution of one second, so :func:`local_clock` hands out
  the same ``datetime`` for a whole second and the formatters cache their text
  for it (the file name, the activity stamp, the W3C date and time).
* A file that needs a header (W3C directives) is created complete: the header is
  written to a private temporary file that is then hard-linked into place, so
  no other process can ever append a record before the header.
* Log lines carry client-supplied text (commands, addresses, HELO names).
  :func:`one_line` turns control characters into visible escapes so a client can
  neither forge a second record with CR LF nor break the tab-separated columns.

Known limits: the log archive agent (manual 6.3.1.4) must only touch files of
past periods; a file removed while open keeps receiving lines until the period
ends.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

__all__ = [
    "Clock",
    "DailyLogFile",
    "LogBuffer",
    "LogNameError",
    "ServiceLog",
    "check_service_name",
    "local_clock",
    "one_line",
]

FILE_MODE = 0o640
_SERVICE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ESCAPES = {"\t": "\\t", "\r": "\\r", "\n": "\\n", "\\": "\\\\"}


class LogNameError(ValueError):
    """A service name or file name that cannot be used for a log file."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_service_name(service: str) -> str:
    """Return ``service`` if it can name a log folder and file prefix (``SMTP``, ``POP``)."""
    if not _SERVICE_NAME.match(service):
        raise LogNameError(
            "service",
            f"{service!r} is not a service name: use letters, digits and _ (e.g. SMTP)",
        )
    return service


def one_line(text: str) -> str:
    """Make ``text`` safe as one field of one log line.

    Backslash, tab, CR and LF become ``\\\\``, ``\\t``, ``\\r``, ``\\n``; other
    control characters become ``\\xNN``.  Nothing a client sends can start a new
    record or add a column.
    """
    if text.isascii() and text.isprintable() and "\\" not in text:
        return text          # the common case, without a regular expression
    if not _CONTROL.search(text) and "\\" not in text:
        return text

    def escape(match: re.Match[str]) -> str:
        char = match.group(0)
        return _ESCAPES.get(char, f"\\x{ord(char):02x}")

    return re.sub(r"[\x00-\x1f\x7f\\]", escape, text)


_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


# Fork detection without a getpid() system call per line.
os.register_at_fork(after_in_child=_forked)


class DailyLogFile:
    """One log stream split into dated files in ``directory``.

    ``name_for(when)`` gives the file name for a moment (it decides the period:
    daily, hourly, monthly ...).  ``header(when)`` (optional) gives text written
    once at the top of each new file.  ``write(when, text)`` appends ``text``
    (one or more complete lines ending in ``\\n``) to the file for ``when``.
    """

    def __init__(
        self,
        directory: Path,
        name_for: Callable[[datetime], str],
        header: Callable[[datetime], str] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._name_for = name_for
        self._header = header
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._name: str | None = None
        self._pid = _pid
        self._named: tuple[datetime | None, str] = (None, "")  # last name_for(), by identity

    @property
    def current_path(self) -> Path | None:
        """The file the last line went to (None before the first write)."""
        return self.directory / self._name if self._name else None

    def path_for(self, when: datetime) -> Path:
        return self.directory / self._name_for(when)

    def name_for(self, when: datetime) -> str:
        """The file name for ``when`` (cached for the last ``datetime`` object seen)."""
        named = self._named
        if named[0] is when:
            return named[1]
        name = self._name_for(when)
        self._named = (when, name)
        return name

    def forget_name(self) -> None:
        """The naming rule changed (W3C rollover): compute names afresh."""
        self._named = (None, "")

    def write(self, when: datetime, text: str) -> None:
        data = text.encode("utf-8", "surrogateescape")
        name = self.name_for(when)
        with self._lock:
            if self._pid != _pid:  # forked: the descriptor is shared, reopen ours
                self._fd = None
                self._name = None
                self._pid = _pid
            if self._fd is None or name != self._name:
                self._switch(name, when)
            assert self._fd is not None
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]

    def close(self) -> None:
        with self._lock:
            if self._fd is not None and self._pid == _pid:
                os.close(self._fd)
            self._fd = None
            self._name = None

    def _switch(self, name: str, when: datetime) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / name
        if self._header is not None and not path.exists():
            self._create_with_header(path, self._header(when))
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        self._name = name

    def _create_with_header(self, path: Path, header: str) -> None:
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
        try:
            os.write(fd, header.encode("utf-8"))
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process created it first, with the same header
        finally:
            os.unlink(temporary)

    def __enter__(self) -> DailyLogFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Clock = Callable[[], datetime]


_now: tuple[int, datetime | None] = (-1, None)


def local_clock() -> datetime:
    """The default clock: local time with its UTC offset (files roll at local midnight).

    Whole seconds (what the logs show); the same object for the whole second, so
    the formatters' per-``datetime`` caches hit.
    """
    global _now
    second = int(time.time())
    cached = _now
    if cached[0] == second and cached[1] is not None:
        return cached[1]
    when = datetime.fromtimestamp(second).astimezone()
    _now = (second, when)
    return when


class LogBuffer:
    """Lines of one log collected now and written later, one ``write()`` per flush.

    ``add(when, text)`` keeps a formatted record (see ``ActivityLog.format`` ...);
    ``flush()`` appends everything collected to the file(s) the lines' times belong
    to (a batch that spans midnight goes to both days' files). Not thread-safe: one
    owner (a session) adds and flushes.
    """

    __slots__ = ("_file", "_name", "_when", "parts")

    def __init__(self, log: ServiceLog) -> None:
        self._file = log._file
        self.parts: list[str] = []
        """The unwritten lines. A writer that called :meth:`move_to` for the time of
        its lines may append to this list directly (the sessions' fast path)."""
        self._when: datetime | None = None
        self._name = ""

    def __bool__(self) -> bool:
        return bool(self.parts)

    def add(self, when: datetime, text: str) -> None:
        if when is not self._when:
            self.move_to(when)
        self.parts.append(text)

    def move_to(self, when: datetime) -> None:
        """Lines of time ``when`` come next: if they belong in another file than those
        held (a new day), the held ones are written first."""
        if when is not self._when:
            name = self._file.name_for(when)
            if self.parts and name != self._name:
                self.flush()
            self._when, self._name = when, name

    def flush(self) -> None:
        if self.parts and self._when is not None:
            text = "".join(self.parts)
            self.parts.clear()
            self._file.write(self._when, text)


class ServiceLog:
    """What the W3C, activity and debug logs share: a service, a folder, a switch, a clock.

    ``enabled`` is set by the service from its settings (``smtp.logging.activity_enabled``
    ...) and may change while it runs; a disabled log opens no file and writes nothing.
    """

    def __init__(
        self, service: str, directory: Path, *, enabled: bool = True, clock: Clock = local_clock
    ) -> None:
        self.service = check_service_name(service)
        self.directory = Path(directory)
        self.clock = clock
        self._enabled = enabled
        self._file = self._open_file()

    def _open_file(self) -> DailyLogFile:
        raise NotImplementedError

    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._enabled = bool(value)
        if not self._enabled:
            self._file.close()

    @property
    def current_path(self) -> Path | None:
        """The file the last record went to."""
        return self._file.current_path

    def path_for(self, when: datetime) -> Path:
        """The file a record written at ``when`` goes to."""
        return self._file.path_for(when)

    def write_record(self, record: tuple[datetime, str]) -> None:
        """Append a ``(time, text)`` made by the log's ``record`` method now."""
        self._file.write(*record)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ServiceLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
