"""The activity log: one tab-separated line per command a service exchanged.

Manual 9.4 ("How to import the activity log into Microsoft Excel") fixes the
file name, ``<SERVICE>-Activity-YYMMDD.log`` (e.g. ``SMTP-Activity-260125.log``),
and the columns, in this order, separated by tabs:

====  ==============================================================
A     transaction date and time (``MM/DD/YY HH:MM:SS``, the log clock)
B     transaction type: ``SMTP-IN`` (a client talked to us) or ``SMTP-OU``
      (we talked to a remote server), ``POP-IN``, ``IMAP-IN`` ...
C     message ID / message file name (to follow a message through the MTA)
D     the connection's number (the manual's "internal socket number")
E     the remote host's IP address
F     the command
G     the command's details (its arguments)
H     the response sent (or received, for outbound transactions)
I     bytes sent while executing the command
J     bytes received while executing the command
====  ==============================================================

Switched per service by ``smtp.logging.activity_enabled``,
``pop3.logging.activity_enabled``, ``imap.logging.activity_enabled``,
``mta.logging.activity_enabled`` ... (manual 6.2.3.10, 6.3.3.3, 6.3.4.4).

Untrusted input: commands, arguments and responses are the client's text.
Credentials are masked (:mod:`postroom.logs.masking`), and control characters
escaped (:func:`postroom.logs.files.one_line`) so that each record stays one
line of exactly ten columns.  A caller in the middle of a SASL exchange passes
``secret=True``: those lines look like any base64 word.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime

from postroom.logs.files import DailyLogFile, ServiceLog, one_line
from postroom.logs.masking import MASK, mask_arguments

__all__ = ["ACTIVITY_COLUMNS", "ActivityLog", "Direction", "format_timestamp"]

ACTIVITY_COLUMNS = (
    "date_time",
    "transaction_type",
    "message_id",
    "connection_id",
    "remote_ip",
    "command",
    "parameters",
    "response",
    "bytes_sent",
    "bytes_received",
)


class Direction(enum.StrEnum):
    """Inbound (``-IN``: a remote client talks to us) or outbound (``-OU``)."""

    IN = "IN"
    OUT = "OU"


_stamp: tuple[datetime | None, str] = (None, "")


def format_timestamp(when: datetime) -> str:
    """The manual's log time stamp, ``MM/DD/YY HH:MM:SS`` (as in its 9.3 banner)."""
    global _stamp
    cached = _stamp
    if cached[0] is when:
        return cached[1]
    text = when.strftime("%m/%d/%y %H:%M:%S")
    _stamp = (when, text)
    return text


_DIRECTIONS = {item.value: item.value for item in Direction}
"""Column text of a direction, for a ``Direction`` or its value (one lookup per line)."""


# Control characters other than the column separator, and the backslash: a line
# without any of them needs no escaping (see ``one_line``).
_NEEDS_ESCAPE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\\]")


class ActivityLog(ServiceLog):
    """``ActivityLog("SMTP", DIR/logs/SMTP).write(connection_id=7, remote_ip=..., ...)``."""

    def _open_file(self) -> DailyLogFile:
        return DailyLogFile(self.directory, self.file_name)

    def file_name(self, when: datetime) -> str:
        return f"{self.service}-Activity-{when:%y%m%d}.log"

    def write(
        self,
        *,
        connection_id: int | str,
        remote_ip: str,
        command: str,
        parameters: str = "",
        response: str = "",
        bytes_sent: int = 0,
        bytes_received: int = 0,
        message_id: str = "",
        direction: Direction = Direction.IN,
        secret: bool = False,
    ) -> None:
        """Append one record; does nothing while the log is disabled."""
        record = self.record(connection_id=connection_id, remote_ip=remote_ip, command=command,
                             parameters=parameters, response=response, bytes_sent=bytes_sent,
                             bytes_received=bytes_received, message_id=message_id,
                             direction=direction, secret=secret)
        if record is not None:
            self.write_record(record)

    def record(
        self,
        *,
        connection_id: int | str,
        remote_ip: str,
        command: str,
        parameters: str = "",
        response: str = "",
        bytes_sent: int = 0,
        bytes_received: int = 0,
        message_id: str = "",
        direction: Direction = Direction.IN,
        secret: bool = False,
        masked: bool = False,
    ) -> tuple[datetime, str] | None:
        """``(time, line)`` of one record as :meth:`write` would append it (for a
        :class:`~postroom.logs.files.LogBuffer`); None while the log is disabled."""
        if not self._enabled:
            return None
        when = self.clock()
        if masked:
            shown = parameters
        else:
            shown = MASK if secret and parameters else mask_arguments(command, parameters)
        if secret and not parameters and command:
            command = MASK
        return when, self.line(when, message_id, connection_id, remote_ip, command, shown,
                               response, bytes_sent, bytes_received, direction)

    def line(self, when: datetime, message_id: str, connection_id: int | str,
             remote_ip: str, command: str, shown: str, response: str, bytes_sent: int,
             bytes_received: int, direction: Direction = Direction.IN) -> str:
        """One record's text (with its newline), arguments already masked.

        Positional, for the sessions' per-command path: called for every command
        answered, where keyword arguments and the masking decisions of :meth:`record`
        cost more than the formatting itself."""
        fields = (
            format_timestamp(when),
            f"{self.service}-{_DIRECTIONS[direction]}",
            message_id,
            str(connection_id),
            remote_ip,
            command,
            shown,
            response,
            str(int(bytes_sent)),
            str(int(bytes_received)),
        )
        line = "\t".join(fields)
        if line.count("\t") != len(fields) - 1 or _NEEDS_ESCAPE.search(line):
            line = "\t".join(one_line(field) for field in fields)
        return line + "\n"
