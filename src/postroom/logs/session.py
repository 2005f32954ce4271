"""The log writer of one client connection, shared by SMTP, POP3 and IMAP.

Each command answered gives one activity line (manual 9.4 columns), one W3C line and
two debug lines (the command as the client sent it, our reply); notes in words go to
the debug log. The services differ only in how they describe a command and what their
W3C status and version columns hold, so they subclass :class:`SessionTranscript` for
that and share the writing here.

Lines are *buffered* per connection (``buffered=True``): formatted when the command
is answered (their time stamps are right) but written with one ``write()`` per log by
:meth:`SessionTranscript.flush` (at the end of the session, before its last reply goes
out) or at the latest :data:`FLUSH_AFTER` seconds after the first unwritten line (a
timer, for long sessions). Three ``write()`` calls per command were the largest cost
of the SMTP accept path after the socket itself.

Untrusted input: every argument shown came from the client; the log classes escape
control characters so a client cannot forge lines or columns, and the
:class:`~postroom.logs.masking.SecretMasker` hides credentials.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from postroom.logs import ServiceLogs, W3CEntry
from postroom.logs.files import LogBuffer
from postroom.logs.masking import SecretMasker, mask_arguments

FLUSH_AFTER = 1.0
DEBUG, W3C, ACTIVITY = 0, 1, 2


class SessionTranscript:
    """Buffered activity, W3C and debug lines of one connection."""

    def __init__(self, logs: ServiceLogs, connection_id: int, client_ip: str, server_ip: str,
                 server_port: int, *, buffered: bool = True,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.logs = logs
        self.connection_id = connection_id
        self.client_ip = client_ip
        self.server_ip = server_ip
        self.server_port = server_port
        self.masker = SecretMasker()
        self.username = ""
        self._buffers: tuple[LogBuffer, LogBuffer, LogBuffer] | None = (
            (LogBuffer(logs.debug), LogBuffer(logs.w3c), LogBuffer(logs.activity))
            if buffered else None)
        # One W3C entry per session: its fixed fields set once, the others per command
        # (attribute stores cost a fraction of building a twenty-field entry each time).
        self._w3c_entry = W3CEntry(c_ip=client_ip, s_ip=server_ip, s_port=server_port,
                                   masked=True)
        self._timer: asyncio.TimerHandle | None = None
        self._loop = loop

    def write_command(self, command: str, args: str, reply: str, *, w3c_status: int | str,
                      w3c_stem: str, version: str, sent: int, received: int,
                      host: str = "", message_id: str = "", debug_line: str | None = None,
                      ) -> None:
        """The three logs' lines for one answered command (``reply``: our status line)."""
        logs = self.logs
        activity, w3c, debug = logs.activity, logs.w3c, logs.debug
        to_activity, to_w3c, to_debug = activity.enabled, w3c.enabled, debug.enabled
        if not (to_activity or to_w3c or to_debug):
            return
        when = (activity if to_activity else w3c if to_w3c else debug).clock()  # one time
        if to_activity or to_w3c:
            shown = mask_arguments(command, args)       # once, for both logs
            if to_activity:
                self._add(ACTIVITY, when, activity.line(
                    when, message_id, self.connection_id, self.client_ip, command, shown,
                    reply, sent, received))
            if to_w3c:
                entry = self._w3c_entry
                entry.cs_username = self.username
                entry.cs_method = command
                entry.cs_uri_query = shown
                entry.cs_uri_stem = w3c_stem
                entry.sc_status = w3c_status
                entry.sc_bytes = sent
                entry.cs_bytes = received
                entry.cs_version = version
                entry.cs_host = host
                self._add(W3C, when, w3c.line(entry, when))
        if to_debug:
            if debug_line is None:
                debug_line = f"{command} {args}".rstrip() if command else \
                    "(unrecognised command)"
            self._add(DEBUG, when, debug.exchange(when, self.connection_id, debug_line, reply,
                                                  self.masker))

    def any_enabled(self) -> bool:
        logs = self.logs
        return logs.activity.enabled or logs.w3c.enabled or logs.debug.enabled

    def note(self, text: str) -> None:
        """A debug line in words: what we decided and why."""
        if self.logs.debug.enabled:
            self._put(DEBUG, self.logs.debug.record(text, connection_id=self.connection_id))

    def _put(self, which: int, record: tuple[datetime, str] | None) -> None:
        if record is not None:
            self._add(which, *record)

    def _add(self, which: int, when: datetime, text: str) -> None:
        buffers = self._buffers
        if buffers is None:
            (self.logs.debug, self.logs.w3c, self.logs.activity)[which].write_record(
                (when, text))
            return
        buffers[which].add(when, text)
        if self._timer is None:
            loop = self._loop or asyncio.get_running_loop()
            self._timer = loop.call_later(FLUSH_AFTER, self.flush)

    def flush(self) -> None:
        """Write the buffered lines: debug and W3C first, the activity log last."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._buffers is not None:
            for buffer in self._buffers:
                if buffer:
                    buffer.flush()
