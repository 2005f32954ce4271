"""What one IMAP session writes to the service logs (manual 6.3.3.3, 9.2, 9.4).

Each command answered gives one activity line, one W3C line and two debug lines (the
command as sent, our tagged status), as POP3's transcript does; notes in words say why
a login failed or what a mailbox operation did. Credentials never reach a file: LOGIN
passwords and AUTHENTICATE data are written as ``****`` and APPEND literals are not
logged at all (only their sizes).

Lines are buffered per session and flushed at the end or one second after the first
unwritten line. Untrusted input: every argument shown came from the client; the log
classes escape control characters.
"""

from __future__ import annotations

from postroom.logs import ServiceLogs
from postroom.logs.session import SessionTranscript
from postroom.services.imap import commands as cmd

MASK = "****"


def describe(command: cmd.Command | None) -> tuple[str, str]:
    """``(command, arguments)`` as logged, credentials masked, literals summarised."""
    match command:
        case None:
            return "", ""
        case cmd.Login(username=user):
            return "LOGIN", f"{user.decode('utf-8', 'replace')} {MASK}"
        case cmd.Authenticate(mechanism=mechanism, initial=initial):
            return "AUTHENTICATE", mechanism + (f" {MASK}" if initial is not None else "")
        case cmd.Append(mailbox=mailbox, messages=messages):
            sizes = ",".join(str(m.size) for m in messages)
            return "APPEND", f"{mailbox.decode('utf-8', 'replace')} ({sizes} octets)"
        case cmd.Select(mailbox=mailbox) | cmd.MailboxCommand(mailbox=mailbox) | \
                cmd.Status(mailbox=mailbox):
            return command.name, mailbox.decode("utf-8", "replace")
        case cmd.Fetch(uid=uid, sequence=sequence) | cmd.Store(uid=uid, sequence=sequence) | \
                cmd.CopyMove(uid=uid, sequence=sequence):
            return ("UID " if uid else "") + command.name, sequence
    return command.name, ""


class Transcript(SessionTranscript):
    """The log writer of one IMAP connection (see :mod:`postroom.logs.session`)."""

    def __init__(self, logs: ServiceLogs, connection_id: int, client_ip: str, server_ip: str,
                 server_port: int) -> None:
        super().__init__(logs, connection_id, client_ip, server_ip, server_port)

    def command(self, command: cmd.Command | None, status: str, sent: int,
                received: int) -> None:
        if not self.any_enabled():
            return
        name, args = describe(command)
        word = status.split(" ", 2)[1] if status.count(" ") >= 1 else status
        self.write_command(name, args, status, w3c_status=word, w3c_stem=status,
                           version="IMAP4rev1", sent=sent, received=received,
                           debug_line=None if name else "(unparsed command)")
