"""What one POP3 session writes to the service logs (manual 6.3.4.4, 9.2, 9.4).

Each command answered gives one activity line (the manual 9.4 columns), one W3C line
(fields from ``pop3.logging.w3c_fields``) and two debug lines (the command as the
client sent it, our status line); the debug log also gets notes in words (why a login
failed, what UPDATE removed). Credentials never reach a file: PASS and APOP arguments
and SASL answers are written as ``****``.

Lines are buffered per session and written with one ``write()`` per log at the end of
the session or at most :data:`~postroom.logs.session.FLUSH_AFTER` seconds after the
first unwritten line, as SMTP does (a POP3 client downloading 500 messages answers 1,000 commands).

Untrusted input: every argument shown came from the client; the log classes escape
control characters so a client cannot forge lines or columns.
"""

from __future__ import annotations

from postroom.logs import ServiceLogs
from postroom.logs.session import SessionTranscript
from postroom.services.pop3 import commands as cmd
from postroom.services.pop3.wire import Reply

MASK = "****"


def describe(event: cmd.Command | None) -> tuple[str, str]:
    """``(command, arguments)`` as logged, credentials masked."""
    match event:
        case cmd.Retr(msg=msg) | cmd.Dele(msg=msg):      # the most frequent first
            return event.name, str(msg)
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
        case cmd.Top(msg=msg, lines=lines):
            return "TOP", f"{msg} {lines}"
    return event.name, ""


class Transcript(SessionTranscript):
    """The log writer of one POP3 connection (see :mod:`postroom.logs.session`)."""

    def __init__(self, logs: ServiceLogs, connection_id: int, client_ip: str, server_ip: str,
                 server_port: int) -> None:
        super().__init__(logs, connection_id, client_ip, server_ip, server_port)

    def command(self, event: cmd.Command | None, reply: Reply, sent: int,
                received: int) -> None:
        if not self.any_enabled():
            return
        command, args = describe(event)
        status = reply.line
        self.write_command(command, args, status, w3c_status="+OK" if reply.ok else "-ERR",
                           w3c_stem=status, version="POP3", sent=sent, received=received)

    def server_line(self, reply: Reply, what: str) -> None:
        """A status line that answers no command (greeting, refusal, timeout)."""
        self.command(None, reply, 0, 0)
        self.note(what)
