"""What one SMTP session writes to the service logs (manual 6.2.3.10, 9.2, 9.4).

Each command answered gives one activity line (manual 9.4 columns), one W3C line and
two debug transcript lines (the command as the client sent it, our reply). The
protocol core hands us typed events, not raw lines, so :func:`describe` writes the
command back in its wire form; AUTH exchanges are written masked (``AUTH PLAIN
****``, SASL answers ``****``) and never carry the client's bytes.

A session's transcript is *buffered* (``buffered=True``): lines are formatted when
the command is answered (their time stamps are right) but written with one
``write()`` per log when the session calls :meth:`Transcript.flush` (at its end,
before its last reply goes out, so a client that saw ``221`` finds its lines in the
files) or at the latest :data:`FLUSH_AFTER` seconds after the first unwritten line
(a timer, for long sessions). Three ``write()`` calls per command were the largest
cost of the accept path after the socket itself.

Untrusted input: every argument shown came from the client; the log classes escape
control characters so a client cannot forge lines or columns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime

from postroom.connectors.smtp import events as ev
from postroom.connectors.smtp.wire import Reply
from postroom.logs import ServiceLogs, W3CEntry
from postroom.logs.files import LogBuffer
from postroom.logs.masking import SecretMasker

MASK = "****"
FLUSH_AFTER = 1.0


def _params(params: Mapping[str, str | None]) -> str:
    return "".join(f" {k}" if v is None else f" {k}={v}" for k, v in params.items())


def describe(event: ev.Event | None) -> tuple[str, str]:
    """``(command, arguments)`` of an event, credentials masked."""
    match event:
        case ev.Ehlo(name=name):
            return "EHLO", name
        case ev.Helo(name=name):
            return "HELO", name
        case ev.MailFrom():
            return "MAIL", f"FROM:<{event.path.raw}>{_params(event.params)}"
        case ev.RcptTo():
            return "RCPT", f"TO:<{event.path.raw}>{_params(event.params)}"
        case ev.DataStart():
            return "DATA", ""
        case ev.DataEnd(size=size):
            return "DATA", f"{size} octets"
        case ev.BdatEnd(size=size, last=last):
            return "BDAT", f"{size}{' LAST' if last else ''}"
        case ev.AuthStart(mechanism=mechanism, initial_response=initial):
            return "AUTH", mechanism + (f" {MASK}" if initial is not None else "")
        case ev.AuthResponse():
            return MASK, ""
        case ev.AuthCancelled():
            return "*", ""
        case ev.Help(topic=topic):
            return "HELP", topic or ""
        case ev.Vrfy(arg=arg):
            return "VRFY", arg
        case ev.Expn(arg=arg):
            return "EXPN", arg
        case None:
            return "", ""
    name = type(event).__name__.upper()
    return {"STARTTLS": "STARTTLS"}.get(name, name), ""


class Transcript:
    """The log writer of one connection (buffered: see the module docstring)."""

    def __init__(self, logs: ServiceLogs, connection_id: int, client_ip: str, server_ip: str,
                 server_port: int, *, buffered: bool = False,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.logs = logs
        self.connection_id = connection_id
        self.client_ip = client_ip
        self.server_ip = server_ip
        self.server_port = server_port
        self.masker = SecretMasker()
        self.username = ""
        self.helo = ""
        self.message_id = ""
        self._buffers: tuple[LogBuffer, LogBuffer, LogBuffer] | None = (
            (LogBuffer(logs.debug), LogBuffer(logs.w3c), LogBuffer(logs.activity))
            if buffered else None)
        self._timer: asyncio.TimerHandle | None = None
        self._loop = loop

    def command(self, event: ev.Event | None, reply: Reply, sent: int, received: int) -> None:
        logs = self.logs
        activity, w3c, debug = logs.activity, logs.w3c, logs.debug
        if not (activity.enabled or w3c.enabled or debug.enabled):
            return
        command, args = describe(event)
        first = reply.lines[-1]
        text = f"{reply.code} {reply.enhanced + ' ' if reply.enhanced else ''}{first}"
        if activity.enabled:
            self._put(2, activity.record(
                connection_id=self.connection_id, remote_ip=self.client_ip, command=command,
                parameters=args, response=text, bytes_sent=sent, bytes_received=received,
                message_id=self.message_id))
        if w3c.enabled:
            self._put(1, w3c.record(W3CEntry(
                c_ip=self.client_ip, cs_username=self.username, s_ip=self.server_ip,
                s_port=self.server_port, cs_method=command, cs_uri_query=args,
                cs_uri_stem=first, sc_status=reply.code, sc_bytes=sent, cs_bytes=received,
                cs_version="ESMTP", cs_host=self.helo)))
        if debug.enabled:
            line = f"{command} {args}".rstrip() if command else "(unrecognised command)"
            if isinstance(event, ev.AuthResponse):
                line = MASK
            self._put(0, debug.record(line, connection_id=self.connection_id,
                                      masker=self.masker))
            self._put(0, debug.record(text, connection_id=self.connection_id,
                                      masker=self.masker, from_client=False))

    def note(self, text: str) -> None:
        """A debug line in words: what we decided and why."""
        if self.logs.debug.enabled:
            self._put(0, self.logs.debug.record(text, connection_id=self.connection_id))

    def server_line(self, reply: Reply, what: str) -> None:
        """A reply that answers no command (greeting, timeout, drop)."""
        self.command(None, reply, 0, 0)
        self.note(what)

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
