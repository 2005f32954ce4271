"""One POP3 connection: the protocol core, the login, the maildrop and the logs glued
over a socket (manual 6.3.4; RFC 1939, 2449, 2595, 3206, 5034).

The session reads what the client sent, feeds it to :class:`.protocol.Pop3Protocol`,
answers every event and writes the answers; a pipelining client's commands are
answered in order. Logins go through :class:`postroom.auth.logins.LoginChecker`
(lockout, Argon2 in a thread pool); the maildrop lock and snapshot and the UPDATE
run in the service's small store pool, never on the event loop. RETR and TOP stream
the message file in chunks through :class:`.wire.CrlfEncoder`, honouring the
socket's flow control, so a large message never sits whole in memory.

A successful login records the client IP in the store's ``login_record`` (service
``pop3``): the SMTP relay rule POP-before-SMTP reads it (manual 6.2.3.5), and the
mailbox's ``last_login_at`` is updated for the administrator.

Abuse: every failed login waits (``failure_delay`` growing with the session's
failures, :func:`postroom.auth.logins.failure_delay`); after
:data:`MAX_AUTH_FAILURES` failures or :data:`MAX_ERRORS` refused commands the
connection is closed. Idle connections are closed after the policy's timeout.

Untrusted input: every byte from the client, handled by the protocol core.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from postroom.auth.logins import LoginChecker, LoginResult, failure_delay, record_login
from postroom.auth.sasl import (
    PLAINTEXT_MECHANISMS,
    Challenge,
    Credentials,
    SaslExchange,
    cram_challenge,
)
from postroom.connectors.smtp.policy.session import client_ip_text
from postroom.logs import ServiceLogs
from postroom.services.pop3 import commands as cmd
from postroom.services.pop3 import policy, wire
from postroom.services.pop3.maildrop import READ_CHUNK, Entry, Maildrop, MaildropError
from postroom.services.pop3.protocol import (
    CLOSED,
    NEED_DATA,
    Pop3Protocol,
    ProtocolError,
    Sentinel,
    State,
)
from postroom.services.pop3.transcript import Transcript

if TYPE_CHECKING:
    from postroom.net.listeners import Connection
    from postroom.net.tls import ServerTls
    from postroom.store import Store

log = logging.getLogger("postroom.pop3")

MAX_AUTH_FAILURES = 10
MAX_ERRORS = 25
SMALL_MESSAGE = 256 * 1024
"""Messages up to this size are sent with one write (read whole: bounded memory)."""
HANDSHAKE_TIMEOUT = 30.0
_GONE = wire.err("message was removed by another session", "SYS/PERM")
_ANSWERED_NOW = frozenset({cmd.Retr, cmd.Dele, cmd.Stat, cmd.List, cmd.Uidl, cmd.Rset,
                           cmd.Noop})
"""TRANSACTION commands answered without waiting (see ``Pop3Session._answer_now``)."""


def _read_small(path: str | os.PathLike[str]) -> bytes:
    """A small message file whole, with bare system calls: ``open()`` builds a buffered
    file object per RETR, a fifth of what reading the file costs (a short read of a
    regular file is its end)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        want = 2 * SMALL_MESSAGE
        data = os.read(fd, want)
        if len(data) < want:
            return data
        parts = [data]
        while chunk := os.read(fd, READ_CHUNK):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


@dataclass
class Pop3Context:
    """What every session of the service shares."""

    store: Store
    logins: LoginChecker
    logs: ServiceLogs
    tls: ServerTls | None
    hostname: Callable[[], str]
    store_pool: ThreadPoolExecutor
    connection_ids: Callable[[], int]
    failure_delay: float = 1.0
    processes: int = 1            # accept processes sharing the ports (limits divide)



class Pop3Session:
    """One client connection (see the module docstring)."""

    def __init__(self, ctx: Pop3Context, conn: Connection, *, listener: str, client_ip: str,
                 server_ip: str, server_port: int, tls: bool, connections: int) -> None:
        self.ctx = ctx
        self.conn = conn
        self.listener = listener
        self.client_ip = client_ip_text(client_ip)
        self.connections = connections
        self.settings: Any = ctx.store.settings
        self.proto = Pop3Protocol(tls=tls)
        self.log = Transcript(ctx.logs, ctx.connection_ids(), self.client_ip, server_ip,
                              server_port)
        self.maildrop: Maildrop | None = None
        self.sasl: SaslExchange | None = None
        self.apop_stamp = b""
        self.auth_failures = 0
        self.busy = False             # in UPDATE: let it finish on shutdown
        # What _answer_now handed over to the task: an event, a ProtocolError, or an
        # exception to raise; and the idle timeout of the read in progress.
        self._held: cmd.Command | Sentinel | BaseException | None = None
        self._idle_timeout = 0.0

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        except (ConnectionError, OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("POP3 session from %s failed", self.client_ip)
            with contextlib.suppress(Exception):
                self._write(wire.TEMPORARY.encode())
        finally:
            if self.maildrop is not None:
                self.maildrop.release()      # nothing deleted: no QUIT in TRANSACTION
                self.maildrop = None
            self.log.flush()
            self.conn.close()

    async def _run(self) -> None:
        settings = self.settings
        refusal = policy.connect_refusal(settings, self.client_ip, self.connections,
                                         self.ctx.processes)
        if refusal is not None:
            text = ("too many connections, try again later" if refusal == "too-many-connections"
                    else "access denied")
            reply = wire.err(text, "SYS/TEMP" if refusal == "too-many-connections" else "")
            self._write(reply.encode())
            self.log.server_line(reply, f"connection refused: {refusal}")
            await self.conn.drain()
            return
        hostname = self.ctx.hostname()
        text = policy.greeting(settings, hostname)
        if policy.apop_offered(settings):
            self.apop_stamp = cram_challenge(hostname)
            text = f"{text} {self.apop_stamp.decode()}"
        greeting = wire.ok(text)
        self._write(greeting.encode())
        self.log.server_line(greeting, f"connection from {self.client_ip} on {self.listener}")
        proto = self.proto
        conn = self.conn
        while True:
            try:
                event = self._next_event()
            except ProtocolError as exc:
                self._write(proto.send_error(exc))
                self.log.command(None, exc.reply, 0, 0)
                if exc.fatal or proto.errors >= MAX_ERRORS:
                    if not exc.fatal:
                        self._write(wire.err("too many errors, closing").encode())
                    self.log.note("closing: too many errors" if not exc.fatal
                                  else "closing: line too long")
                    await self.conn.drain()
                    return
                continue
            if event is CLOSED:
                return
            if event is NEED_DATA:
                await conn.drain()
                self._idle_timeout = policy.idle_timeout(settings)
                conn.answer_now = self._answer_input if self.maildrop is not None else None
                try:
                    data = await conn.read(self._idle_timeout)
                except TimeoutError:
                    reply = wire.err("idle timeout, closing")
                    self._write(reply.encode())
                    self.log.server_line(reply, "idle timeout")
                    return
                finally:
                    conn.answer_now = None
                if not conn.handed_over:
                    proto.receive_data(data)
                continue
            assert isinstance(event, cmd.Command)
            await self._handle(event)
            if proto.state is State.CLOSED or self.auth_failures >= MAX_AUTH_FAILURES:
                if self.auth_failures >= MAX_AUTH_FAILURES:
                    self.log.note("closing: too many failed logins")
                await self.conn.drain()
                return

    def _next_event(self) -> cmd.Command | Sentinel:
        """The next event: one :meth:`_answer_input` handed over first."""
        held = self._held
        if held is None:
            return self.proto.next_event()
        self._held = None
        if isinstance(held, BaseException):
            raise held
        return held

    def _answer_input(self, data: bytes) -> bool:
        """Bytes that arrived while the task waits to read, in TRANSACTION: the commands
        that need no waiting (RETR of a small message, DELE, STAT, LIST, UIDL, NOOP,
        RSET) are answered here, in the transport's callback, as the task would answer
        them (see ``Connection.answer_now``); True when all were, the read waiting on.
        Anything else (QUIT, TOP, a large RETR, an error, a full socket buffer) ends the
        read: the event, or what was raised, is held for the task, which goes on as if
        it had read the bytes itself."""
        proto = self.proto
        try:
            proto.receive_data(data)
            while True:
                try:
                    event = proto.next_event()
                except ProtocolError as exc:
                    self._held = exc
                    return False
                if event is NEED_DATA:
                    self.conn.extend_read(self._idle_timeout)
                    return True
                if not isinstance(event, cmd.Command) or not self._answer_now(event):
                    self._held = event
                    return False
                if self.conn.write_paused:
                    return False
        except Exception as exc:    # for the task to raise: never into the transport
            self._held = exc
            return False

    def _write(self, data: bytes) -> None:
        self.conn.write(data)

    def _answer(self, event: cmd.Command, reply: wire.Reply, body: bytes = b"") -> None:
        data = self.proto.send(reply) + body
        self._write(data)
        self.log.command(event, reply, len(data), 0)

    # -- commands -------------------------------------------------------------------------

    async def _handle(self, event: cmd.Command) -> None:
        match event:
            case cmd.Capa():
                self._answer(event, wire.ok("Capability list follows"),
                             wire.multiline(self._capabilities()))
            case cmd.Quit():
                await self._quit(event)
            case cmd.Stls():
                await self._stls(event)
            case cmd.User():
                self._user(event)
            case cmd.Pass(password=password):
                user = self.proto.username or ""
                await self._login(event, Credentials("USER", user, password))
            case cmd.Apop():
                await self._apop(event)
            case cmd.Auth():
                await self._auth(event)
            case cmd.AuthResponse(data=data):
                await self._sasl_step(event, self.sasl.respond(data) if self.sasl else None)
            case cmd.AuthCancelled():
                self.sasl = None
                self._answer(event, wire.err("authentication cancelled"))
            case _:
                await self._transaction(event)

    def _capabilities(self) -> list[str]:
        settings, tls = self.settings, self.proto.tls
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self.proto.state is State.AUTHORIZATION:
            if policy.user_pass_allowed(settings, tls):
                caps.append("USER")
            mechanisms = policy.sasl_mechanisms(settings, tls)
            if mechanisms:
                caps.append("SASL " + " ".join(mechanisms))
            if not tls and self.ctx.tls is not None:
                caps.append("STLS")
        caps.append("IMPLEMENTATION Postroom")
        return caps

    async def _quit(self, event: cmd.Command) -> None:
        maildrop = self.maildrop
        if self.proto.state is not State.TRANSACTION or maildrop is None:
            self._answer(event, wire.ok(f"{self.ctx.hostname()} POP3 server signing off"))
            return
        self.proto.enter_update()
        self.busy = True
        try:
            loop = asyncio.get_running_loop()
            removed = await loop.run_in_executor(self.ctx.store_pool, maildrop.update)
        except Exception as exc:
            log.exception("POP3 UPDATE failed for %s@%s", maildrop.mailbox, maildrop.postoffice)
            self.log.note(f"UPDATE failed, nothing removed: {exc}")
            self._answer(event, wire.err("some deleted messages not removed", "SYS/TEMP"))
            return
        finally:
            self.busy = False
            maildrop.release()
            self.maildrop = None
        self.log.note(f"UPDATE removed {removed} message(s)")
        self._answer(event, wire.ok(f"{self.ctx.hostname()} POP3 server signing off "
                                    f"({removed} messages deleted)"))

    async def _stls(self, event: cmd.Command) -> None:
        if self.ctx.tls is None:
            self._answer(event, wire.err("TLS is not available"))
            return
        self._answer(event, wire.ok("Begin TLS negotiation"))
        await self.conn.drain()
        try:
            info = await self.conn.start_tls(self.ctx.tls.context, HANDSHAKE_TIMEOUT)
        except (OSError, TimeoutError, ConnectionError) as exc:
            self.log.note(f"TLS handshake failed: {exc}")
            raise ConnectionResetError("TLS handshake failed") from exc
        self.proto.start_tls_done()
        self.log.note(f"TLS started: {info}")

    def _user(self, event: cmd.User) -> None:
        settings = self.settings
        if policy.apop_required(settings):
            self._answer(event, wire.err("this server requires APOP", "AUTH"))
        elif not policy.plaintext_allowed(settings, self.proto.tls):
            self._answer(event, wire.PLAINTEXT_REFUSED)
        else:
            self.log.username = event.username
            self._answer(event, wire.ok("send PASS"))

    async def _apop(self, event: cmd.Apop) -> None:
        if not self.apop_stamp:
            self._answer(event, wire.err("APOP is not available"))
            return
        await self._login(event, Credentials("APOP", event.username, event.digest,
                                             self.apop_stamp))

    async def _auth(self, event: cmd.Auth) -> None:
        mechanisms = policy.sasl_mechanisms(self.settings, self.proto.tls)
        if event.mechanism is None:
            self._answer(event, wire.ok("supported mechanisms follow"),
                         wire.multiline(mechanisms))
            return
        if event.mechanism not in mechanisms:
            if event.mechanism in PLAINTEXT_MECHANISMS and not policy.plaintext_allowed(
                    self.settings, self.proto.tls):
                self._answer(event, wire.PLAINTEXT_REFUSED)
            else:
                self._answer(event, wire.err(f"mechanism {event.mechanism} not supported"))
            return
        self.sasl = SaslExchange(event.mechanism, self.ctx.hostname())
        await self._sasl_step(event, self.sasl.start(event.initial_response))

    async def _sasl_step(self, event: cmd.Command, step: object) -> None:
        if isinstance(step, Challenge):
            data = self.proto.challenge(step.data)
            self._write(data)
            self.log.command(event, wire.ok("(challenge)"), len(data), 0)
            return
        self.sasl = None
        if not isinstance(step, Credentials):
            self.log.note(f"AUTH refused: {getattr(step, 'reason', 'no exchange')}")
            self._answer(event, wire.err("malformed authentication response"))
            return
        await self._login(event, step)

    async def _login(self, event: cmd.Command, credentials: Credentials) -> None:
        result: LoginResult = await self.ctx.logins.check(credentials, self.client_ip)
        if not result.ok or result.identity is None or result.mailbox_id is None:
            self.auth_failures += 1
            self.log.note(f"{credentials.mechanism} login failed for "
                          f"{credentials.username!r}: {result.reason}")
            await failure_delay(self.ctx.failure_delay, self.auth_failures)
            self._answer(event, wire.AUTH_FAILED)
            return
        identity = result.identity
        exclusive = not self.settings.get("pop3.advanced.allow_concurrent_mailbox_access")
        loop = asyncio.get_running_loop()
        try:
            maildrop = await loop.run_in_executor(
                self.ctx.store_pool, self._open_maildrop, identity.postoffice,
                identity.mailbox, result.mailbox_id, exclusive)
        except MaildropError as exc:
            self.log.note(f"maildrop of {identity.login} refused: {exc.reply.line}")
            self._answer(event, exc.reply)
            return
        self.maildrop = maildrop
        self.log.username = identity.login
        self.proto.login_done()
        count, octets = maildrop.stat()
        self.log.note(f"{credentials.mechanism} login of {identity.login}: "
                      f"{count} messages, {octets} octets")
        self._answer(event, wire.ok(f"{identity.login} has {count} messages ({octets} octets)"))

    def _open_maildrop(self, postoffice: str, mailbox: str, mailbox_id: int,
                       exclusive: bool) -> Maildrop:
        maildrop = Maildrop.open(self.ctx.store, postoffice, mailbox, mailbox_id,
                                 exclusive=exclusive)
        try:
            record_login(self.ctx.store, mailbox_id, "pop3", self.client_ip, time.time())
        except Exception:
            maildrop.release()
            raise
        return maildrop

    # -- TRANSACTION ----------------------------------------------------------------------

    async def _transaction(self, event: cmd.Command) -> None:
        if self._answer_now(event):
            return
        try:
            match event:
                case cmd.Retr(msg=number):
                    await self._retrieve(event, number, None)
                case cmd.Top(msg=number, lines=lines):
                    await self._retrieve(event, number, lines)
                case _:
                    self._answer(event, wire.WRONG_STATE)
        except MaildropError as exc:
            self._answer(event, exc.reply)

    def _answer_now(self, event: cmd.Command) -> bool:
        """Answer a TRANSACTION command that needs no waiting; False, having done
        nothing, for one that does (TOP, RETR of a large message: streamed)."""
        maildrop = self.maildrop
        if maildrop is None or type(event) not in _ANSWERED_NOW:
            return False
        try:
            match event:
                case cmd.Retr(msg=number):
                    entry = maildrop.get(number)
                    if entry.octets > SMALL_MESSAGE:
                        return False
                    self._retrieve_small(event, maildrop, entry)
                case cmd.Dele(msg=number):
                    maildrop.delete(number)
                    self._answer(event, wire.ok(f"message {number} deleted"))
                case cmd.Stat():
                    count, octets = maildrop.stat()
                    self._answer(event, wire.ok(f"{count} {octets}"))
                case cmd.List(msg=None):
                    count, octets = maildrop.stat()
                    self._answer(event, wire.ok(f"{count} messages ({octets} octets)"),
                                 wire.multiline(f"{e.number} {e.octets}"
                                                for e in maildrop.live()))
                case cmd.List(msg=int(number)):
                    entry = maildrop.get(number)
                    self._answer(event, wire.ok(f"{entry.number} {entry.octets}"))
                case cmd.Uidl(msg=None):
                    self._answer(event, wire.ok("unique-id listing follows"),
                                 wire.multiline(f"{e.number} {maildrop.uid_of(e)}"
                                                for e in maildrop.live()))
                case cmd.Uidl(msg=int(number)):
                    entry = maildrop.get(number)
                    self._answer(event, wire.ok(f"{entry.number} {maildrop.uid_of(entry)}"))
                case cmd.Rset():
                    maildrop.reset()
                    count, octets = maildrop.stat()
                    self._answer(event, wire.ok(f"maildrop has {count} messages ({octets} "
                                                "octets)"))
                case cmd.Noop():
                    self._answer(event, wire.ok())
        except MaildropError as exc:
            self._answer(event, exc.reply)
        return True

    def _retrieve_small(self, event: cmd.Command, maildrop: Maildrop, entry: Entry) -> None:
        """RETR of a message up to :data:`SMALL_MESSAGE`: status line, message and end
        marker in one write."""
        try:
            text = _read_small(maildrop.file(entry))
        except FileNotFoundError:
            raise MaildropError(_GONE) from None
        reply = wire.ok(f"{entry.octets} octets")
        head = self.proto.send(reply)
        if entry.octets == len(text) and text:      # CRLF already (see stuffed)
            data = wire.stuffed(text, entry.dot_lines, head)
        else:
            encoder = wire.CrlfEncoder()
            data = b"".join((head, encoder.feed(text), encoder.finish()))
        self._write(data)
        self.log.command(event, reply, len(data), 0)

    async def _retrieve(self, event: cmd.Command, number: int, lines: int | None) -> None:
        """RETR of a large message, TOP: streamed in chunks, honouring flow control."""
        maildrop = self.maildrop
        assert maildrop is not None
        entry = maildrop.get(number)
        try:
            handle = open(maildrop.file(entry), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise MaildropError(_GONE) from None
        with handle:
            if lines is None:
                reply = wire.ok(f"{entry.octets} octets")
            else:
                reply = wire.ok("top of message follows")
            head = self.proto.send(reply)
            encoder = wire.CrlfEncoder()
            if lines is not None:
                self._write(head)
                sent = len(head) + await self._top(handle, encoder, lines)
                tail = encoder.finish()
                self._write(tail)
                sent += len(tail)
            else:
                self._write(head)
                sent = len(head)
                while chunk := handle.read(READ_CHUNK):
                    data = encoder.feed(chunk)
                    self._write(data)
                    sent += len(data)
                    await self.conn.drain()
                tail = encoder.finish()
                self._write(tail)
                sent += len(tail)
        self.log.command(event, reply, sent, 0)

    async def _top(self, handle: Any, encoder: wire.CrlfEncoder, lines: int) -> int:
        """Headers, the blank line and ``lines`` body lines (RFC 1939 §7 TOP)."""
        sent = 0
        pending = b""
        in_body = False
        remaining = lines
        while True:
            chunk = handle.read(READ_CHUNK)
            if not chunk:
                break
            pending += chunk
            out = []
            while True:
                end = pending.find(b"\n")
                if end < 0:
                    break
                line, pending = pending[:end + 1], pending[end + 1:]
                if in_body:
                    if remaining <= 0:
                        pending = b""
                        break
                    remaining -= 1
                elif line in (b"\n", b"\r\n"):
                    in_body = True
                out.append(line)
            data = encoder.feed(b"".join(out))
            self._write(data)
            sent += len(data)
            await self.conn.drain()
            if in_body and remaining <= 0 and not pending:
                return sent
        if pending and (not in_body or remaining > 0):
            data = encoder.feed(pending)
            self._write(data)
            sent += len(data)
        return sent
