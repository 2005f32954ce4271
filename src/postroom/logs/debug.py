"""The debug log: what a service was doing and why, in words, per connection.

Manual 9.4: the debug log holds "wordy" explanations of significant actions
(why a relay was refused, which MX was tried, DNS failures), time-stamped so an
administrator can match them with the activity log's lines of the same time and
connection.  File name ``<SERVICE>-Debug-YYMMDD.log`` (``SMTP-Debug-260125.log``),
one line per message::

    MM/DD/YY HH:MM:SS<TAB><connection id or ->  <TAB>text

A message of several lines is written as several lines with the same time and
connection, in one write so no other writer's line lands in between.

Switched per service by ``smtp.logging.debug_enabled``, ``pop3.logging.
debug_enabled``, ``imap.logging.debug_enabled``, ``management.logging.
debug_enabled`` ... (manual 6.2.3.10, 6.3.1.2.1, 6.3.3.3, 6.3.4.4).

Untrusted input: services quote client commands here.  Every line passes
through :func:`mask_secrets` (credentials) and control characters are escaped;
a service that logs a whole dialogue uses one :class:`SecretMasker` per
session (``DebugLog.session_masker()``) so SASL responses are hidden too.
"""

from __future__ import annotations

from datetime import datetime

from postroom.logs.activity import format_timestamp
from postroom.logs.files import DailyLogFile, ServiceLog, one_line
from postroom.logs.masking import SecretMasker, mask_secrets

__all__ = ["DebugLog", "SecretMasker", "mask_secrets"]


class DebugLog(ServiceLog):
    """``DebugLog("SMTP", DIR/logs/SMTP).write("Relay denied for 192.0.2.7", connection_id=7)``."""

    def _open_file(self) -> DailyLogFile:
        return DailyLogFile(self.directory, self.file_name)

    def file_name(self, when: datetime) -> str:
        return f"{self.service}-Debug-{when:%y%m%d}.log"

    def write(
        self,
        text: str,
        *,
        connection_id: int | str | None = None,
        masker: SecretMasker | None = None,
        from_client: bool = True,
    ) -> None:
        """Append ``text`` (masked); does nothing while the log is disabled.

        With ``masker`` the text is a transcript line of one session, and
        ``from_client`` says who sent it.
        """
        record = self.record(text, connection_id=connection_id, masker=masker,
                             from_client=from_client)
        if record is not None:
            self.write_record(record)

    def record(
        self,
        text: str,
        *,
        connection_id: int | str | None = None,
        masker: SecretMasker | None = None,
        from_client: bool = True,
    ) -> tuple[datetime, str] | None:
        """``(time, lines)`` :meth:`write` would append (for a
        :class:`~postroom.logs.files.LogBuffer`); None while the log is disabled."""
        if not self._enabled:
            return None
        when = self.clock()
        prefix = f"{format_timestamp(when)}\t{'-' if connection_id is None else connection_id}\t"
        return when, "".join(_lines(prefix, text, masker, from_client))

    def exchange(self, when: datetime, connection_id: int | str, command: str, reply: str,
                 masker: SecretMasker) -> str:
        """The transcript lines of one answered command, the client's then ours, as two
        :meth:`record` calls with ``masker`` would give them, time ``when``.

        One call per command for the sessions (SMTP, POP3, IMAP), whose debug log is on
        by default: one time stamp, one prefix, no keyword arguments."""
        prefix = f"{format_timestamp(when)}\t{connection_id}\t"
        return "".join(_lines(prefix, command, masker, True)
                       + _lines(prefix, reply, masker, False))

    @staticmethod
    def session_masker() -> SecretMasker:
        """A fresh masker for one connection's transcript."""
        return SecretMasker()


def _lines(prefix: str, text: str, masker: SecretMasker | None,
           from_client: bool) -> list[str]:
    """``text`` as log lines after ``prefix``: one per line of it, credentials masked
    (by the session's ``masker`` when there is one), control characters escaped."""
    out = []
    for line in text.splitlines() or [""]:
        line = mask_secrets(line) if masker is None else \
            masker.mask(line, from_client=from_client)
        out.append(prefix + one_line(line) + "\n")
    return out
