"""The SMTP server protocol as a sans-I/O state machine (manual 6.2.3, RFC 5321).

Shape (after python-hyper/h11): the server feeds received bytes with
:meth:`SmtpServerProtocol.receive_data` (``b""`` at end of stream), pulls typed
events (:mod:`.events`) with :meth:`~SmtpServerProtocol.next_event` until it gets
:data:`NEED_DATA` or :data:`CLOSED`, and answers each command event with
:meth:`~SmtpServerProtocol.send`, which returns the bytes to write. The state
advances on the server's replies: a MAIL answered 250 opens a transaction, one
answered 550 does not. No sockets, clocks, store or settings in here.

Untrusted input: every byte from the client. Bad input raises
:class:`ProtocolError` carrying the reply to send; the session continues unless the
error is ``fatal`` (then send the reply and close). ``invalid_commands`` and
``errors_sent`` let the server drop a client after N failures (manual 6.2.3.6,
"Drop a connection when the failed number of commands or recipients reaches").

Rules, in order of the RFCs:

- RFC 5321 §2.3.8, §4.1.1: command lines end with CRLF only. A bare LF ends the
  line *for error reporting* (``500 5.5.2``, the command is not run) so a human on
  netcat gets an answer; a bare CR inside a line is refused the same way.
- §4.5.3.1.4: command lines are at most ``max_line_length`` octets with CRLF (512;
  raise it to be lenient). Longer lines are discarded to the next LF and answered
  ``500 5.5.6``; a line beyond :attr:`SmtpServerProtocol.fatal_line_length` is a
  fatal error (no line end in sight: the client is not speaking SMTP).
- §4.1.4: the command order is the :data:`.state.ALLOWED` table; out of order is ``503``.
  HELP, NOOP, RSET, VRFY, EXPN and QUIT work in every command state.
- DATA bodies and BDAT chunks: see :mod:`.data` (smuggling defence, streaming).
- RFC 2920 PIPELINING: any number of commands may sit in the buffer; events come
  out in order, each after the reply to the one before.
- RFC 3030 CHUNKING: a refused BDAT still consumes its octets; BDAT after DATA in
  one transaction (and DATA after BDAT) is ``503``; BODY=BINARYMIME needs BDAT.
- RFC 3207 STARTTLS: once 220 is sent, all buffered plaintext is discarded (the
  classic STARTTLS command-injection bug, e.g. CVE-2011-0411 in Postfix, was acting
  on commands pipelined after STARTTLS in plaintext); :meth:`start_tls_done` then
  forgets everything learnt before TLS (EHLO, AUTH, transaction).
- RFC 4954 AUTH: only after EHLO, never in a transaction or twice; plaintext
  mechanisms (PLAIN, LOGIN) are offered and accepted only under TLS unless allowed;
  a 2xx reply to an AUTH exchange is refused unless :meth:`auth_done` said success,
  so a server bug cannot authenticate a client by accident.
- RFC 6531 SMTPUTF8: UTF-8 in commands only in MAIL/RCPT (with SMTPUTF8 declared
  on MAIL) and VRFY/EXPN; elsewhere ``500 5.5.2``, in addresses ``553 5.6.7``.

Known limits: no per-command timeouts (the server owns the clock); HELO sessions
may not use any service extension (their parameters are refused with 555).
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from postroom.connectors.smtp import commands, wire
from postroom.connectors.smtp import events as ev
from postroom.connectors.smtp.data import ChunkReader, DotReader
from postroom.connectors.smtp.state import (
    AuthExchange,
    ProtocolError,
    SmtpUsageError,
    State,
    Transaction,
)

__all__ = [
    "CLOSED",
    "NEED_DATA",
    "ProtocolError",
    "SmtpFeatures",
    "SmtpServerProtocol",
    "SmtpUsageError",
    "State",
]

PLAINTEXT_MECHANISMS = frozenset({"PLAIN", "LOGIN"})
AUTH_LINE_LENGTH = 12288
"""RFC 4954 §4: AUTH lines (command and responses) may be up to 12288 octets."""


class _Sentinel:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA = _Sentinel("NEED_DATA")
"""next_event(): nothing more can be decided until more bytes arrive."""
CLOSED = _Sentinel("CLOSED")
"""next_event(): the session is over (QUIT answered, 421 sent, or end of stream)."""


@dataclass(frozen=True)
class SmtpFeatures:
    """Which service extensions to offer (EHLO keywords) and allow.

    ``starttls`` means TLS is available (a certificate is configured); STARTTLS is
    offered only while TLS is not active. ``auth_mechanisms`` are offered after
    EHLO; plaintext ones only under TLS unless ``auth_plaintext_without_tls``.
    ``disabled_commands`` is the manual's "Allowed SMTP Commands" (6.2.3.7).
    ``bare_line_endings``: "reject" (default) recommends refusing a DATA body with
    bare CR/LF (``DataEnd.refusal``); "accept" passes it on unchanged.
    """

    pipelining: bool = True
    size: bool = True
    eightbitmime: bool = True
    smtputf8: bool = True
    enhancedstatuscodes: bool = True
    dsn: bool = True
    chunking: bool = True
    binarymime: bool = False
    starttls: bool = False
    auth_mechanisms: tuple[str, ...] = ()
    auth_plaintext_without_tls: bool = False
    vrfy: bool = False
    expn: bool = False
    disabled_commands: frozenset[str] = frozenset()
    bare_line_endings: Literal["reject", "accept"] = "reject"


class SmtpServerProtocol:
    """One inbound SMTP session. See the module docstring for the rules."""

    def __init__(
        self,
        *,
        features: SmtpFeatures | None = None,
        max_line_length: int = 512,
        max_data_line_length: int | None = None,
        max_message_size: int | None = None,
        max_recipients: int = 100,
        tls_active: bool = False,
    ) -> None:
        self.features = features or SmtpFeatures()
        self.max_line_length = max_line_length
        self.max_data_line_length = max_data_line_length
        self.max_message_size = max_message_size
        self.max_recipients = max_recipients
        self.fatal_line_length = max(64 * 1024, 16 * max_line_length, 2 * AUTH_LINE_LENGTH)
        self.state = State.CONNECTED
        self.tls_active = tls_active
        self.esmtp = False
        self.helo_name: str | None = None
        self.auth_identity: str | None = None
        self.authenticated = False
        self.invalid_commands = 0
        """ProtocolErrors raised so far (syntax, order, limits)."""
        self.errors_sent = 0
        """4xx/5xx replies sent so far (including policy refusals)."""
        self.early_data = False
        """The client sent bytes before our greeting (an "early talker")."""
        self.discarded_after_starttls = 0
        """Plaintext octets thrown away at STARTTLS (non-zero: injection attempt)."""
        self._buf = bytearray()
        self._pos = 0
        self._eof = False
        self._pending: ev.Event | ProtocolError | None = None
        self._transaction: Transaction | None = None
        self._reader: DotReader | ChunkReader | None = None
        self._discard: ChunkReader | None = None
        self._discarding_line = 0
        self._auth: AuthExchange | None = None

    # -- public surface ---------------------------------------------------

    @property
    def buffered(self) -> int:
        """Octets received but not yet consumed (should stay small while streaming)."""
        return len(self._buf) - self._pos

    @property
    def pending(self) -> ev.Event | ProtocolError | None:
        """The event (or error) awaiting the server's reply."""
        return self._pending

    @property
    def mail_from(self) -> ev.MailFrom | None:
        """The accepted MAIL FROM of the open transaction."""
        return self._transaction.mail if self._transaction else None

    @property
    def recipient_count(self) -> int:
        return self._transaction.recipients if self._transaction else 0

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the client; ``b""`` means the client closed its side."""
        if self.state is State.CLOSED or self._eof:
            return
        if not data:
            self._eof = True
            return
        if self.state is State.CONNECTED:
            self.early_data = True
        if self.state is State.TLS_HANDSHAKE:
            self.discarded_after_starttls += len(data)
            return
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_event(self) -> ev.Event | object:
        """The next event, :data:`NEED_DATA` or :data:`CLOSED`.

        Raises :class:`ProtocolError` for bad input (reply with ``err.reply``).
        """
        if self._pending is not None:
            raise SmtpUsageError("reply to the previous event before asking for the next")
        if self.state is State.CLOSED:
            return CLOSED
        if self.state is State.CONNECTED:
            raise SmtpUsageError("send the greeting before reading commands")
        if self.state is State.TLS_HANDSHAKE:
            raise SmtpUsageError("call start_tls_done() after the TLS handshake")
        try:
            event = self._next_event()
        except ProtocolError as err:
            self.invalid_commands += 1
            self._pending = err
            raise
        if isinstance(event, ev.Event) and event.needs_reply:
            self._pending = event
        return event

    def send(self, reply: wire.Reply) -> bytes:
        """Turn our reply into bytes and advance the state accordingly."""
        if self.state is State.CLOSED:
            raise SmtpUsageError("the session is closed")
        pending, self._pending = self._pending, None
        try:
            self._advance(pending, reply)
        except SmtpUsageError:
            self._pending = pending
            raise
        if reply.code >= 400 and reply.code != 421:
            self.errors_sent += 1
        if reply.code == 421:
            self._close()
        return reply.to_bytes(enhanced_codes=self.features.enhancedstatuscodes)

    def start_tls_done(self) -> None:
        """The TLS handshake succeeded: start afresh (RFC 3207 §4.2)."""
        if self.state is not State.TLS_HANDSHAKE:
            raise SmtpUsageError("start_tls_done() without an accepted STARTTLS")
        self.discarded_after_starttls += self.buffered
        self._buf = bytearray()
        self._pos = 0
        self.tls_active = True
        self.esmtp = False
        self.helo_name = None
        self.authenticated = False
        self.auth_identity = None
        self._transaction = None
        self.state = State.READY

    def auth_done(self, success: bool, identity: str | None = None) -> None:
        """Record the outcome of the AUTH exchange before sending its final reply."""
        if self._auth is None or not isinstance(self._pending, (ev.AuthStart, ev.AuthResponse)):
            raise SmtpUsageError("auth_done() outside an AUTH exchange")
        self._auth.result = (success, identity)

    def offered_auth_mechanisms(self) -> tuple[str, ...]:
        """The AUTH mechanisms usable right now (none once authenticated)."""
        if self.authenticated:
            return ()
        return tuple(
            mech.upper()
            for mech in self.features.auth_mechanisms
            if self._mechanism_usable(mech.upper())
        )

    def ehlo_response(self, hostname: str, greeting: str = "") -> wire.Reply:
        """The 250 reply to EHLO listing the extensions offered in this state."""
        return _ehlo_reply(self.features, self.max_message_size, self.tls_active,
                           self.offered_auth_mechanisms(), f"{hostname} {greeting}".strip())

    # -- reading ----------------------------------------------------------

    def _next_event(self) -> ev.Event | object:
        if self._discard is not None:
            _, self._pos = self._discard.feed(self._buf, self._pos)
            if not self._discard.done:
                return CLOSED if self._eof else NEED_DATA
            self._discard = None
        if self._reader is not None:
            return self._read_body()
        line = self._next_line()
        if line is None:
            return CLOSED if self._eof else NEED_DATA
        if self.state is State.AUTH:
            return self._auth_line(line)
        return commands.dispatch(self, line)

    def _read_body(self) -> ev.Event | object:
        reader = self._reader
        assert reader is not None
        transaction = self._transaction
        assert transaction is not None
        if isinstance(reader, DotReader):
            if not reader.done:
                data, self._pos = reader.feed(self._buf, self._pos)
                if data:
                    return ev.DataChunk(data)
            if not reader.done:
                return CLOSED if self._eof else NEED_DATA
            self._reader = None
            refusal = None
            if reader.oversize:
                refusal = wire.SIZE_EXCEEDED
            elif reader.bare_line_ending and self.features.bare_line_endings == "reject":
                refusal = wire.BARE_LINE_ENDING_IN_DATA
            elif reader.line_too_long:
                refusal = wire.DATA_LINE_TOO_LONG
            return ev.DataEnd(
                reader.size,
                oversize=reader.oversize,
                bare_line_ending=reader.bare_line_ending,
                line_too_long=reader.line_too_long,
                refusal=refusal,
            )
        if not reader.done:
            data, self._pos = reader.feed(self._buf, self._pos)
            if data:
                return ev.BdatChunk(data, reader.last)
        if not reader.done:
            return CLOSED if self._eof else NEED_DATA
        self._reader = None
        transaction.message_size = reader.message_size
        transaction.oversize = transaction.oversize or reader.oversize
        return ev.BdatEnd(
            reader.size,
            reader.last,
            reader.message_size,
            oversize=transaction.oversize,
            refusal=wire.SIZE_EXCEEDED if transaction.oversize else None,
        )

    def _line_limit(self) -> int:
        if self.state is State.AUTH or self._buf[self._pos : self._pos + 5].upper() == b"AUTH ":
            return max(self.max_line_length, AUTH_LINE_LENGTH)
        return self.max_line_length

    def _next_line(self) -> bytes | None:
        buf = self._buf
        lf = buf.find(b"\n", self._pos)
        if self._discarding_line:
            if lf < 0:
                self._discarding_line += len(buf) - self._pos
                self._pos = len(buf)
                if self._discarding_line > self.fatal_line_length:
                    raise ProtocolError(wire.LINE_TOO_LONG, fatal=True)
                return None
            self._discarding_line = 0
            self._pos = lf + 1
            raise ProtocolError(wire.LINE_TOO_LONG)
        limit = self._line_limit()
        if lf < 0:
            if len(buf) - self._pos > limit:
                self._discarding_line = len(buf) - self._pos
                self._pos = len(buf)
                if self._discarding_line > self.fatal_line_length:
                    raise ProtocolError(wire.LINE_TOO_LONG, fatal=True)
            return None
        start, self._pos = self._pos, lf + 1
        if lf + 1 - start > limit:
            raise ProtocolError(wire.LINE_TOO_LONG)
        if lf == start or buf[lf - 1] != 0x0D:
            raise ProtocolError(wire.BARE_LINE_ENDING_IN_COMMAND)
        line = bytes(buf[start : lf - 1])
        if b"\r" in line:
            raise ProtocolError(wire.BARE_LINE_ENDING_IN_COMMAND)
        return line

    def _auth_line(self, line: bytes) -> ev.Event:
        if line == b"*":
            return ev.AuthCancelled()
        try:
            return ev.AuthResponse(binascii.a2b_base64(line, strict_mode=True))
        except (binascii.Error, ValueError):
            self._end_auth()
            raise ProtocolError(wire.AUTH_BAD_BASE64) from None

    # -- helpers used by commands.py -------------------------------------

    def _mechanism_usable(self, mechanism: str) -> bool:
        return (
            self.tls_active
            or self.features.auth_plaintext_without_tls
            or mechanism not in PLAINTEXT_MECHANISMS
        )

    def _offered_keywords(self) -> frozenset[str]:
        f = self.features
        words = set()
        if f.size:
            words.add("SIZE")
        if f.eightbitmime:
            words.add("8BITMIME")
        if f.chunking and f.binarymime:
            words.add("BINARYMIME")
        if f.smtputf8:
            words.add("SMTPUTF8")
        if f.dsn:
            words.add("DSN")
        if f.auth_mechanisms:
            words.add("AUTH")
        return frozenset(words)

    def _start_discard(self, size: int) -> None:
        self._discard = ChunkReader(size, discard=True)

    def _end_auth(self) -> None:
        resume = self._auth.resume if self._auth else State.GREETED
        self._auth = None
        self.state = resume

    def _reset_transaction(self) -> None:
        self._transaction = None
        self._reader = None
        if self.state in (State.MAIL, State.RCPT, State.BDAT, State.DATA):
            self.state = State.GREETED

    def _close(self) -> None:
        self.state = State.CLOSED
        self._buf = bytearray()
        self._pos = 0
        self._reader = None
        self._discard = None

    # -- replies drive the state -------------------------------------------

    def _advance(self, pending: ev.Event | ProtocolError | None, reply: wire.Reply) -> None:
        code = reply.code
        if pending is None:
            if self.state is State.CONNECTED:
                if code == 220:
                    self.state = State.READY
                elif code == 554:
                    self.state = State.REFUSED
                elif code != 421:
                    raise SmtpUsageError("the greeting must be 220, 554 or 421")
                return
            if code != 421:
                raise SmtpUsageError("no command is waiting for a reply")
            return
        if reply.is_intermediate and not isinstance(
            pending, (ev.DataStart, ev.AuthStart, ev.AuthResponse)
        ):
            raise SmtpUsageError(f"{code} is not a reply to {type(pending).__name__}")
        if isinstance(pending, ProtocolError):
            if pending.fatal:
                self._close()
            return
        commands.advance(self, pending, reply)


@lru_cache(maxsize=256)
def _ehlo_reply(f: SmtpFeatures, max_message_size: int | None, tls_active: bool,
                mechanisms: tuple[str, ...], first_line: str) -> wire.Reply:
    """The EHLO reply for these features and this state: one object per combination
    (a reply keeps its wire bytes once made), as every ESMTP session asks for one."""
    lines = [first_line]
    if f.pipelining:
        lines.append("PIPELINING")
    if f.size:
        lines.append(f"SIZE {max_message_size}" if max_message_size else "SIZE")
    if f.eightbitmime:
        lines.append("8BITMIME")
    if f.chunking:
        lines.append("CHUNKING")
        if f.binarymime:
            lines.append("BINARYMIME")
    if f.smtputf8:
        lines.append("SMTPUTF8")
    if f.enhancedstatuscodes:
        lines.append("ENHANCEDSTATUSCODES")
    if f.dsn:
        lines.append("DSN")
    if f.starttls and not tls_active:
        lines.append("STARTTLS")
    if mechanisms:
        lines.append("AUTH " + " ".join(mechanisms))
    if f.vrfy:
        lines.append("VRFY")
    if f.expn:
        lines.append("EXPN")
    return wire.Reply(250, None, tuple(lines))
