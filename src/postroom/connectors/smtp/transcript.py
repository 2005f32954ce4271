"""What one SMTP session writes to the service logs (manual 6.2.3.10, 9.2, 9.4).

Each command answered gives one activity line (manual 9.4 columns), one W3C line and
two debug transcript lines (the command as the client sent it, our reply). The
protocol core hands us typed events, not raw lines, so :func:`describe` writes the
command back in its wire form; AUTH exchanges are written masked (``AUTH PLAIN
****``, SASL answers ``****``) and never carry the client's bytes.

Untrusted input: every argument shown came from the client; the log classes escape
control characters so a client cannot forge lines or columns.
"""

from __future__ import annotations

from collections.abc import Mapping

from postroom.connectors.smtp import events as ev
from postroom.connectors.smtp.wire import Reply
from postroom.logs import ServiceLogs, W3CEntry
from postroom.logs.masking import SecretMasker

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


class Transcript:
    """The log writer of one connection."""

    def __init__(self, logs: ServiceLogs, connection_id: int, client_ip: str, server_ip: str,
                 server_port: int) -> None:
        self.logs = logs
        self.connection_id = connection_id
        self.client_ip = client_ip
        self.server_ip = server_ip
        self.server_port = server_port
        self.masker = SecretMasker()
        self.username = ""
        self.helo = ""
        self.message_id = ""

    def command(self, event: ev.Event | None, reply: Reply, sent: int, received: int) -> None:
        command, args = describe(event)
        first = reply.lines[-1]
        text = f"{reply.code} {reply.enhanced + ' ' if reply.enhanced else ''}{first}"
        logs = self.logs
        if logs.activity.enabled:
            logs.activity.write(connection_id=self.connection_id, remote_ip=self.client_ip,
                                command=command, parameters=args, response=text,
                                bytes_sent=sent, bytes_received=received,
                                message_id=self.message_id)
        if logs.w3c.enabled:
            logs.w3c.write(W3CEntry(c_ip=self.client_ip, cs_username=self.username,
                                    s_ip=self.server_ip, s_port=self.server_port,
                                    cs_method=command, cs_uri_query=args, cs_uri_stem=first,
                                    sc_status=reply.code, sc_bytes=sent, cs_bytes=received,
                                    cs_version="ESMTP", cs_host=self.helo))
        if logs.debug.enabled:
            line = f"{command} {args}".rstrip() if command else "(unrecognised command)"
            if isinstance(event, ev.AuthResponse):
                line = MASK
            logs.debug.write(line, connection_id=self.connection_id, masker=self.masker)
            logs.debug.write(text, connection_id=self.connection_id, masker=self.masker,
                             from_client=False)

    def note(self, text: str) -> None:
        """A debug line in words: what we decided and why."""
        if self.logs.debug.enabled:
            self.logs.debug.write(text, connection_id=self.connection_id)

    def server_line(self, reply: Reply, what: str) -> None:
        """A reply that answers no command (greeting, timeout, drop)."""
        self.command(None, reply, 0, 0)
        self.note(what)
