"""One inbound SMTP session: protocol events in, policy at each stage, replies out.

Manual 6.2.3 (SMTP connector), RFC 5321, RFC 3207 (STARTTLS), RFC 4954 (AUTH), RFC
2920 (PIPELINING), RFC 3030 (CHUNKING). The protocol core
(:class:`~.protocol.SmtpServerProtocol`) parses; :class:`~.policy.InboundPolicy`
decides; this module glues them and owns the effects: DNS look-ups the policy asks
for, the SASL exchange (:mod:`.auth`), the body spool (:mod:`.spool`), the durable
enqueue into ``MTA.inbound`` and the logs (:mod:`.transcript`).

The accept path (ARCHITECTURE "Never say yes before it is durable"): at DATA (or the
first BDAT chunk) a tracking id is made and the Received header written; chunks go
to the spool as they arrive; at the end of data the policy sees the header block and
the size, then the body and envelope go to ``store.queue.enqueue_async``, which
returns once a group-commit flush made them durable together with the other
sessions' messages, and only then is ``250 2.0.0 OK queued as <tracking id>`` sent.
A client that disconnects before that leaves nothing in the queue.

Replies are collected and written once per batch, when the protocol needs more
bytes (pipelining: one write for MAIL, RCPT..., DATA's replies).

Envelope recipients are connector addresses: the address map target of a hosted
recipient (``[SF:po/mailbox]``; catch-all duplicates collapse into one), else
``[SMTP:address]`` (relay, smart-hosted domain). ``extra`` holds the HELO name, TLS,
the listener, DSN ``ret``/``envid``, ``smtputf8``, ``body`` and per recipient the
address given, ``notify`` and ``orcpt``, plus the policy flags (``no-ptr`` ...).

Untrusted input: everything the client sends (parsed by the core) and the DNS answers
(typed by :mod:`postroom.net.dns`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from postroom.auth.logins import last_login_from
from postroom.connectors.smtp import events as ev
from postroom.connectors.smtp import headers as hdr
from postroom.connectors.smtp import wire
from postroom.connectors.smtp.auth import (
    Authenticator,
    Challenge,
    Credentials,
    Identity,
    SaslExchange,
)
from postroom.connectors.smtp.policy import Facts, InboundPolicy, SessionFacts, Verdict
from postroom.connectors.smtp.policy.submission import plaintext_auth_allowed
from postroom.connectors.smtp.protocol import (
    CLOSED,
    NEED_DATA,
    ProtocolError,
    SmtpFeatures,
    SmtpServerProtocol,
    State,
)
from postroom.connectors.smtp.spool import Spool, received_header, received_protocol
from postroom.connectors.smtp.transcript import Transcript
from postroom.net import dns
from postroom.net.tls import ServerTls
from postroom.store.queue import Envelope, new_tracking_id
from postroom.store.tracking import TrackingEvent

if TYPE_CHECKING:
    import ssl

    from postroom.logs import ServiceLogs
    from postroom.store import Store

log = logging.getLogger("postroom.smtp")

INBOUND_QUEUE = "MTA.inbound"
READ_SIZE = 256 * 1024


class Stream(Protocol):
    """What a session needs of its connection (``server.Connection``)."""

    async def read(self, timeout: float) -> bytes: ...
    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    async def start_tls(self, context: ssl.SSLContext, timeout: float) -> str | None: ...
    def close(self) -> None: ...


class Completions:
    """Queue-writer futures handed back to the event loop in bulk.

    ``asyncio.wrap_future`` costs one ``call_soon_threadsafe`` (a wake-up of the loop)
    per message; the group-commit writer completes a whole batch at once, so here
    the first completion of a batch schedules one callback that resolves every
    waiting session. Cancelling the waiter cancels the writer's future (a message
    not yet taken by the writer is then never queued), as ``wrap_future`` does.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._done: list[tuple[Future[Any], asyncio.Future[Any]]] = []
        self._lock = threading.Lock()

    async def wait(self, future: Future[Any]) -> Any:
        waiter = self.loop.create_future()
        future.add_done_callback(lambda done: self._completed(done, waiter))
        try:
            return await waiter
        except asyncio.CancelledError:
            future.cancel()
            raise

    def _completed(self, future: Future[Any], waiter: asyncio.Future[Any]) -> None:
        with self._lock:   # any thread: the writer's, or ours if already done
            self._done.append((future, waiter))
            first = len(self._done) == 1
        if first:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                self.loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            done, self._done = self._done, []
        for future, waiter in done:
            if waiter.done():
                continue
            if future.cancelled():
                waiter.cancel()
                continue
            error = future.exception()
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(future.result())


@lru_cache(maxsize=64)
def _welcome(text: str, hostname: str, now: str) -> str:
    """The alternate welcome text with its tokens filled in, on one line, without the
    host name the greeting puts first (made once per text: every connection asks)."""
    text = text.replace("%LOCALDOMAIN%", hostname).replace("%TIME%", now)
    text = " ".join(text.split())
    if text.lower().startswith(hostname.lower()):
        text = text[len(hostname):].strip()
    return text


@dataclass
class ServerContext:
    """What every session of one service shares."""

    store: Store
    policy: InboundPolicy
    authenticator: Authenticator
    logs: ServiceLogs
    tls: ServerTls | None
    resolver: Callable[[], dns.Resolver]
    hostname: Callable[[], str]
    connection_ids: Callable[[], int]
    handshake_timeout: float = 30.0
    _completions: Completions | None = None

    def completions(self) -> Completions:
        """The bulk completer of the running loop (made on first use)."""
        completions = self._completions
        if completions is None or not completions.loop.is_running():
            completions = self._completions = Completions(asyncio.get_running_loop())
        return completions


@dataclass
class _Rcpt:
    address: str
    target: str
    catchall: bool
    notify: tuple[str, ...] | None
    orcpt: str | None


@dataclass
class _Transaction:
    mail: ev.MailFrom
    flags: set[str] = field(default_factory=set)
    rcpts: list[_Rcpt] = field(default_factory=list)
    tracking_id: str = ""
    spool: Spool | None = None
    headers: hdr.HeaderCollector | None = None
    refusal: Verdict | None = None


# Per Settings object (weakly: not by id(), which a later object may reuse with the
# same generation number), then by generation, TLS state and loopback-ness.
_PROTOCOL_SETTINGS: weakref.WeakKeyDictionary[
    Any, dict[tuple[Any, ...], tuple[SmtpFeatures, int | None, int]]] = \
    weakref.WeakKeyDictionary()


class SmtpSession:
    """Drives one connection from greeting to close (see the module docstring)."""

    def __init__(self, ctx: ServerContext, stream: Stream, *, listener: str, client_ip: str,
                 server_ip: str, server_port: int, tls: str | None = None) -> None:
        self.ctx = ctx
        self.stream = stream
        self.settings = ctx.store.settings
        self.facts = SessionFacts(client_ip=client_ip, listener=listener,  # type: ignore[arg-type]
                                  server_ip=server_ip, tls=tls is not None)
        self.tls_info = tls
        self.hostname = ctx.hostname()
        self.log = Transcript(ctx.logs, ctx.connection_ids(), str(self.facts.client_ip),
                              server_ip, server_port, buffered=True,
                              loop=getattr(stream, "loop", None))
        self.proto = self._protocol(tls is not None)
        self.identity: Identity | None = None
        self.transaction: _Transaction | None = None
        self.sasl: SaslExchange | None = None
        self.auth_failures = 0
        self.out = bytearray()
        self.received = 0
        self.pop_login_checked = False
        self.pop_login_at: float | None = None
        self.busy = False
        """True while a message is being committed (the service lets that finish)."""

    # -- set-up ----------------------------------------------------------------------

    def _protocol(self, tls_active: bool) -> SmtpServerProtocol:
        features, max_size, max_rcpt = self._protocol_settings(tls_active)
        return SmtpServerProtocol(features=features, tls_active=tls_active,
                                  max_message_size=max_size, max_recipients=max_rcpt)

    def _protocol_settings(self, tls_active: bool) -> tuple[SmtpFeatures, int | None, int]:
        """What the protocol core needs from the settings; the same for every session
        of one settings generation (and TLS state and loopback-ness), so computed once
        per combination rather than per connection."""
        loopback = self.facts.client_ip.is_loopback
        key = (getattr(self.settings, "_generation", None), self.ctx.tls is not None,
               tls_active, loopback)
        try:
            known = _PROTOCOL_SETTINGS.setdefault(self.settings, {})
        except TypeError:           # not weakly referenceable: compute each time
            known = {}
        cached = known.get(key) if key[0] is not None else None
        if cached is not None:
            return cached
        get = self.settings.get
        limit = get("smtp.inbound.advertised_max_message_size") or None
        allowed = {c.upper() for c in get("smtp.advanced.allowed_commands")}
        optional = {"VRFY", "EXPN", "HELP", "BDAT", "STARTTLS", "AUTH", "NOOP", "RSET"}
        plaintext = plaintext_auth_allowed(
            self.settings, SessionFacts(client_ip=self.facts.client_ip, tls=False))
        features = SmtpFeatures(
            starttls=self.ctx.tls is not None and bool(get("smtp.general.tls_enabled")),
            auth_mechanisms=self.ctx.authenticator.mechanisms() if "AUTH" in allowed else (),
            auth_plaintext_without_tls=plaintext,
            vrfy="VRFY" in allowed, expn="EXPN" in allowed,
            chunking="BDAT" in allowed,
            disabled_commands=frozenset(optional - allowed - {"VRFY", "EXPN"}),
        )
        result = (features,
                  limit if get("smtp.inbound.enforce_max_message_size") else None,
                  get("smtp.security.max_recipients_per_message") + 1
                  if get("smtp.security.max_recipients_per_message_enabled") else 1_000_000)
        if key[0] is not None:
            if len(known) > 64:
                known.clear()
            known[key] = result
        return result

    # -- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        policy = self.ctx.policy
        verdict = policy.on_connect(self.facts)
        counted = verdict.accepted
        try:
            if not verdict.accepted:
                assert verdict.reply is not None
                self.log.note(f"connection refused ({verdict.reason}) {verdict.detail}")
                self._send(None, verdict.reply)
                if verdict.drop or verdict.reply.code == 421:
                    return
            else:
                self._send(None, wire.greeting(self.hostname, self._banner()))
            await self._loop()
        except (ConnectionError, TimeoutError) as exc:
            self.log.note(f"connection lost: {exc.__class__.__name__}")
        finally:
            # The logs first: a client that saw our last reply finds its lines written.
            try:
                self.log.flush()
            except OSError as exc:
                log.warning("cannot write the SMTP logs: %s", exc)
            await self._flush(final=True)
            self._abort_transaction()
            self.stream.close()
            if counted:
                policy.on_disconnect(self.facts)

    def _banner(self) -> str:
        """Manual 6.2.3.6 alternate welcome message, tokens %LOCALDOMAIN% and %TIME%."""
        if not self.settings.get("smtp.security.alternate_welcome_enabled"):
            return "ESMTP Postroom"
        text = str(self.settings.get("smtp.security.alternate_welcome_text"))
        now = time.strftime("%a, %d %b %Y %H:%M:%S %z") if "%TIME%" in text else ""
        return _welcome(text, self.hostname, now)

    async def _loop(self) -> None:
        proto = self.proto
        get = self.settings.get
        command_timeout = float(get("smtp.inbound.command_timeout"))
        data_timeout = float(get("smtp.inbound.data_timeout"))
        while True:
            try:
                event = proto.next_event()
            except ProtocolError as err:
                self._send(None, err.reply)
                if err.fatal or not await self._after_refusal():
                    return
                continue
            if event is NEED_DATA:
                await self._flush()
                timeout = data_timeout if proto.state is State.DATA else command_timeout
                try:
                    data = await self.stream.read(timeout)
                except TimeoutError:
                    self.log.note("timeout waiting for the client")
                    self._send(None, wire.TIMEOUT)
                    return
                self.received += len(data)
                proto.receive_data(data)
                continue
            if event is CLOSED:
                return
            assert isinstance(event, ev.Event)
            if not event.needs_reply:
                self._chunk(event)
                continue
            reply, verdict = await self._handle(event)
            self._send(event, reply)
            if isinstance(event, ev.Quit):
                return
            if verdict is not None and verdict.drop:
                return
            if isinstance(event, ev.StartTls) and reply.code == 220 and not await self._tls():
                return
            if reply.code >= 400 and not await self._after_refusal():
                return

    def _send(self, event: ev.Event | None, reply: wire.Reply) -> None:
        data = self.proto.send(reply)
        self.out += data
        self.log.command(event, reply, len(data), self.received)
        self.received = 0

    async def _flush(self, *, final: bool = False) -> None:
        if self.out:
            data, self.out = bytes(self.out), bytearray()
            try:
                self.stream.write(data)
                await self.stream.drain()
            except (ConnectionError, OSError):
                if not final:
                    raise

    async def _after_refusal(self) -> bool:
        """Count a refused command (manual 6.2.3.6); False when the client is dropped."""
        self.facts.counters.failed_commands += 1
        verdict = self.ctx.policy.on_failed_command(self.facts)
        if verdict.accepted:
            return True
        if verdict.flags and "add-ip-to-deny-list" in verdict.flags:
            self._deny_ip()
        self.log.note(f"dropping the client: {verdict.reason} {verdict.detail}")
        if verdict.reply is not None:
            self._send(None, verdict.reply)
        return False

    def _deny_ip(self) -> None:
        settings = self.settings
        if settings.get("smtp.inbound.access_control_mode") != "deny_listed":
            return
        current = list(settings.get("smtp.inbound.access_control_list"))
        ip = str(self.facts.client_ip)
        if ip not in current:
            settings.set("smtp.inbound.access_control_list", [*current, ip])
            self.log.note(f"added {ip} to the denied IP addresses")

    # -- commands ----------------------------------------------------------------------

    async def _handle(self, event: ev.Event) -> tuple[wire.Reply, Verdict | None]:
        policy, facts = self.ctx.policy, self.facts
        match event:
            case ev.Ehlo(name=name) | ev.Helo(name=name):
                verdict = policy.on_helo(facts, name)
                if not verdict.accepted:
                    return self._refused(verdict)
                facts.helo = self.log.helo = name
                self._abort_transaction()
                if isinstance(event, ev.Ehlo):
                    return self.proto.ehlo_response(self.hostname, f"Hello {name}"), None
                return wire.hello(self.hostname, name), None
            case ev.MailFrom():
                return await self._mail(event)
            case ev.RcptTo():
                return self._rcpt(event)
            case ev.DataStart():
                verdict = self._open_body()
                if verdict is not None:
                    return self._refused(verdict)
                return wire.START_MAIL_INPUT, None
            case ev.DataEnd():
                return await self._end_of_data(event.size, event.refusal)
            case ev.BdatEnd():
                if self.transaction is not None and self.transaction.spool is None:
                    self._open_body()
                if not event.last and event.refusal is None and self._bdat_ok():
                    return wire.bdat_received(event.size), None
                return await self._end_of_data(event.message_size, event.refusal)
            case ev.Rset():
                self._abort_transaction()
                return wire.RESET_OK, None
            case ev.Noop():
                return wire.OK, None
            case ev.Quit():
                return wire.closing(self.hostname), None
            case ev.Help():
                return wire.help_text("See RFC 5321 and https://www.rfc-editor.org"), None
            case ev.Vrfy():
                return wire.CANNOT_VRFY, None
            case ev.Expn():
                return wire.NOT_IMPLEMENTED, None
            case ev.StartTls():
                if self.ctx.tls is None:
                    return wire.TLS_NOT_AVAILABLE, None
                return wire.READY_TO_START_TLS, None
            case ev.AuthStart():
                verdict = policy.on_auth(facts, event.mechanism)
                if not verdict.accepted:
                    return self._refused(verdict)
                self.sasl = SaslExchange(event.mechanism, self.hostname)
                return await self._sasl_step(self.sasl.start(event.initial_response)), None
            case ev.AuthResponse():
                assert self.sasl is not None
                return await self._sasl_step(self.sasl.respond(event.data)), None
            case ev.AuthCancelled():
                self.sasl = None
                return wire.AUTH_CANCELLED, None
        return wire.NOT_IMPLEMENTED, None

    def _refused(self, verdict: Verdict) -> tuple[wire.Reply, Verdict]:
        assert verdict.reply is not None
        self.log.note(f"refused ({verdict.reason}) {verdict.detail}".rstrip())
        return verdict.reply, verdict

    async def _mail(self, event: ev.MailFrom) -> tuple[wire.Reply, Verdict | None]:
        policy, facts = self.ctx.policy, self.facts
        refresh = getattr(policy.directory, "refresh", None)
        if refresh is not None:
            refresh()           # directory changes apply from the next transaction on
        if facts.ptr_names is None and policy.wants_ptr_lookup(facts):
            await self._lookup_ptr()
        resolves: bool | None = None
        if policy.wants_sender_domain_lookup(event.path):
            try:
                resolves = await self.ctx.resolver().domain_exists(event.path.domain)
            except dns.DnsInputError:
                resolves = False
            except dns.DnsError as exc:
                self.log.note(f"sender domain lookup failed: {exc}")
        verdict = policy.on_mail(facts, event.path, Facts(sender_domain_resolves=resolves))
        if not verdict.accepted:
            return self._refused(verdict)
        facts.mail_from = event.path
        facts.counters.recipients = 0
        self.transaction = _Transaction(event, set(verdict.flags))
        return wire.SENDER_OK, None

    async def _lookup_ptr(self) -> None:
        try:
            self.facts.ptr_names = tuple(await self.ctx.resolver().ptr(str(self.facts.client_ip)))
        except (dns.NxDomain, dns.NoData):
            self.facts.ptr_names = ()
        except dns.DnsError as exc:
            self.facts.ptr_lookup_failed = True
            self.log.note(f"PTR lookup failed: {exc}")

    def _pop_login_at(self) -> float | None:
        if self.pop_login_checked or not self.settings.get("smtp.relay.pop_before_smtp_enabled"):
            return self.pop_login_at
        self.pop_login_checked = True
        self.pop_login_at = last_login_from(self.ctx.store, str(self.facts.client_ip), "pop")
        return self.pop_login_at

    def _rcpt(self, event: ev.RcptTo) -> tuple[wire.Reply, Verdict | None]:
        transaction = self.transaction
        assert transaction is not None
        facts = Facts(last_pop_login_at=self._pop_login_at())
        verdict = self.ctx.policy.on_rcpt(self.facts, event.path, facts)
        if not verdict.accepted:
            return self._refused(verdict)
        self.facts.counters.recipients += 1
        address = event.path.address
        target = verdict.target or f"[SMTP:{address}]"
        transaction.flags |= verdict.flags
        transaction.rcpts.append(_Rcpt(address, target, "catchall" in verdict.flags,
                                       event.notify, event.orcpt))
        return wire.RECIPIENT_OK, None

    # -- the body ----------------------------------------------------------------------

    def _open_body(self) -> Verdict | None:
        transaction = self.transaction
        assert transaction is not None
        verdict = self.ctx.policy.on_data(self.facts)
        if not verdict.accepted:
            transaction.refusal = verdict
            return verdict
        transaction.tracking_id = new_tracking_id()
        self.log.message_id = transaction.tracking_id
        transaction.spool = Spool(self.ctx.store.home.tmp, self._prefix(transaction))
        transaction.headers = hdr.HeaderCollector()
        return None

    def _prefix(self, transaction: _Transaction) -> bytes:
        get = self.settings.get
        catchall = [r.address for r in transaction.rcpts if r.catchall]
        alternate = catchall and get("smtp.advanced.alternate_catchall_header_enabled")
        if len(transaction.rcpts) == 1:
            listed = [transaction.rcpts[0].address]
        else:
            listed = [] if alternate else catchall
        hide = self.facts.is_authenticated and get("smtp.security.hide_ip_in_headers")
        ip = "127.0.0.1" if hide else str(self.facts.client_ip)
        ptr = None if hide or not self.facts.ptr_names else self.facts.ptr_names[0]
        prefix = received_header(
            helo=self.facts.helo, client_ip=ip, ptr_name=ptr, hostname=self.hostname,
            protocol=received_protocol(self.proto.esmtp, self.facts.tls, self.identity is not None),
            tracking_id=transaction.tracking_id, tls=self.tls_info, recipients=listed)
        if alternate:
            name = str(get("smtp.advanced.alternate_catchall_header_name") or "")
            name = name or "X-Catchall-Recipient"
            prefix += hdr.fold(name, catchall)
        return prefix

    def _chunk(self, event: ev.Event) -> None:
        transaction = self.transaction
        if transaction is None:
            return
        if transaction.spool is None and transaction.refusal is None:
            self._open_body()
        spool = transaction.spool
        if spool is None:
            return
        data = event.data  # type: ignore[attr-defined]
        spool.write(data)
        headers = transaction.headers
        if headers is not None and not headers.complete:
            headers.feed(data)

    def _bdat_ok(self) -> bool:
        return self.transaction is not None and self.transaction.refusal is None

    async def _end_of_data(self, size: int, refusal: wire.Reply | None,
                           ) -> tuple[wire.Reply, Verdict | None]:
        transaction, self.transaction = self.transaction, None
        self.facts.new_transaction()
        if transaction is None:
            return wire.TRANSACTION_FAILED, None
        try:
            if refusal is not None:
                self.log.note(f"message refused: {refusal.lines[0]} ({size} octets)")
                return refusal, None
            if transaction.refusal is not None:
                return self._refused(transaction.refusal)
            assert transaction.spool is not None and transaction.headers is not None
            fields = transaction.headers.fields()
            verdict = self.ctx.policy.on_end_of_data(self.facts, fields, size)
            if not verdict.accepted:
                return self._refused(verdict)
            insert = hdr.required_headers("add-message-id" in verdict.flags,
                                          "add-date" in verdict.flags,
                                          transaction.tracking_id, self.hostname)
            body = transaction.spool.finish(insert)
            envelope = self._envelope(transaction, verdict)
            # The "received" tracking step is stored with the entry, in its transaction.
            received = TrackingEvent(
                transaction.tracking_id, "SMTP", "received",
                sender=transaction.mail.path.address,
                recipient=", ".join(r.address for r in transaction.rcpts),
                detail=f"from {self.facts.client_ip} ({self.facts.helo or '-'}) "
                       f"{self.facts.listener} {size} octets")
            self.busy = True
            try:
                future = self.ctx.store.queue.enqueue_async(INBOUND_QUEUE, envelope, body,
                                                            track=(received,))
                entry = await self.ctx.completions().wait(future)
            except Exception as exc:
                log.exception("enqueue failed")
                self.log.note(f"enqueue failed: {exc}")
                return wire.LOCAL_ERROR, None
            finally:
                self.busy = False
            self.facts.counters.messages += 1
            self.log.note(f"message {entry.tracking_id} queued: {size} octets, "
                          f"{len(envelope.recipients)} recipient(s)")
            return wire.Reply(250, "2.0.0", f"OK queued as {entry.tracking_id}"), None
        finally:
            if transaction.spool is not None:
                transaction.spool.discard()
            self.log.message_id = ""

    def _envelope(self, transaction: _Transaction, verdict: Verdict) -> Envelope:
        mail = transaction.mail
        targets = list(dict.fromkeys(r.target for r in transaction.rcpts))
        extra: dict[str, Any] = {
            "helo": self.facts.helo,
            "listener": self.facts.listener,
            "tls": self.tls_info,
            "smtputf8": mail.smtputf8,
            "body": mail.body,
            "ret": mail.ret,
            "envid": mail.envid,
            "rcpt": [{"address": r.address, "target": r.target, "notify": list(r.notify or ()),
                      "orcpt": r.orcpt} for r in transaction.rcpts],
            "flags": sorted(transaction.flags | set(verdict.flags)),
        }
        return Envelope(
            sender=f"[SMTP:{mail.path.address}]" if not mail.path.is_null else "",
            recipients=targets, client_ip=str(self.facts.client_ip),
            auth_user=self.identity.login if self.identity else None,
            tracking_id=transaction.tracking_id, extra=extra)

    def _abort_transaction(self) -> None:
        if self.transaction is not None and self.transaction.spool is not None:
            self.transaction.spool.discard()
        self.transaction = None
        self.facts.new_transaction()

    # -- TLS and AUTH ------------------------------------------------------------------

    async def _tls(self) -> bool:
        await self._flush()
        assert self.ctx.tls is not None
        try:
            self.tls_info = await self.stream.start_tls(self.ctx.tls.context,
                                                        self.ctx.handshake_timeout)
        except (OSError, TimeoutError, ConnectionError) as exc:
            self.log.note(f"TLS handshake failed: {exc}")
            return False
        self.proto.start_tls_done()
        self._abort_transaction()
        self.facts.tls = True
        self.facts.helo = None
        self.facts.authenticated = None
        self.identity = None
        self.log.note(f"TLS started: {self.tls_info}")
        return True

    async def _sasl_step(self, step: object) -> wire.Reply:
        if isinstance(step, Challenge):
            return wire.auth_challenge(step.data)
        self.sasl = None
        if not isinstance(step, Credentials):
            self.log.note(f"AUTH refused: {getattr(step, 'reason', '')}")
            return wire.Reply(501, "5.5.2", "Malformed authentication response")
        identity = await self.ctx.authenticator.verify(step, str(self.facts.client_ip))
        if identity is None:
            self.auth_failures += 1
            self.log.note(f"AUTH {step.mechanism} failed for {step.username!r}")
            await self.ctx.authenticator.fail_delay(self.auth_failures)
            return wire.AUTH_FAILED
        self.proto.auth_done(True, identity.login)
        self.identity = identity
        self.facts.authenticated = identity.facts
        self.log.username = identity.login
        self.log.note(f"AUTH {step.mechanism} succeeded for {identity.login}")
        return wire.AUTH_OK
