"""One outbound SMTP connection: connect, EHLO, STARTTLS, AUTH, transactions, QUIT.

Manual 6.2.3.4 (outbound options: timeout, IP binding, TLS), 6.2.3.9 (smart host
AUTH); RFC 5321 (the dialogue; §4.5.3.2 time-outs), RFC 3207 (STARTTLS), RFC 4954
(AUTH PLAIN, LOGIN: PLAIN when the server offers it, else LOGIN — the manual names
LOGIN; both send the password, so both only over TLS or to a smart host that was
configured that way on purpose).

Opening (connect, EHLO, STARTTLS, AUTH) is aiosmtplib's (DEPENDENCIES.md). STARTTLS is
driven here, not
by ``start_tls=None``: a failed handshake towards an MX host (a broken or unverifiable
certificate, a server that offers STARTTLS and cannot do it) closes the connection,
and the next one to the same host is plain text (RFC 7435: opportunistic TLS must not
make mail undeliverable). Towards a smart host with ``tls_verify`` (or
``tls=starttls``/``implicit``) a failed handshake is an error: the mail waits.

Transactions do not go through aiosmtplib: once the session is open, its transport is
handed to :class:`_Wire`, a small protocol that queues every reply it receives, so
that, towards a server advertising PIPELINING (RFC 2920), MAIL, every RCPT and DATA
go out in one write and the message with its end-of-data in a second one: two round
trips per message instead of 3 + one per recipient (aiosmtplib reads one reply per
command and drops what arrives unasked). Every reply is still read and checked, in
order (RFC 2920 §3.1), and each command is logged with its own reply. A server without
PIPELINING gets one command at a time, as before. When every recipient was refused,
the pipelined DATA is answered with an error by any RFC 2920 server; one that answers
354 anyway gets an empty message (just the end-of-data), then RSET.

Each connection may carry many transactions (connection reuse): after a refused
transaction it sends RSET; a 421 or a lost connection ends it (a 421 closes it: the
server is going away).

The message goes out as aiosmtplib would send it (lone CR or LF made CRLF, a final
CRLF, leading dots doubled), with a fast path for the usual case of a message that
already has CRLF line ends only.

Logs (manual 6.2.3.10, 9.4): each command sent is an activity line of type
``SMTP-OU`` (remote IP, command, arguments, the reply received, bytes), a W3C line
and two debug lines; buffered per transaction (one ``write()`` per log).

Untrusted input: everything the remote server says. Reply text is kept to 512
characters per reply; control characters are escaped by the log classes and removed
before the text reaches an NDR (:mod:`postroom.mta.ndr`).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Any

import aiosmtplib

from postroom.connectors.smtp.outbound.routing import Hop, Route, RouteFailure
from postroom.logs import Direction, ServiceLogs
from postroom.logs.session import SessionTranscript

_connection_ids = itertools.count(1)
REPLY_LIMIT = 512
LINE_LIMIT = 8192               # one reply line (RFC 5321 §4.5.3.1.5 says 512; be lenient)
PENDING_LIMIT = 64 * 1024       # unparsed reply bytes before the peer is cut off
_LINE_ENDS = re.compile(rb"\r\n|\n|\r(?!\n)")
_REPLY_CLASSES = (b"2", b"3", b"4", b"5")


class ConnectionLost(Exception):
    """The connection broke (or timed out) inside a transaction: retry later."""


@dataclass(frozen=True)
class Reply:
    code: int
    text: str           # "250 2.0.0 Ok: queued as X" (one line)

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    @property
    def permanent(self) -> bool:
        return self.code >= 500

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def status(self) -> str:
        """The enhanced status code of the reply, or one made from the basic code."""
        parts = self.text.split()
        if len(parts) > 1 and parts[1][:1] in "245" and parts[1].count(".") == 2:
            return parts[1]
        return {2: "2.0.0", 4: "4.0.0"}.get(self.code // 100, "5.0.0")


def _reply(response: Any) -> Reply:
    text = " ".join(str(response.message).split())
    return Reply(int(response.code), f"{response.code} {text}"[:REPLY_LIMIT])


@dataclass(frozen=True)
class Options:
    """What every connection needs, read from the settings once per change."""

    ehlo: str
    source_ip: str | None
    timeout: float


def _tls_context(verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


_CONTEXTS = {True: _tls_context(True), False: _tls_context(False)}


class Connection:
    """An open session with one server (after EHLO, STARTTLS and AUTH)."""

    def __init__(self, client: aiosmtplib.SMTP, hop: Hop, logs: ServiceLogs | None,
                 tls: bool) -> None:
        self.client = client
        self.hop = hop
        self.tls = tls
        self.logs = logs
        self.id = next(_connection_ids)
        self.message_id = ""
        self.transactions = 0
        self._wire: _Wire | None = None
        self._extensions: dict[str, str] = {}
        # Our side of the session, in the SMTP logs' "-OU" lines (the peer is the
        # address shown); buffered until the end of each transaction.
        self._transcript = SessionTranscript(
            logs, self.id, hop.address, "", None, direction=Direction.OUT,
            debug_id=f"OUT{self.id}") if logs is not None else None

    @property
    def remote(self) -> str:
        return self.hop.host if self.hop.host == self.hop.address \
            else f"{self.hop.host} [{self.hop.address}]"

    @property
    def extensions(self) -> dict[str, str]:
        return self._extensions if self._wire is not None else self.client.esmtp_extensions

    @property
    def usable(self) -> bool:
        if self._wire is not None:
            return self._wire.connected
        return self.client.is_connected

    # -- opening --------------------------------------------------------------------------

    @classmethod
    async def open(cls, route: Route, hops: list[Hop], options: Options,
                   logs: ServiceLogs | None) -> Connection:
        """The first hop that answers; :class:`RouteFailure` (temporary) if none does."""
        errors: list[str] = []
        for hop in hops:
            if options.source_ip and (":" in options.source_ip) != (":" in hop.address):
                continue        # the bound source address cannot reach this family
            try:
                return await cls._open_hop(route, hop, options, logs)
            except RouteFailure as exc:
                if exc.permanent:
                    raise
                errors.append(f"{hop.host} [{hop.address}]: {exc.text}")
        detail = "; ".join(errors[-3:]) or "no usable address"
        raise RouteFailure("4.4.1", f"No answer from {route.smart_host or route.domain}: "
                                    f"{detail}", permanent=False)

    @classmethod
    async def _open_hop(cls, route: Route, hop: Hop, options: Options,
                        logs: ServiceLogs | None) -> Connection:
        want_tls = route.tls in ("opportunistic", "starttls")
        try:
            return await cls._connect(route, hop, options, logs, starttls=want_tls)
        except _TlsFailed as exc:
            strict = route.tls in ("starttls", "implicit") or (
                route.smart_host is not None and route.tls_verify)
            if strict:
                raise RouteFailure("4.7.5", f"TLS with {hop.host} failed: {exc}",
                                   permanent=False) from None
        return await cls._connect(route, hop, options, logs, starttls=False)

    @classmethod
    async def _connect(cls, route: Route, hop: Hop, options: Options,
                       logs: ServiceLogs | None, *, starttls: bool) -> Connection:
        implicit = route.tls == "implicit"
        context = _CONTEXTS[bool(route.tls_verify)]
        client = aiosmtplib.SMTP(
            hostname=hop.address, port=hop.port, local_hostname=options.ehlo,
            source_address=(options.source_ip, 0) if options.source_ip else None,
            timeout=options.timeout, use_tls=implicit, start_tls=False,
            tls_context=context if implicit else None)
        try:
            greeting = await client.connect()
        except aiosmtplib.SMTPConnectResponseError as exc:
            client.close()
            raise RouteFailure("4.4.2", f"greeting {exc.code} {exc.message}",
                               permanent=False) from None
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            if implicit:
                raise _TlsFailed(str(exc)) from None
            raise RouteFailure("4.4.1", f"connect: {exc}", permanent=False) from None
        connection = cls(client, hop, logs, implicit)
        connection._log("(connect)", "", _reply(greeting))
        try:
            await connection._hello()
            if starttls and client.supports_extension("starttls"):
                try:
                    response = await client.starttls(server_hostname=hop.host,
                                                     tls_context=context)
                except (TimeoutError, aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
                    connection._log("STARTTLS", "", Reply(0, f"failed: {exc}"))
                    connection.close()
                    raise _TlsFailed(str(exc)) from None
                connection._log("STARTTLS", "", _reply(response))
                connection.tls = True
                await connection._hello()
            elif route.tls == "starttls":
                connection.close()
                raise _TlsFailed(f"{hop.host} does not offer STARTTLS")
            if route.username:
                await connection._login(route)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError,
                OSError) as exc:
            connection.close()
            raise RouteFailure("4.4.2", f"{hop.host}: {exc}", permanent=False) from None
        try:
            connection._take_over(options.timeout)
        finally:
            connection.flush()
        return connection

    async def _hello(self) -> None:
        try:
            response = await self.client.ehlo()
            self._log("EHLO", self.client.local_hostname or "", _reply(response))
        except aiosmtplib.SMTPHeloError as exc:
            self._log("EHLO", self.client.local_hostname or "", Reply(exc.code, exc.message))
            try:
                response = await self.client.helo()
            except aiosmtplib.SMTPHeloError as exc2:
                self.close()
                raise RouteFailure("4.4.2", f"HELO refused: {exc2.code} {exc2.message}",
                                   permanent=False) from None
            self._log("HELO", self.client.local_hostname or "", _reply(response))

    async def _login(self, route: Route) -> None:
        methods = self.client.server_auth_methods
        try:
            if "plain" in methods:
                response = await self.client.auth_plain(route.username, route.password)
                self._log("AUTH", "PLAIN ****", _reply(response))
            elif "login" in methods:
                response = await self.client.auth_login(route.username, route.password)
                self._log("AUTH", "LOGIN ****", _reply(response))
            else:
                self.close()
                raise RouteFailure("4.7.0", f"{self.hop.host} offers neither AUTH PLAIN nor "
                                            "LOGIN", permanent=False)
        except aiosmtplib.SMTPAuthenticationError as exc:
            self._log("AUTH", "****", Reply(exc.code, exc.message))
            self.close()
            raise RouteFailure("4.7.0", f"{self.hop.host} refused our login: {exc.code} "
                                        f"{exc.message}", permanent=False) from None

    # -- transactions -----------------------------------------------------------------------

    def _take_over(self, timeout: float) -> None:
        """From now on the transport talks to :class:`_Wire` (see the module docstring)."""
        transport = self.client.transport
        if transport is None or transport.is_closing():
            raise RouteFailure("4.4.2", f"{self.hop.host}: connection closed",
                               permanent=False)
        self._extensions = dict(self.client.esmtp_extensions)
        wire = _Wire(transport, timeout)
        transport.set_protocol(wire)
        self._wire = wire

    async def transaction(self, sender: str, mail_options: list[str],
                          recipients: list[tuple[str, str, list[str]]], data: bytes,
                          message_id: str = "") -> tuple[Reply | None, dict[str, Reply]]:
        """MAIL, RCPT for each ``(key, address, options)``, DATA.

        Returns the MAIL reply when it refused (then no recipient was tried) and each
        recipient's reply: its RCPT refusal, else the reply to the data. Raises
        :class:`ConnectionLost` when the connection breaks (or the server says 421);
        the caller defers all."""
        self.message_id = message_id
        self.transactions += 1
        wire = self._wire
        assert wire is not None, "transaction before the session was opened"
        encoding = "utf-8" if "SMTPUTF8" in mail_options else "ascii"
        mail_params = f"FROM:<{sender}> {' '.join(mail_options)}".rstrip()
        mail_line = _command("MAIL", mail_params, encoding)
        rcpt_params = [f"TO:<{address}> {' '.join(options)}".rstrip()
                       for _, address, options in recipients]
        rcpt_lines = [_command("RCPT", params, encoding) for params in rcpt_params]
        pipelined = "pipelining" in self._extensions
        try:
            if pipelined:
                wire.send(b"".join((mail_line, *rcpt_lines, b"DATA\r\n")))
            else:
                wire.send(mail_line)
            mail = await wire.reply()
            self._log("MAIL", mail_params, mail)
            if mail.code == 421:
                self.close()
                return mail, {}
            if not pipelined and not mail.ok:
                await self._reset()
                return mail, {}
            results: dict[str, Reply] = {}
            accepted: list[str] = []
            for (key, _, _), line, params in zip(recipients, rcpt_lines, rcpt_params,
                                                 strict=True):
                if not pipelined:
                    wire.send(line)
                reply = await wire.reply()
                self._log("RCPT", params, reply)
                if reply.code == 421:
                    self.close()
                    raise ConnectionLost(reply.text)
                results[key] = reply
                if reply.ok:
                    accepted.append(key)
            if not pipelined and not accepted:
                await self._reset()
                return None, results
            if not pipelined:
                wire.send(b"DATA\r\n")
            final = await wire.reply()
            if final.code == 354:
                if mail.ok and accepted:
                    wire.send(wire_data(data))
                    final = await wire.reply()
                    self._log("DATA", f"{len(data)} octets", final, sent=len(data))
                else:       # RFC 2920 says the server refuses DATA here; this one did not
                    wire.send(b".\r\n")
                    final = await wire.reply()
                    self._log("DATA", "0 octets (no recipient was accepted)", final)
            else:
                self._log("DATA", f"{len(data)} octets" if mail.ok and accepted else "",
                          final)
            if final.code == 421:
                self.close()
                raise ConnectionLost(final.text)
            if not mail.ok:
                await self._reset()
                return mail, {}
            if not accepted:
                await self._reset()
                return None, results
            for key in accepted:
                results[key] = final
            if not final.ok:
                await self._reset()
            return None, results
        except _Broken as exc:
            self._log("(lost)", "", Reply(0, str(exc)))
            self.close()
            raise ConnectionLost(f"{self.remote}: {exc}") from None
        finally:
            self.flush()

    async def _reset(self) -> None:
        wire = self._wire
        if wire is not None and wire.connected:
            wire.send(b"RSET\r\n")
            self._log("RSET", "", await wire.reply())

    async def quit(self) -> None:
        try:
            wire = self._wire
            if wire is not None and wire.connected:
                wire.send(b"QUIT\r\n")
                self._log("QUIT", "", await asyncio.wait_for(wire.reply(), 5))
            elif wire is None and self.client.is_connected:
                response = await asyncio.wait_for(self.client.quit(), 5)
                self._log("QUIT", "", _reply(response))
        except Exception:       # the peer may already be gone: nothing to lose
            pass
        finally:
            self.close()

    def close(self) -> None:
        if self._wire is not None:
            self._wire.close()
        self.client.close()
        self.flush()

    # -- logs -------------------------------------------------------------------------------

    def _log(self, command: str, params: str, reply: Reply, *, sent: int = 0) -> None:
        transcript = self._transcript
        if transcript is None:
            return
        text = reply.text
        transcript.write_command(
            command, params, text, w3c_status=reply.code, w3c_stem=text, version="ESMTP",
            sent=sent + len(command) + len(params) + 3, received=len(text) + 2,
            host=self.hop.host, message_id=self.message_id, w3c_sent=sent + len(params),
            w3c_received=len(text))

    def note(self, text: str) -> None:
        if self._transcript is not None:
            self._transcript.note(text)

    def flush(self) -> None:
        if self._transcript is not None:
            self._transcript.flush()


class _TlsFailed(Exception):
    """The TLS handshake (STARTTLS or implicit) did not succeed."""


class _Broken(Exception):
    """The connection ended or the server stopped making sense (internal to a
    transaction: becomes :class:`ConnectionLost`)."""


def _command(verb: str, params: str, encoding: str) -> bytes:
    """One command line; no control characters in what came from the envelope."""
    line = f"{verb} {params}".encode(encoding)
    if _CONTROL.search(line):
        raise ValueError(f"{verb} argument contains a control character")
    return line + b"\r\n"


_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


def wire_data(data: bytes) -> bytes:
    """The message as sent after DATA's 354: CRLF line ends, a final CRLF, leading dots
    doubled (RFC 5321 §4.5.2), then the end-of-data line."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
        data = _LINE_ENDS.sub(b"\r\n", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b"."):
        data = b"." + data
    if b"\n." in data:
        data = data.replace(b"\n.", b"\n..")
    return data + b".\r\n"


class _Wire(asyncio.Protocol):
    """The transport's protocol once the session is open: every reply is parsed as it
    arrives and queued, so several commands may be answered in one read."""

    def __init__(self, transport: asyncio.BaseTransport, timeout: float) -> None:
        self.transport: Any = transport
        self.timeout = timeout
        self.replies: deque[Reply] = deque()
        self.error: str | None = None       # why the connection ended
        self._buffer = bytearray()
        self._lines: list[bytes] = []       # the reply being read (continuation lines)
        self._waiter: asyncio.Future[None] | None = None

    @property
    def connected(self) -> bool:
        return self.error is None and not self.transport.is_closing()

    def send(self, data: bytes) -> None:
        if not self.connected:
            raise _Broken(self.error or "connection closed")
        self.transport.write(data)

    async def reply(self) -> Reply:
        """The next reply (already received, or awaited up to ``timeout`` seconds)."""
        while not self.replies:
            if self.error is not None:
                raise _Broken(self.error)
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(self.timeout):
                    await waiter
            except TimeoutError:
                raise _Broken(f"no reply within {self.timeout:g} seconds") from None
            finally:
                self._waiter = None
        return self.replies.popleft()

    def close(self) -> None:
        if self.error is None:
            self.error = "connection closed"
        self.transport.close()
        self._wake()

    # -- asyncio.Protocol -------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = bytes(buffer[start:end + 1])
            start = end + 1
            if len(line) > LINE_LIMIT or not line[:3].isdigit():
                self._fail(f"malformed reply {line[:60]!r}")
                return
            if line[:1] not in _REPLY_CLASSES:
                # RFC 5321 §4.2.1: a client SHOULD treat a first digit other than 2-5
                # as a fatal error and end the transaction. Ending the connection
                # defers the recipients (retried later) instead of bouncing them for a
                # code no server may send.
                self._fail(f"reply code out of range {line[:60]!r}")
                return
            self._lines.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] != b"-":
                text = b" ".join(self._lines).decode("utf-8", "surrogateescape")
                self._lines = []
                code = int(line[:3])
                self.replies.append(Reply(code, f"{code} {' '.join(text.split())}"
                                          [:REPLY_LIMIT]))
        del buffer[:start]
        if len(buffer) > PENDING_LIMIT or len(self._lines) > 1000:
            self._fail("reply too long")
            return
        self._wake()

    def eof_received(self) -> bool:
        if self.error is None:
            self.error = "connection closed by the server"
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.error is None:
            self.error = str(exc) if exc else "connection closed by the server"
        self._wake()

    def _fail(self, why: str) -> None:
        self.error = why
        self.transport.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
