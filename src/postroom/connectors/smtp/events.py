"""What an SMTP client asked for: the events :class:`SmtpServerProtocol` returns.

Each command event waits for exactly one reply from the server (sent with
``SmtpServerProtocol.send``) before the next event is produced; the reply decides
the next state (a MAIL answered 250 opens a transaction, one answered 550 does not).
``DataChunk`` and ``BdatChunk`` carry message bytes and take no reply.

Everything in these events came from the client and is untrusted; parsing has
already refused malformed syntax, but no policy (relay, size per domain, auth) has
been applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from postroom.connectors.smtp.address import Path
from postroom.connectors.smtp.wire import Reply


class Event:
    """Base class of all events."""

    needs_reply = True


@dataclass(frozen=True)
class Ehlo(Event):
    """EHLO name (RFC 5321 §4.1.1.1): a 250 reply starts an ESMTP session and resets
    any transaction. Answer with ``SmtpServerProtocol.ehlo_response``."""

    name: str


@dataclass(frozen=True)
class Helo(Event):
    """HELO name: plain SMTP, no service extensions afterwards."""

    name: str


@dataclass(frozen=True)
class MailFrom(Event):
    """MAIL FROM (RFC 5321 §4.1.1.2) with its parameters.

    ``params`` holds every parameter as sent (keys upper-cased, ``None`` for a
    keyword without value); the typed fields are the ones we support:
    SIZE (RFC 1870), BODY (RFC 6152/3030), SMTPUTF8 (RFC 6531), RET and ENVID
    (RFC 3461, ENVID xtext-decoded), AUTH (RFC 4954 §5, xtext-decoded, ``"<>"``
    when the client claims no identity).
    """

    path: Path
    params: Mapping[str, str | None] = field(default_factory=dict, hash=False)
    size: int | None = None
    body: str | None = None
    smtputf8: bool = False
    ret: str | None = None
    envid: str | None = None
    auth: str | None = None


@dataclass(frozen=True)
class RcptTo(Event):
    """RCPT TO (RFC 5321 §4.1.1.3) with DSN parameters (RFC 3461 §4):
    ``notify`` is a tuple of NEVER / SUCCESS / FAILURE / DELAY, ``orcpt`` the
    xtext-decoded ``addr-type;address``."""

    path: Path
    params: Mapping[str, str | None] = field(default_factory=dict, hash=False)
    notify: tuple[str, ...] | None = None
    orcpt: str | None = None


@dataclass(frozen=True)
class DataStart(Event):
    """DATA: reply 354 (``wire.START_MAIL_INPUT``) to receive the body, or refuse."""


@dataclass(frozen=True)
class DataChunk(Event):
    """A piece of the message body, dot-unstuffed, line endings kept as sent.
    No reply. Pieces arrive as the bytes do; the body is never held whole."""

    data: bytes
    needs_reply = False


@dataclass(frozen=True)
class DataEnd(Event):
    """End of DATA (``<CRLF>.<CRLF>``). ``size`` counts the unstuffed body octets.

    ``refusal`` is the reply the protocol recommends instead of acceptance: the body
    went over the size limit (``oversize``; the rest was discarded, not passed on as
    chunks), held bare CR/LF (``bare_line_ending``, refused unless the protocol was
    told to accept them) or a line longer than the configured limit. The server must
    then store nothing; the session stays usable either way.
    """

    size: int
    oversize: bool = False
    bare_line_ending: bool = False
    line_too_long: bool = False
    refusal: Reply | None = None


@dataclass(frozen=True)
class BdatChunk(Event):
    """A piece of a BDAT chunk's octets (RFC 3030), passed on exactly as sent.
    ``last`` is true when the chunk belongs to ``BDAT n LAST``. No reply."""

    data: bytes
    last: bool = False
    needs_reply = False


@dataclass(frozen=True)
class BdatEnd(Event):
    """All ``size`` octets of one BDAT command have arrived; reply now.

    For a non-last chunk reply 250 (``wire.bdat_received``) to continue, or refuse to
    end the transaction. For ``last`` the reply is the final answer for the message
    (``message_size`` octets in all). ``refusal`` is as for :class:`DataEnd`.
    """

    size: int
    last: bool
    message_size: int
    oversize: bool = False
    refusal: Reply | None = None


@dataclass(frozen=True)
class Rset(Event):
    """RSET: any reply clears the transaction (reply 250)."""


@dataclass(frozen=True)
class Noop(Event):
    """NOOP: reply 250."""


@dataclass(frozen=True)
class Quit(Event):
    """QUIT: reply 221 (``wire.closing``); the session is then closed."""


@dataclass(frozen=True)
class Help(Event):
    """HELP [topic]: reply 214 or 502."""

    topic: str | None = None


@dataclass(frozen=True)
class Vrfy(Event):
    """VRFY string (only when enabled): reply 250/251/252/550/553."""

    arg: str


@dataclass(frozen=True)
class Expn(Event):
    """EXPN string (only when enabled): reply 250 (multi-line) or 550."""

    arg: str


@dataclass(frozen=True)
class StartTls(Event):
    """STARTTLS (RFC 3207): reply 220 (``wire.READY_TO_START_TLS``), run the TLS
    handshake, then call ``start_tls_done()``; or refuse with 454."""


@dataclass(frozen=True)
class AuthStart(Event):
    """AUTH mechanism [initial-response] (RFC 4954 §4). ``initial_response`` is
    base64-decoded (``=`` gives ``b""``), ``None`` when absent. Reply 334
    (``wire.auth_challenge``) to continue, or call ``auth_done`` and reply 235/535."""

    mechanism: str
    initial_response: bytes | None = None


@dataclass(frozen=True)
class AuthResponse(Event):
    """The client's base64-decoded answer to a 334 challenge."""

    data: bytes


@dataclass(frozen=True)
class AuthCancelled(Event):
    """The client answered a challenge with ``*``: reply ``wire.AUTH_CANCELLED``."""
