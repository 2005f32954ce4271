"""The POP3 server protocol as a sans-I/O state machine (RFC 1939, 2449, 2595, 5034).

Shape (after python-hyper/h11, like the SMTP core): the server feeds bytes with
:meth:`Pop3Protocol.receive_data` (``b""`` at end of stream), pulls typed events
(:mod:`.commands`) with :meth:`~Pop3Protocol.next_event` until :data:`NEED_DATA` or
:data:`CLOSED`, and answers each event with :meth:`~Pop3Protocol.send`, which returns
the bytes to write. The state advances on the server's answers: a USER answered
``+OK`` lets PASS follow; a login answered ``+OK`` enters the TRANSACTION state only
if the server called :meth:`~Pop3Protocol.login_done` first, so a server bug cannot
log a client in by accident. No sockets, clocks, store or settings in here.

States (RFC 1939 §3): AUTHORIZATION (USER, PASS right after USER, APOP, AUTH, CAPA,
STLS, QUIT), TRANSACTION (STAT, LIST, RETR, DELE, NOOP, RSET, TOP, UIDL, CAPA, QUIT)
and, after QUIT, UPDATE, which the server carries out before its answer; then CLOSED.
A command of the other state answers ``-ERR`` and changes nothing.

Rules:

- Lines end with CRLF; a bare LF is accepted too (people type POP3 on netcat).
- RFC 2449 §4: a command line is at most 255 octets with its end. Longer lines are
  discarded up to their LF and answered ``-ERR line too long``; more than
  :attr:`Pop3Protocol.fatal_line_length` octets without a LF is fatal (not POP3).
  SASL lines (AUTH and the client's answers) may be :data:`SASL_LINE_LENGTH` long.
- Command lines must be UTF-8 text without control characters.
- RFC 2595 §4: after ``+OK`` to STLS every buffered byte is discarded (plaintext
  sent after STLS must not be read as if it came over TLS: the CVE-2011-0411 family);
  :meth:`start_tls_done` returns to AUTHORIZATION, forgetting any USER.
- RFC 5034: after :meth:`challenge` the next line is the client's base64 answer,
  ``*`` cancels.
- RFC 2449 PIPELINING: any number of commands may be buffered; events come out in
  order, each after the answer to the one before.

Untrusted input: every byte from the client. Bad input raises
:class:`ProtocolError` carrying the reply; the session continues unless it is
``fatal``. :attr:`Pop3Protocol.errors` counts refused commands so the server can
drop a client that sends nothing valid.
"""

from __future__ import annotations

import base64
import enum
import re

from postroom.services.pop3 import commands as cmd
from postroom.services.pop3 import wire

MAX_LINE_LENGTH = 255
SASL_LINE_LENGTH = 12288
FATAL_LINE_LENGTH = 1024 * 1024


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class State(enum.Enum):
    AUTHORIZATION = "authorization"
    TRANSACTION = "transaction"
    UPDATE = "update"
    CLOSED = "closed"


class Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_DATA = Sentinel("NEED_DATA")
CLOSED = Sentinel("CLOSED")

AUTHORIZATION_COMMANDS = (cmd.User, cmd.Pass, cmd.Apop, cmd.Auth, cmd.Capa, cmd.Stls,
                          cmd.Quit)
TRANSACTION_COMMANDS = (cmd.Stat, cmd.List, cmd.Retr, cmd.Dele, cmd.Noop, cmd.Rset,
                        cmd.Top, cmd.Uidl, cmd.Capa, cmd.Quit)


_NO_STATE_CHANGE = frozenset({cmd.Stat, cmd.List, cmd.Retr, cmd.Dele, cmd.Noop, cmd.Rset,
                              cmd.Top, cmd.Uidl, cmd.Capa})
"""Commands whose answer moves no state: :meth:`Pop3Protocol.send` only encodes it."""


class ProtocolError(Exception):
    """Bad client input: send ``reply``; close afterwards if ``fatal``."""

    def __init__(self, reply: wire.Reply, fatal: bool = False) -> None:
        super().__init__(reply.line)
        self.reply = reply
        self.fatal = fatal


class UsageError(RuntimeError):
    """The server used the core wrongly (a bug, never the client's doing)."""


class Pop3Protocol:
    """One POP3 session's protocol state (see the module docstring)."""

    def __init__(self, *, tls: bool = False, max_line_length: int = MAX_LINE_LENGTH,
                 fatal_line_length: int = FATAL_LINE_LENGTH) -> None:
        self.state = State.AUTHORIZATION
        self.tls = tls
        self.max_line_length = max_line_length
        self.fatal_line_length = fatal_line_length
        self.username: str | None = None      # USER given and answered +OK
        self.errors = 0
        self._buffer = bytearray()
        self._eof = False
        self._discarding = 0                   # octets of an over-long line dropped so far
        self._pending: cmd.Command | None = None
        self._in_sasl = False
        self._tls_pending = False
        self._logged_in = False

    # -- input ----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if not data:
            self._eof = True
            return
        if self._tls_pending:
            return                              # plaintext after STLS: dropped
        self._buffer += data

    def next_event(self) -> cmd.Command | Sentinel:
        if self.state is State.CLOSED:
            return CLOSED
        if self._pending is not None:
            raise UsageError("answer the previous command before reading the next")
        if self._tls_pending:
            return CLOSED if self._eof else NEED_DATA
        line = self._next_line()
        if line is None:
            return CLOSED if self._eof else NEED_DATA
        try:
            event = self._parse(line)
        except ProtocolError:
            self.errors += 1
            raise
        self._pending = event
        return event

    def _limit(self) -> int:
        return SASL_LINE_LENGTH if self._in_sasl else self.max_line_length

    def _next_line(self) -> bytes | None:
        buffer = self._buffer
        end = buffer.find(b"\n")
        if self._discarding:
            if end < 0:
                self._discarding += len(buffer)
                buffer.clear()
                if self._discarding > self.fatal_line_length:
                    self.state = State.CLOSED
                    raise ProtocolError(wire.err("line too long, closing"), fatal=True)
                return None
            del buffer[: end + 1]
            self._discarding = 0
            self.errors += 1
            self._in_sasl = False
            raise ProtocolError(wire.LINE_TOO_LONG)
        limit = self._limit()
        if end < 0:
            # RFC 5034 allows long AUTH lines: start discarding once even that is passed.
            if len(buffer) > limit and (len(buffer) > SASL_LINE_LENGTH
                                        or not buffer[:5].upper().startswith(b"AUTH ")):
                self._discarding = len(buffer)
                buffer.clear()
            return None
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) + 2 > limit and not (len(line) + 2 <= SASL_LINE_LENGTH
                                          and line[:5].upper() == b"AUTH "):
            self.errors += 1
            self._in_sasl = False
            raise ProtocolError(wire.LINE_TOO_LONG)
        return line

    def _parse(self, raw: bytes) -> cmd.Command:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._in_sasl = False
            raise ProtocolError(wire.BAD_CHARACTERS) from None
        if _CONTROL.search(line):
            self._in_sasl = False
            raise ProtocolError(wire.BAD_CHARACTERS)
        if self._in_sasl:
            self._in_sasl = False
            if line.strip() == "*":
                return cmd.AuthCancelled()
            try:
                return cmd.AuthResponse(cmd.decode_sasl(line.strip()))
            except cmd.CommandError as exc:
                raise ProtocolError(exc.reply) from None
        try:
            event = cmd.parse(line)
        except cmd.CommandError as exc:
            raise ProtocolError(exc.reply) from None
        allowed = (AUTHORIZATION_COMMANDS if self.state is State.AUTHORIZATION
                   else TRANSACTION_COMMANDS)
        if not isinstance(event, allowed):
            raise ProtocolError(wire.WRONG_STATE)
        if isinstance(event, cmd.Pass) and self.username is None:
            raise ProtocolError(wire.err("give USER first"))
        if isinstance(event, cmd.Stls) and self.tls:
            raise ProtocolError(wire.err("TLS is already active"))
        return event

    # -- output ---------------------------------------------------------------------------

    def challenge(self, data: bytes) -> bytes:
        """Continue the AUTH exchange of the pending command with ``+ base64``."""
        if not isinstance(self._pending, cmd.Auth | cmd.AuthResponse):
            raise UsageError("challenge outside an AUTH exchange")
        self._pending = None
        self._in_sasl = True
        return b"+ " + base64.b64encode(data) + b"\r\n"

    def login_done(self) -> None:
        """The credentials of the pending command were accepted and the maildrop is ours."""
        if not isinstance(self._pending, cmd.Pass | cmd.Apop | cmd.Auth | cmd.AuthResponse):
            raise UsageError("login_done without a login command")
        self._logged_in = True

    def send(self, reply: wire.Reply) -> bytes:
        """The answer to the pending event, as bytes; moves the state."""
        event = self._pending
        self._pending = None
        if type(event) in _NO_STATE_CHANGE:
            return reply.wire
        match event:
            case cmd.User(username=name):
                self.username = name if reply.ok else None
            case cmd.Auth(mechanism=None):
                pass                            # the mechanism listing
            case cmd.Pass() | cmd.Apop() | cmd.Auth() | cmd.AuthResponse() | cmd.AuthCancelled():
                self.username = None
                if reply.ok:
                    if not self._logged_in:
                        raise UsageError("+OK to a login that login_done did not confirm")
                    self.state = State.TRANSACTION
                self._logged_in = False
            case cmd.Stls():
                if reply.ok:
                    self._tls_pending = True
                    self._buffer.clear()
            case cmd.Quit():
                self.state = State.CLOSED
            case _:
                pass
        return reply.encode()

    def send_error(self, error: ProtocolError) -> bytes:
        """The answer to input that raised ``error``."""
        if error.fatal:
            self.state = State.CLOSED
        return error.reply.encode()

    def start_tls_done(self) -> None:
        """TLS is up after ``+OK`` to STLS: start over in AUTHORIZATION (RFC 2595 §4)."""
        if not self._tls_pending:
            raise UsageError("start_tls_done without STLS")
        self._tls_pending = False
        self._buffer.clear()
        self.tls = True
        self.username = None
        self.state = State.AUTHORIZATION

    def enter_update(self) -> None:
        """QUIT in TRANSACTION: the server applies deletions, then answers."""
        if not isinstance(self._pending, cmd.Quit) or self.state is not State.TRANSACTION:
            raise UsageError("UPDATE only on QUIT in TRANSACTION")
        self.state = State.UPDATE
