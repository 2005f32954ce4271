"""Commands of any state and of the not-authenticated state (RFC 3501 §6.1-6.2, RFC 9051
§6.1-6.3): CAPABILITY, NOOP, LOGOUT, ID (RFC 2971), ENABLE (RFC 5161), COMPRESS
(RFC 4978), STARTTLS, LOGIN, AUTHENTICATE (PLAIN, LOGIN, CRAM-MD5; SASL-IR, RFC 4959).
ENABLE knows CONDSTORE, QRESYNC (RFC 7162, which implies CONDSTORE), UTF8=ACCEPT
(RFC 6855) and IMAP4rev2.

Logins go through :class:`postroom.auth.logins.LoginChecker` (service ``imap``): the
same names as POP3 and SMTP (any address of the mailbox, ``mailbox@postoffice``, the
alternate ``@`` characters), the shared lockout, and one answer for every failure
(``NO [AUTHENTICATIONFAILED]``) after the failure delay. Plaintext logins before TLS
are refused with ``NO [PRIVACYREQUIRED]`` unless the setting allows them.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from postroom.auth.logins import failure_delay
from postroom.auth.sasl import Challenge, Credentials, SaslExchange
from postroom.services.imap import commands as cmd
from postroom.services.imap import policy, wire
from postroom.services.imap.framing import CLOSED, RawLine
from postroom.services.imap.session import HANDSHAKE_TIMEOUT, State

if TYPE_CHECKING:
    from postroom.services.imap.session import ImapSession

SERVER_ID = (("name", "Postroom"), ("vendor", "Postroom"), ("support-url", None))


async def capability(s: ImapSession, c: cmd.Command) -> None:
    s.send(wire.untagged("CAPABILITY " + " ".join(s.capabilities())))
    s.done(c, "OK", "CAPABILITY completed")


async def noop(s: ImapSession, c: cmd.Command) -> None:
    await s.sync()
    s.done(c, "OK", f"{c.name} completed")


async def logout(s: ImapSession, c: cmd.Command) -> None:
    s.send(wire.status("BYE", f"{s.ctx.hostname()} IMAP server signing off"))
    s.done(c, "OK", "LOGOUT completed")
    s.state = State.LOGOUT


async def id_(s: ImapSession, c: cmd.Id) -> None:
    if c.parameters:
        s.log.note("client ID: " + ", ".join(f"{k}={v}" for k, v in c.parameters))
    pairs = b" ".join(wire.string(k) + b" " + wire.string(v) for k, v in SERVER_ID
                      if v is not None)
    s.send(wire.untagged(b"ID (" + pairs + b")"))
    s.done(c, "OK", "ID completed")


async def enable(s: ImapSession, c: cmd.Enable) -> None:
    if s.state is not State.AUTHENTICATED and s.state is not State.SELECTED:
        s.done(c, "BAD", "ENABLE: log in first")
        return
    done = []
    for cap in c.capabilities:
        if cap in ("CONDSTORE", "QRESYNC", "UTF8=ACCEPT", "IMAP4REV2"):
            if cap == "UTF8=ACCEPT":
                s.flags.utf8 = True
            if cap in ("CONDSTORE", "QRESYNC"):
                s.flags.condstore = True
            if cap == "QRESYNC":
                # RFC 7162 §3.2: QRESYNC implies CONDSTORE; from the tagged OK on,
                # expunges are announced as VANISHED.
                s.flags.qresync = True
                s.flags.enabled.add("CONDSTORE")
            if cap not in s.flags.enabled:
                s.flags.enabled.add(cap)
                done.append(cap)
    s.send(wire.untagged(" ".join(["ENABLED", *done])))
    s.done(c, "OK", "ENABLE completed")


async def compress(s: ImapSession, c: cmd.Compress) -> None:
    if c.mechanism != "DEFLATE":
        s.done(c, "NO", f"unknown compression mechanism {c.mechanism}", "CANNOT")
        return
    if s._compress is not None:
        s.done(c, "NO", "compression is already active", "COMPRESSIONACTIVE")
        return
    s.done(c, "OK", "DEFLATE active")
    s.start_compression()


async def starttls(s: ImapSession, c: cmd.Command) -> None:
    if s.tls:
        s.done(c, "BAD", "TLS is already active")
        return
    if s.ctx.tls is None:
        s.done(c, "NO", "TLS is not available")
        return
    s.done(c, "OK", "Begin TLS negotiation now")
    await s.conn.drain()
    try:
        info = await s.conn.start_tls(s.ctx.tls.context, HANDSHAKE_TIMEOUT)
    except (OSError, TimeoutError, ConnectionError) as exc:
        s.log.note(f"TLS handshake failed: {exc}")
        raise ConnectionResetError("TLS handshake failed") from exc
    s.tls = True
    s.framing = type(s.framing)(s.framing.append_limit)   # nothing plaintext survives
    s.log.note(f"TLS started: {info}")


async def login(s: ImapSession, c: cmd.Login) -> None:
    if not policy.plaintext_allowed(s.settings, s.tls):
        s.done(c, "NO", "LOGIN is disabled before STARTTLS", "PRIVACYREQUIRED")
        return
    try:
        user, password = c.username.decode("utf-8"), c.password.decode("utf-8")
    except UnicodeDecodeError:
        await _failed(s, c, "user name or password is not UTF-8")
        return
    await _check(s, c, Credentials("LOGIN", user, password))


async def authenticate(s: ImapSession, c: cmd.Authenticate) -> None:
    mechanisms = policy.sasl_mechanisms(s.settings, s.tls)
    if c.mechanism not in mechanisms:
        if c.mechanism in ("PLAIN", "LOGIN") and not policy.plaintext_allowed(s.settings, s.tls):
            s.done(c, "NO", f"{c.mechanism} is disabled before STARTTLS", "PRIVACYREQUIRED")
        else:
            s.done(c, "NO", f"mechanism {c.mechanism} is not supported", "CANNOT")
        return
    exchange = SaslExchange(c.mechanism, s.ctx.hostname())
    initial = None
    if c.initial is not None:
        initial = b"" if c.initial == b"=" else _decode(c.initial)
        if initial is None:
            s.done(c, "BAD", "initial response is not valid base64")
            return
    step: Any = exchange.start(initial)
    while isinstance(step, Challenge):
        s.send(b"+ " + base64.b64encode(step.data) + b"\r\n")
        s.framing.expect_line(True)
        try:
            event = await s.next_event()
        finally:
            s.framing.expect_line(False)
        if event is CLOSED:
            s.state = State.LOGOUT
            return
        if not isinstance(event, RawLine):
            s.done(c, "BAD", "expected an authentication answer")
            return
        if event.data.strip() == b"*":
            s.done(c, "BAD", "authentication cancelled")
            return
        answer = _decode(event.data.strip())
        if answer is None:
            s.done(c, "BAD", "answer is not valid base64")
            return
        step = exchange.respond(answer)
    if not isinstance(step, Credentials):
        await _failed(s, c, f"malformed answer: {getattr(step, 'reason', '')}")
        return
    await _check(s, c, step)


def _decode(data: bytes) -> bytes | None:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


async def _check(s: ImapSession, c: cmd.Command, credentials: Credentials) -> None:
    result = await s.ctx.logins.check(credentials, s.client_ip)
    if not result.ok or result.identity is None or result.mailbox_id is None:
        await _failed(s, c, f"{credentials.mechanism} login failed for "
                            f"{credentials.username!r}: {result.reason}")
        return
    s.logged_in(result.identity, result.mailbox_id)
    s.log.note(f"{credentials.mechanism} login of {result.identity.login}")
    s.done(c, "OK", "Logged in", "CAPABILITY " + " ".join(s.capabilities()))


async def _failed(s: ImapSession, c: cmd.Command, why: str) -> None:
    s.auth_failures += 1
    s.log.note(why)
    await failure_delay(s.ctx.failure_delay, s.auth_failures)
    s.done(c, "NO", "Authentication failed", "AUTHENTICATIONFAILED")


HANDLERS: dict[str, Any] = {
    "CAPABILITY": capability, "NOOP": noop, "CHECK": noop, "LOGOUT": logout, "ID": id_,
    "ENABLE": enable, "COMPRESS": compress, "STARTTLS": starttls, "LOGIN": login,
    "AUTHENTICATE": authenticate,
}
