"""The W3C log: service usage in the W3C Extended Log File Format.

Manual 6.2.3.10 (SMTP), 6.3.4.4 (POP), 6.3.3.3 (IMAP) and 9.2: W3C logging
records service usage in the W3C extended format (W3C working draft WD-logfile,
the format IIS writes); the administrator chooses the fields, the rollover
frequency and the folder (``smtp.logging.w3c_fields``, ``..._rollover``,
``..._directory``; switched by ``smtp.logging.w3c_enabled``).

Each file starts with the directives::

    #Software: Postroom 0.1.0
    #Version: 1.0
    #Date: 2026-01-25 00:00:03
    #Fields: date time c-ip cs-username cs-method cs-uri-stem sc-status ...

then one line per command, fields separated by single spaces in the order of
``#Fields``.  An empty value is ``-``; spaces inside a value become ``+`` (as
IIS does) and control characters are escaped, so a client cannot shift columns
or forge lines.  When the field list changes while a file is open, new
``#Date``/``#Fields`` directives are written before the next line, as the
format allows.

How mail maps onto the HTTP-shaped fields (as Microsoft's SMTP service and
MailEnable use them): ``cs-method`` is the command (``RCPT``), ``cs-uri-query``
its arguments (``TO:<bob@example>``, credentials masked), ``cs-uri-stem`` the
reply text, ``sc-status`` the reply code, ``sc-bytes``/``cs-bytes`` bytes
sent/received, ``time-taken`` in milliseconds, ``s-sitename`` the service.

Time: the format defines ``date`` and ``time`` in UTC (GMT), so W3C files are
named and rolled over by UTC, unlike the activity and debug logs, which follow
local time.  File names follow IIS: ``exYYMMDDHH.log`` (hourly),
``exYYMMDD.log`` (daily, the default), ``exYYMMWW.log`` (weekly, WW = week of
the month 1..5), ``exYYMM.log`` (monthly).
"""

from __future__ import annotations

import dataclasses
import enum
import socket
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from postroom import __version__
from postroom.logs.files import Clock, DailyLogFile, LogNameError, ServiceLog, local_clock, one_line
from postroom.logs.masking import mask_arguments

__all__ = [
    "DEFAULT_W3C_FIELDS",
    "W3C_FIELDS",
    "W3CEntry",
    "W3CLog",
    "W3CRollover",
    "parse_w3c_fields",
]

#: Every field a W3C log can carry, with what it holds for a mail service.
W3C_FIELDS: dict[str, str] = {
    "date": "date of the command (UTC, YYYY-MM-DD)",
    "time": "time of the command (UTC, HH:MM:SS)",
    "c-ip": "client (remote) IP address",
    "cs-username": "authenticated user name, once logged in",
    "s-sitename": "service name (SMTP, POP, IMAP)",
    "s-computername": "this server's host name",
    "s-ip": "server IP address the client connected to",
    "s-port": "server port the client connected to",
    "cs-method": "command (EHLO, MAIL, RCPT, RETR, FETCH ...)",
    "cs-uri-stem": "reply text",
    "cs-uri-query": "command arguments (credentials masked)",
    "sc-status": "reply code (250, 550; +OK/-ERR, OK/NO/BAD)",
    "sc-win32-status": "operating system error number, 0 when none",
    "sc-bytes": "bytes sent to the client",
    "cs-bytes": "bytes received from the client",
    "time-taken": "time the command took, in milliseconds",
    "cs-version": "protocol (SMTP, ESMTP, POP3, IMAP4rev1 ...)",
    "cs-host": "host name the client gave (HELO/EHLO name)",
    "cs(User-Agent)": "client software, when the client names it (IMAP ID)",
    "cs(Cookie)": "always - (no cookies in mail protocols)",
    "cs(Referer)": "always - (no referrer in mail protocols)",
}

#: The default of ``smtp.logging.w3c_fields`` and ``pop3.logging.w3c_fields``.
DEFAULT_W3C_FIELDS: tuple[str, ...] = (
    "date",
    "time",
    "c-ip",
    "cs-username",
    "cs-method",
    "cs-uri-query",
    "sc-status",
    "sc-bytes",
    "cs-bytes",
)

_ATTRIBUTE = {
    name: name.replace("-", "_").replace("(", "_").replace(")", "").lower() for name in W3C_FIELDS
}


class W3CRollover(enum.StrEnum):
    """How often a new W3C file starts (``smtp.logging.w3c_rollover``)."""

    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"

    def file_name(self, when: datetime) -> str:
        if self is W3CRollover.HOURLY:
            return f"ex{when:%y%m%d%H}.log"
        if self is W3CRollover.WEEKLY:
            return f"ex{when:%y%m}{(when.day - 1) // 7 + 1:02d}.log"
        if self is W3CRollover.MONTHLY:
            return f"ex{when:%y%m}.log"
        return f"ex{when:%y%m%d}.log"


def parse_w3c_fields(fields: Iterable[str] | str) -> tuple[str, ...]:
    """Check a field selection (list, or space/comma separated text); raise naming the bad one."""
    if isinstance(fields, str):
        fields = fields.replace(",", " ").split()
    chosen: list[str] = []
    lower = {name.lower(): name for name in W3C_FIELDS}
    for field in fields:
        name = lower.get(field.strip().lower())
        if name is None:
            raise LogNameError(
                "w3c_fields",
                f"unknown W3C field {field!r}; known fields: {' '.join(W3C_FIELDS)}",
            )
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise LogNameError("w3c_fields", "choose at least one field")
    return tuple(chosen)


@dataclasses.dataclass(slots=True)
class W3CEntry:
    """One W3C line's values; ``date``/``time``/``s-sitename`` are filled by the log."""

    c_ip: str = ""
    cs_username: str = ""
    s_computername: str = ""
    s_ip: str = ""
    s_port: int | None = None
    cs_method: str = ""
    cs_uri_query: str = ""
    cs_uri_stem: str = ""
    sc_status: int | str = ""
    sc_win32_status: int = 0
    sc_bytes: int = 0
    cs_bytes: int = 0
    time_taken: int = 0
    cs_version: str = ""
    cs_host: str = ""
    cs_user_agent: str = ""
    cs_cookie: str = ""
    cs_referer: str = ""
    masked: bool = False
    """``cs_uri_query`` has been through ``mask_arguments`` already (the caller wrote
    the same arguments to the activity log): not masked a second time."""


_OWN_FIELDS = {"date": "stamp[0]", "time": "stamp[1]", "s-sitename": "service"}
"""Fields the compiled line formatter takes from its own arguments, not the entry."""


def _w3c_value(value: object) -> str:
    if value is None:
        return "-"
    text = value if type(value) is str else str(value)
    if not text:
        return "-"
    if text.isascii() and text.isprintable() and " " not in text and "\\" not in text:
        return text          # the common case: nothing to escape
    return one_line(text).replace(" ", "+")


class W3CLog(ServiceLog):
    """``W3CLog("SMTP", DIR/logs/SMTP, fields=[...]).write(W3CEntry(c_ip=..., ...))``."""

    def __init__(
        self,
        service: str,
        directory: Path,
        *,
        fields: Iterable[str] | str = DEFAULT_W3C_FIELDS,
        rollover: W3CRollover | str = W3CRollover.DAILY,
        enabled: bool = True,
        clock: Clock = local_clock,
    ) -> None:
        self._fields = parse_w3c_fields(fields)
        self._rollover = self._parse_rollover(rollover)
        self._fields_changed = False
        self._computer = socket.gethostname()
        self._stamps: tuple[datetime | None, tuple[str, str]] = (None, ("", ""))
        self._formatter: tuple[tuple[str, ...], Any] | None = None
        super().__init__(service, directory, enabled=enabled, clock=clock)

    @staticmethod
    def _parse_rollover(rollover: W3CRollover | str) -> W3CRollover:
        try:
            return W3CRollover(str(rollover).lower())
        except ValueError:
            choices = ", ".join(item.value for item in W3CRollover)
            raise LogNameError("w3c_rollover", f"{rollover!r} is not one of {choices}") from None

    def _open_file(self) -> DailyLogFile:
        return DailyLogFile(self.directory, self.file_name, header=self._header)

    @property
    def fields(self) -> tuple[str, ...]:
        return self._fields

    @fields.setter
    def fields(self, value: Iterable[str] | str) -> None:
        chosen = parse_w3c_fields(value)
        if chosen != self._fields:
            self._fields = chosen
            self._fields_changed = True

    @property
    def rollover(self) -> W3CRollover:
        return self._rollover

    @rollover.setter
    def rollover(self, value: W3CRollover | str) -> None:
        self._rollover = self._parse_rollover(value)
        self._file.forget_name()

    def file_name(self, when: datetime) -> str:
        return self._rollover.file_name(when.astimezone(UTC))

    def _directives(self, when: datetime) -> str:
        return (
            f"#Date: {when.astimezone(UTC):%Y-%m-%d %H:%M:%S}\n#Fields: {' '.join(self._fields)}\n"
        )

    def _header(self, when: datetime) -> str:
        return f"#Software: Postroom {__version__}\n#Version: 1.0\n" + self._directives(when)

    def _stamp(self, when: datetime) -> tuple[str, str]:
        """(date, time) of ``when`` in UTC, cached for the last ``datetime`` seen."""
        cached = self._stamps
        if cached[0] is when:
            return cached[1]
        utc = when.astimezone(UTC)
        stamp = (f"{utc:%Y-%m-%d}", f"{utc:%H:%M:%S}")
        self._stamps = (when, stamp)
        return stamp

    def format(self, entry: W3CEntry, when: datetime) -> str:
        """The line ``entry`` becomes at ``when`` (without newline)."""
        compiled = self._formatter
        if compiled is None or compiled[0] is not self._fields:
            compiled = self._formatter = (self._fields, self._compile(self._fields))
        return compiled[1](entry, self._stamp(when))

    def _compile(self, fields: tuple[str, ...]) -> Callable[[W3CEntry, tuple[str, str]], str]:
        """One function that formats a whole line for the chosen fields.

        The SMTP service writes a W3C line per command, so the field list is turned
        once into a single expression (as ``collections.namedtuple`` builds its
        methods) instead of being walked field by field for every line. The source is
        built only from our own field table, never from configured text.
        """
        slow: list[str] = []        # every value through value(): escapes what needs it
        fast: list[str] = []        # plain text as it is; the line is checked once
        types = {f.name: str(f.type) for f in dataclasses.fields(W3CEntry)}
        for name in fields:
            if name in _OWN_FIELDS:        # ours, never escaped
                slow.append(_OWN_FIELDS[name])
                fast.append(_OWN_FIELDS[name])
                continue
            if name == "s-computername":
                expression, kind = "(e.s_computername or computer)", "str"
            elif name == "cs-uri-query":
                expression = "(e.cs_uri_query if e.masked else mask(e.cs_method, e.cs_uri_query))"
                kind = "str"
            else:
                attribute = _ATTRIBUTE[name]
                if not attribute.isidentifier():
                    raise LogNameError("w3c_fields", f"unknown field {name!r}")
                expression, kind = f"e.{attribute}", types.get(attribute, "")
            slow.append(f"value({expression})")
            fast.append(f"({expression} or '-')" if kind == "str"
                        else f"str({expression})" if kind == "int"
                        else f"(str({expression}) or '-')" if kind == "int | str"
                        else f"value({expression})")
        # The fast line is right when it is printable ASCII with no backslash and only
        # the separators as spaces: then every value would have passed value() as it
        # is. Otherwise (or a value of an unexpected type) the slow line is made.
        source = ("def slow(e, stamp):\n"
                  f"    return ' '.join(({', '.join(slow)},))\n"
                  "def line(e, stamp):\n"
                  "    try:\n"
                  f"        text = ' '.join(({', '.join(fast)},))\n"
                  "    except TypeError:\n"
                  "        return slow(e, stamp)\n"
                  f"    if text.count(' ') == {len(fields) - 1} and text.isascii() \\\n"
                  "            and text.isprintable() and '\\\\' not in text:\n"
                  "        return text\n"
                  "    return slow(e, stamp)\n")
        namespace: dict[str, Any] = {"value": _w3c_value, "mask": mask_arguments,
                                     "service": self.service,
                                     "computer": self._computer}
        exec(source, namespace)      # source built from our own field table only
        return namespace["line"]  # type: ignore[no-any-return]

    def write(self, entry: W3CEntry) -> None:
        """Append one line; does nothing while the log is disabled."""
        record = self.record(entry)
        if record is not None:
            self.write_record(record)

    def record(self, entry: W3CEntry) -> tuple[datetime, str] | None:
        """``(time, text)`` :meth:`write` would append (for a
        :class:`~postroom.logs.files.LogBuffer`); None while the log is disabled."""
        if not self._enabled:
            return None
        when = self.clock()
        return when, self.line(entry, when)

    def line(self, entry: W3CEntry, when: datetime) -> str:
        """The text :meth:`record` gives ``entry`` at ``when``: the line and its newline,
        after new ``#Date``/``#Fields`` directives if the field list just changed."""
        line = self.format(entry, when) + "\n"
        if self._fields_changed:
            self._fields_changed = False
            if self.path_for(when).exists():
                line = self._directives(when) + line
        return line
