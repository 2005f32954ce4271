"""One outbound SMTP connection: connect, EHLO, STARTTLS, AUTH, transactions, QUIT.

Manual 6.2.3.4 (outbound options: timeout, IP binding, TLS), 6.2.3.9 (smart host
AUTH); RFC 5321 (the dialogue; §4.5.3.2 time-outs), RFC 3207 (STARTTLS), RFC 4954
(AUTH PLAIN, LOGIN: PLAIN when the server offers it, else LOGIN — the manual names
LOGIN; both send the password, so both only over TLS or to a smart host that was
configured that way on purpose).

Built on aiosmtplib (DEPENDENCIES.md): its ``execute_command`` gives each reply as
code and text, so every recipient gets its own result. STARTTLS is driven here, not
by ``start_tls=None``: a failed handshake towards an MX host (a broken or unverifiable
certificate, a server that offers STARTTLS and cannot do it) closes the connection,
and the next one to the same host is plain text (RFC 7435: opportunistic TLS must not
make mail undeliverable). Towards a smart host with ``tls_verify`` (or
``tls=starttls``/``implicit``) a failed handshake is an error: the mail waits.

Each connection may carry many transactions (connection reuse): after a refused
transaction it sends RSET; a 421 or a lost connection ends it.

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
import ssl
from dataclasses import dataclass
from typing import Any

import aiosmtplib

from postroom.connectors.smtp.outbound.routing import Hop, Route, RouteFailure
from postroom.logs import Direction, ServiceLogs, W3CEntry
from postroom.logs.files import LogBuffer

_connection_ids = itertools.count(1)
REPLY_LIMIT = 512


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
        self._buffers = (LogBuffer(logs.activity), LogBuffer(logs.w3c),
                         LogBuffer(logs.debug)) if logs is not None else None

    @property
    def remote(self) -> str:
        return self.hop.host if self.hop.host == self.hop.address \
            else f"{self.hop.host} [{self.hop.address}]"

    @property
    def extensions(self) -> dict[str, str]:
        return self.client.esmtp_extensions

    @property
    def usable(self) -> bool:
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

    async def transaction(self, sender: str, mail_options: list[str],
                          recipients: list[tuple[str, str, list[str]]], data: bytes,
                          message_id: str = "") -> tuple[Reply | None, dict[str, Reply]]:
        """MAIL, RCPT for each ``(key, address, options)``, DATA.

        Returns the MAIL reply when it refused (then no recipient was tried) and each
        recipient's reply: its RCPT refusal, else the reply to the data. Raises
        :class:`ConnectionLost` when the connection breaks; the caller defers all."""
        self.message_id = message_id
        self.transactions += 1
        client = self.client
        try:
            encoding = "utf-8" if "SMTPUTF8" in mail_options else "ascii"
            response = await client.execute_command(
                b"MAIL", f"FROM:<{sender}>".encode(encoding),
                *(o.encode("ascii") for o in mail_options))
            reply = _reply(response)
            self._log("MAIL", f"FROM:<{sender}> {' '.join(mail_options)}".rstrip(), reply)
            if not reply.ok:
                await self._reset()
                return reply, {}
            results: dict[str, Reply] = {}
            accepted: list[str] = []
            for key, address, options in recipients:
                response = await client.execute_command(
                    b"RCPT", f"TO:<{address}>".encode(encoding),
                    *(o.encode("ascii") for o in options))
                reply = _reply(response)
                self._log("RCPT", f"TO:<{address}> {' '.join(options)}".rstrip(), reply)
                results[key] = reply
                if reply.ok:
                    accepted.append(key)
                elif reply.code == 421:
                    raise ConnectionLost(reply.text)
            if not accepted:
                await self._reset()
                return None, results
            try:
                response = await client.data(data)
                reply = _reply(response)
            except aiosmtplib.SMTPDataError as exc:
                reply = Reply(exc.code, f"{exc.code} {' '.join(exc.message.split())}"
                              [:REPLY_LIMIT])
                if reply.code == 421:
                    raise ConnectionLost(reply.text) from None
            self._log("DATA", f"{len(data)} octets", reply, sent=len(data))
            for key in accepted:
                results[key] = reply
            if not reply.ok:
                await self._reset()
            return None, results
        except (TimeoutError, aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError,
                aiosmtplib.SMTPResponseException, OSError) as exc:
            self._log("(lost)", "", Reply(0, str(exc)))
            self.close()
            raise ConnectionLost(f"{self.remote}: {exc or type(exc).__name__}") from None
        finally:
            self.flush()

    async def _reset(self) -> None:
        if self.client.is_connected:
            response = await self.client.execute_command(b"RSET")
            self._log("RSET", "", _reply(response))

    async def quit(self) -> None:
        try:
            if self.client.is_connected:
                response = await asyncio.wait_for(self.client.quit(), 5)
                self._log("QUIT", "", _reply(response))
        except Exception:       # the peer may already be gone: nothing to lose
            pass
        finally:
            self.close()

    def close(self) -> None:
        self.client.close()
        self.flush()

    # -- logs -------------------------------------------------------------------------------

    def _log(self, command: str, params: str, reply: Reply, *, sent: int = 0) -> None:
        if self._buffers is None:
            return
        logs = self.logs
        assert logs is not None
        activity, w3c, debug = self._buffers
        text = reply.text
        record = logs.activity.record(
            connection_id=self.id, remote_ip=self.hop.address, command=command,
            parameters=params, response=text, bytes_sent=sent + len(command) + len(params) + 3,
            bytes_received=len(text) + 2, message_id=self.message_id,
            direction=Direction.OUT)
        if record is not None:
            activity.add(*record)
        record = logs.w3c.record(W3CEntry(
            c_ip=self.hop.address, cs_method=command, cs_uri_query=params,
            cs_uri_stem=text, sc_status=reply.code, sc_bytes=sent + len(params),
            cs_bytes=len(text), cs_version="ESMTP", cs_host=self.hop.host))
        if record is not None:
            w3c.add(*record)
        for line, from_client in ((f"{command} {params}".rstrip(), False), (text, True)):
            record = logs.debug.record(line, connection_id=f"OUT{self.id}",
                                       from_client=from_client)
            if record is not None:
                debug.add(*record)

    def note(self, text: str) -> None:
        if self._buffers is not None and self.logs is not None:
            record = self.logs.debug.record(text, connection_id=f"OUT{self.id}")
            if record is not None:
                self._buffers[2].add(*record)

    def flush(self) -> None:
        if self._buffers is not None:
            for buffer in self._buffers:
                if buffer:
                    buffer.flush()


class _TlsFailed(Exception):
    """The TLS handshake (STARTTLS or implicit) did not succeed."""
