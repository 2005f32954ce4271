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
files) or at the latest :data:`~postroom.logs.session.FLUSH_AFTER` seconds after the
first unwritten line (a timer, for long sessions). The buffering and writing live
in :mod:`postroom.logs.session`, shared with POP3 and IMAP.

Untrusted input: every argument shown came from the client; the log classes escape
control characters so a client cannot forge lines or columns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from postroom.connectors.smtp import events as ev
from postroom.connectors.smtp.wire import Reply
from postroom.logs import ServiceLogs
from postroom.logs.session import SessionTranscript

MASK = "****"


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


class Transcript(SessionTranscript):
    """The log writer of one SMTP connection (see :mod:`postroom.logs.session`)."""

    def __init__(self, logs: ServiceLogs, connection_id: int, client_ip: str, server_ip: str,
                 server_port: int, *, buffered: bool = False,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(logs, connection_id, client_ip, server_ip, server_port,
                         buffered=buffered, loop=loop)
        self.helo = ""
        self.message_id = ""

    def command(self, event: ev.Event | None, reply: Reply, sent: int, received: int) -> None:
        if not self.any_enabled():
            return
        command, args = describe(event)
        first = reply.lines[-1]
        text = f"{reply.code} {reply.enhanced + ' ' if reply.enhanced else ''}{first}"
        self.write_command(command, args, text, w3c_status=reply.code, w3c_stem=first,
                           version="ESMTP", sent=sent, received=received, host=self.helo,
                           message_id=self.message_id,
                           debug_line=MASK if isinstance(event, ev.AuthResponse) else None)

    def server_line(self, reply: Reply, what: str) -> None:
        """A reply that answers no command (greeting, timeout, drop)."""
        self.command(None, reply, 0, 0)
        self.note(what)
