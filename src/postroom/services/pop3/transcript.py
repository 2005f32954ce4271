"""What one POP3 session writes to the service logs (manual 6.3.4.4, 9.2, 9.4).

Each command answered gives one activity line (the manual 9.4 columns), one W3C line
(fields from ``pop3.logging.w3c_fields``) and two debug lines (the command as the
client sent it, our status line); the debug log also gets notes in words (why a login
failed, what UPDATE removed). Credentials never reach a file: PASS and APOP arguments
and SASL answers are written as ``****``.

Lines are buffered per session and written with one ``write()`` per log at the end of
the session or at most :data:`FLUSH_AFTER` seconds after the first unwritten line, as
SMTP does (a POP3 client downloading 500 messages answers 1,000 commands).

Untrusted input: every argument shown came from the client; the log classes escape
control characters so a client cannot forge lines or columns.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from postroom.logs import ServiceLogs, W3CEntry
from postroom.logs.files import LogBuffer
from postroom.logs.masking import SecretMasker
from postroom.services.pop3 import commands as cmd
from postroom.services.pop3.wire import Reply

MASK = "****"
FLUSH_AFTER = 1.0


def describe(event: cmd.Command | None) -> tuple[str, str]:
    """``(command, arguments)`` as logged, credentials masked."""
    match event:
        case None:
            return "", ""
        case cmd.User(username=name):
            return "USER", name
        case cmd.Pass():
            return "PASS", MASK
        case cmd.Apop(username=name):
            return "APOP", f"{name} {MASK}"
        case cmd.Auth(mechanism=mechanism, initial_response=initial):
            return "AUTH", (mechanism or "") + (f" {MASK}" if initial is not None else "")
        case cmd.AuthResponse():
            return MASK, ""
        case cmd.AuthCancelled():
            return "*", ""
        case cmd.List(msg=msg) | cmd.Uidl(msg=msg):
            return event.name, "" if msg is None else str(msg)
        case cmd.Retr(msg=msg) | cmd.Dele(msg=msg):
            return event.name, str(msg)
        case cmd.Top(msg=msg, lines=lines):
            return "TOP", f"{msg} {lines}"
    return event.name, ""


class Transcript:
    """The log writer of one connection."""

    def __init__(self, logs: ServiceLogs, connection_id: int, client_ip: str, server_ip: str,
                 server_port: int) -> None:
        self.logs = logs
        self.connection_id = connection_id
        self.client_ip = client_ip
        self.server_ip = server_ip
        self.server_port = server_port
        self.username = ""
        self.masker = SecretMasker()
        self._buffers = (LogBuffer(logs.debug), LogBuffer(logs.w3c), LogBuffer(logs.activity))
        self._timer: asyncio.TimerHandle | None = None

    def command(self, event: cmd.Command | None, reply: Reply, sent: int,
                received: int) -> None:
        logs = self.logs
        activity, w3c, debug = logs.activity, logs.w3c, logs.debug
        if not (activity.enabled or w3c.enabled or debug.enabled):
            return
        command, args = describe(event)
        status = reply.line
        if activity.enabled:
            self._put(2, activity.record(
                connection_id=self.connection_id, remote_ip=self.client_ip, command=command,
                parameters=args, response=status, bytes_sent=sent, bytes_received=received))
        if w3c.enabled:
            self._put(1, w3c.record(W3CEntry(
                c_ip=self.client_ip, cs_username=self.username, s_ip=self.server_ip,
                s_port=self.server_port, cs_method=command, cs_uri_query=args,
                cs_uri_stem=status, sc_status="+OK" if reply.ok else "-ERR", sc_bytes=sent,
                cs_bytes=received, cs_version="POP3")))
        if debug.enabled:
            line = f"{command} {args}".rstrip() if command else "(unrecognised command)"
            self._put(0, debug.record(line, connection_id=self.connection_id,
                                      masker=self.masker))
            self._put(0, debug.record(status, connection_id=self.connection_id,
                                      masker=self.masker, from_client=False))

    def note(self, text: str) -> None:
        """A debug line in words: what we decided and why."""
        if self.logs.debug.enabled:
            self._put(0, self.logs.debug.record(text, connection_id=self.connection_id))

    def server_line(self, reply: Reply, what: str) -> None:
        """A status line that answers no command (greeting, refusal, timeout)."""
        self.command(None, reply, 0, 0)
        self.note(what)

    def _put(self, which: int, record: tuple[datetime, str] | None) -> None:
        if record is None:
            return
        self._buffers[which].add(*record)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_AFTER, self.flush)

    def flush(self) -> None:
        """Write the buffered lines: debug and W3C first, the activity log last."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for buffer in self._buffers:
            if buffer:
                buffer.flush()
