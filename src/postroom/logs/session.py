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
        self._timer: asyncio.TimerHandle | None = None
        self._loop = loop

    def write_command(self, command: str, args: str, reply: str, *, w3c_status: int | str,
                      w3c_stem: str, version: str, sent: int, received: int,
                      host: str = "", message_id: str = "", debug_line: str | None = None,
                      ) -> None:
        """The three logs' lines for one answered command (``reply``: our status line)."""
        logs = self.logs
        activity, w3c, debug = logs.activity, logs.w3c, logs.debug
        shown = mask_arguments(command, args)       # once, for both logs
        if activity.enabled:
            self._put(ACTIVITY, activity.record(
                connection_id=self.connection_id, remote_ip=self.client_ip, command=command,
                parameters=shown, response=reply, bytes_sent=sent, bytes_received=received,
                message_id=message_id, masked=True))
        if w3c.enabled:
            self._put(W3C, w3c.record(W3CEntry(
                c_ip=self.client_ip, cs_username=self.username, s_ip=self.server_ip,
                s_port=self.server_port, cs_method=command, cs_uri_query=shown,
                cs_uri_stem=w3c_stem, sc_status=w3c_status, sc_bytes=sent, cs_bytes=received,
                cs_version=version, cs_host=host, masked=True)))
        if debug.enabled:
            if debug_line is None:
                debug_line = f"{command} {args}".rstrip() if command else \
                    "(unrecognised command)"
            self._put(DEBUG, debug.record(debug_line, connection_id=self.connection_id,
                                          masker=self.masker))
            self._put(DEBUG, debug.record(reply, connection_id=self.connection_id,
                                          masker=self.masker, from_client=False))

    def any_enabled(self) -> bool:
        logs = self.logs
        return logs.activity.enabled or logs.w3c.enabled or logs.debug.enabled

    def note(self, text: str) -> None:
        """A debug line in words: what we decided and why."""
        if self.logs.debug.enabled:
            self._put(DEBUG, self.logs.debug.record(text, connection_id=self.connection_id))

    def _put(self, which: int, record: tuple[datetime, str] | None) -> None:
        if record is None:
            return
        if self._buffers is None:
            (self.logs.debug, self.logs.w3c, self.logs.activity)[which].write_record(record)
            return
        self._buffers[which].add(*record)
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
