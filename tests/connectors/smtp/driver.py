"""A test driver for SmtpServerProtocol: feeds bytes, answers events like a server.

Not a mock: it is the read-feed-write loop a real server runs, with a fixed policy
(accept everything, unless told otherwise) so tests can assert on events and on
the exact bytes written back.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field

from postroom.connectors.smtp import events as ev
from postroom.connectors.smtp import wire
from postroom.connectors.smtp.protocol import (
    CLOSED,
    NEED_DATA,
    ProtocolError,
    SmtpServerProtocol,
)

Replier = Callable[[SmtpServerProtocol, ev.Event], wire.Reply]


def accept_all(proto: SmtpServerProtocol, event: ev.Event) -> wire.Reply:
    """The reply an accepting server gives to each event."""
    match event:
        case ev.Ehlo():
            return proto.ehlo_response("mx.example.org", "hello")
        case ev.Helo():
            return wire.Reply(250, None, "mx.example.org")
        case ev.MailFrom():
            return wire.SENDER_OK
        case ev.RcptTo():
            return wire.RECIPIENT_OK
        case ev.DataStart():
            return wire.START_MAIL_INPUT
        case ev.DataEnd():
            return event.refusal or wire.MESSAGE_ACCEPTED
        case ev.BdatEnd():
            if event.refusal:
                return event.refusal
            return wire.MESSAGE_ACCEPTED if event.last else wire.bdat_received(event.size)
        case ev.Rset():
            return wire.RESET_OK
        case ev.Noop():
            return wire.OK
        case ev.Quit():
            return wire.closing("mx.example.org")
        case ev.Help():
            return wire.help_text("See RFC 5321")
        case ev.Vrfy():
            return wire.CANNOT_VRFY
        case ev.Expn():
            return wire.Reply(250, "2.1.5", ("a@example.org", "b@example.org"))
        case ev.StartTls():
            return wire.READY_TO_START_TLS
        case ev.AuthStart() | ev.AuthResponse():
            return auth_plain(proto, event)
        case ev.AuthCancelled():
            return wire.AUTH_CANCELLED
    raise AssertionError(f"unexpected event {event!r}")


def auth_plain(proto: SmtpServerProtocol, event: ev.Event) -> wire.Reply:
    """PLAIN/LOGIN with one good account: user ``alice``, password ``secret``."""
    if isinstance(event, ev.AuthStart):
        if event.mechanism == "LOGIN":
            return (
                wire.auth_challenge(b"Username:")
                if event.initial_response is None
                else (wire.auth_challenge(b"Password:"))
            )
        if event.initial_response is None:
            return wire.auth_challenge(b"")
        data = event.initial_response
    else:
        assert isinstance(event, ev.AuthResponse)
        data = event.data
        if b"\x00" not in data:  # LOGIN: user, then password
            if data == b"alice":
                return wire.auth_challenge(b"Password:")
            ok = data == b"secret"
            proto.auth_done(ok, "alice" if ok else None)
            return wire.AUTH_OK if ok else wire.AUTH_FAILED
    parts = data.split(b"\x00")
    ok = len(parts) == 3 and parts[1] == b"alice" and parts[2] == b"secret"
    proto.auth_done(ok, "alice" if ok else None)
    return wire.AUTH_OK if ok else wire.AUTH_FAILED


def plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


@dataclass
class Error:
    """A ProtocolError as recorded by the driver."""

    code: int
    enhanced: str | None
    fatal: bool = False


@dataclass
class Session:
    """One session: the greeting is sent at creation; ``feed`` runs the loop."""

    proto: SmtpServerProtocol = field(default_factory=SmtpServerProtocol)
    replier: Replier = accept_all
    log: list[object] = field(default_factory=list)
    out: bytearray = field(default_factory=bytearray)
    closed: bool = False

    def __post_init__(self) -> None:
        self.out += self.proto.send(wire.greeting("mx.example.org"))

    def feed(self, data: bytes) -> list[object]:
        """Feed ``data`` and drain events; returns what this call produced."""
        start = len(self.log)
        if data:
            self.proto.receive_data(data)
        self.drain()
        return self.log[start:]

    def eof(self) -> list[object]:
        """The client closes its side."""
        start = len(self.log)
        self.proto.receive_data(b"")
        self.drain()
        return self.log[start:]

    def drain(self) -> None:
        while not self.closed:
            try:
                event = self.proto.next_event()
            except ProtocolError as err:
                self.log.append(Error(err.reply.code, err.reply.enhanced, err.fatal))
                self.out += self.proto.send(err.reply)
                if err.fatal:
                    self.closed = True
                continue
            if event is NEED_DATA:
                return
            if event is CLOSED:
                self.closed = True
                self.log.append(CLOSED)
                return
            assert isinstance(event, ev.Event)
            self.log.append(event)
            if event.needs_reply:
                reply = self.replier(self.proto, event)
                self.out += self.proto.send(reply)
                if isinstance(event, ev.StartTls) and reply.code == 220:
                    return  # the server now runs the TLS handshake

    def replies(self) -> list[str]:
        """Reply lines written so far (without the greeting), as text."""
        lines = bytes(self.out).decode("utf-8").split("\r\n")
        return [line for line in lines[1:] if line]

    def codes(self) -> list[int]:
        """The code of each final reply line (one per reply), greeting excluded."""
        return [int(line[:3]) for line in self.replies() if line[3:4] != "-"]


def merged(log: list[object]) -> list[object]:
    """Merge consecutive body chunks so logs from differently split input compare."""
    out: list[object] = []
    for item in log:
        if isinstance(item, ev.DataChunk) and out and isinstance(out[-1], ev.DataChunk):
            out[-1] = ev.DataChunk(out[-1].data + item.data)
        elif (
            isinstance(item, ev.BdatChunk)
            and out
            and isinstance(out[-1], ev.BdatChunk)
            and out[-1].last == item.last
        ):
            out[-1] = ev.BdatChunk(out[-1].data + item.data, item.last)
        else:
            out.append(item)
    return out


def body_of(log: list[object]) -> bytes:
    """All body bytes in ``log``."""
    return b"".join(item.data for item in log if isinstance(item, (ev.DataChunk, ev.BdatChunk)))
