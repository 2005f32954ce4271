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

import asyncio
from datetime import datetime

from postroom.logs import ServiceLogs, W3CEntry
from postroom.logs.files import LogBuffer
from postroom.logs.masking import SecretMasker
from postroom.services.imap import commands as cmd

MASK = "****"
FLUSH_AFTER = 1.0


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
            sizes = ",".join(str(len(m.data)) for m in messages)
            return "APPEND", f"{mailbox.decode('utf-8', 'replace')} ({sizes} octets)"
        case cmd.Select(mailbox=mailbox) | cmd.MailboxCommand(mailbox=mailbox) | \
                cmd.Status(mailbox=mailbox):
            return command.name, mailbox.decode("utf-8", "replace")
        case cmd.Fetch(uid=uid, sequence=sequence) | cmd.Store(uid=uid, sequence=sequence) | \
                cmd.CopyMove(uid=uid, sequence=sequence):
            return ("UID " if uid else "") + command.name, sequence
    return command.name, ""


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

    def command(self, command: cmd.Command | None, status: str, sent: int,
                received: int) -> None:
        logs = self.logs
        activity, w3c, debug = logs.activity, logs.w3c, logs.debug
        if not (activity.enabled or w3c.enabled or debug.enabled):
            return
        name, args = describe(command)
        if activity.enabled:
            self._put(2, activity.record(
                connection_id=self.connection_id, remote_ip=self.client_ip, command=name,
                parameters=args, response=status, bytes_sent=sent, bytes_received=received))
        if w3c.enabled:
            word = status.split(" ", 2)[1] if status.count(" ") >= 1 else status
            self._put(1, w3c.record(W3CEntry(
                c_ip=self.client_ip, cs_username=self.username, s_ip=self.server_ip,
                s_port=self.server_port, cs_method=name, cs_uri_query=args,
                cs_uri_stem=status, sc_status=word, sc_bytes=sent, cs_bytes=received,
                cs_version="IMAP4rev1")))
        if debug.enabled:
            line = f"{name} {args}".rstrip() if name else "(unparsed command)"
            self._put(0, debug.record(line, connection_id=self.connection_id,
                                      masker=self.masker))
            self._put(0, debug.record(status, connection_id=self.connection_id,
                                      masker=self.masker, from_client=False))

    def note(self, text: str) -> None:
        if self.logs.debug.enabled:
            self._put(0, self.logs.debug.record(text, connection_id=self.connection_id))

    def _put(self, which: int, record: tuple[datetime, str] | None) -> None:
        if record is None:
            return
        self._buffers[which].add(*record)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_AFTER, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for buffer in self._buffers:
            if buffer:
                buffer.flush()
