"""SMTP session states and the command-order table (RFC 5321 §4.1.4, §3.1).

Kept apart from :mod:`.protocol` (after h11's ``_state.py``) so the whole order of
commands reads as one table: :data:`ALLOWED` says in which states a command may be
given, :data:`OUT_OF_ORDER` picks a more helpful reply than plain ``503`` for some
mistakes. Also the two exceptions of the protocol core.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from postroom.connectors.smtp import events as ev
from postroom.connectors.smtp import wire


class ProtocolError(Exception):
    """The client sent something we refuse; send ``reply``. Close after it if ``fatal``."""

    def __init__(self, reply: wire.Reply, *, fatal: bool = False) -> None:
        super().__init__(f"{reply.code} {reply.lines[0]}")
        self.reply = reply
        self.fatal = fatal


class SmtpUsageError(RuntimeError):
    """The *server* used the protocol object wrongly (a bug in our code, not the client's)."""


class State(enum.Enum):
    CONNECTED = "connected"  # greeting not yet sent
    REFUSED = "refused"  # greeted with 554: only QUIT (RFC 5321 §3.1)
    READY = "ready"  # greeting sent, no EHLO/HELO yet
    GREETED = "greeted"  # EHLO/HELO accepted, no transaction
    MAIL = "mail"  # MAIL accepted, no recipient yet
    RCPT = "rcpt"  # at least one recipient accepted
    BDAT = "bdat"  # BDAT chunks accepted, waiting for more BDAT
    DATA = "data"  # reading a DATA body or a BDAT chunk
    AUTH = "auth"  # in a SASL exchange: lines are base64 responses
    TLS_HANDSHAKE = "tls_handshake"  # 220 sent to STARTTLS, waiting for start_tls_done
    CLOSED = "closed"


COMMAND_STATES = frozenset({State.READY, State.GREETED, State.MAIL, State.RCPT, State.BDAT})
ALLOWED: dict[str, frozenset[State]] = {
    "EHLO": COMMAND_STATES,
    "HELO": COMMAND_STATES,
    "MAIL": frozenset({State.GREETED}),
    "RCPT": frozenset({State.MAIL, State.RCPT}),
    "DATA": frozenset({State.RCPT}),
    "BDAT": frozenset({State.RCPT, State.BDAT}),
    "RSET": COMMAND_STATES,
    "NOOP": COMMAND_STATES,
    "HELP": COMMAND_STATES,
    "VRFY": COMMAND_STATES,
    "EXPN": COMMAND_STATES,
    "QUIT": COMMAND_STATES | {State.REFUSED},
    "STARTTLS": frozenset({State.READY, State.GREETED}),
    "AUTH": frozenset({State.GREETED}),
}
"""Command order: the states in which each command may be given (RFC 5321 §4.1.4)."""

OUT_OF_ORDER: dict[tuple[str, State], wire.Reply] = {
    ("MAIL", State.READY): wire.NEED_EHLO,
    ("MAIL", State.MAIL): wire.NESTED_MAIL,
    ("MAIL", State.RCPT): wire.NESTED_MAIL,
    ("MAIL", State.BDAT): wire.NESTED_MAIL,
    ("RCPT", State.READY): wire.NEED_MAIL,
    ("RCPT", State.GREETED): wire.NEED_MAIL,
    ("DATA", State.READY): wire.NEED_MAIL,
    ("DATA", State.GREETED): wire.NEED_MAIL,
    ("DATA", State.MAIL): wire.NO_VALID_RECIPIENTS,
    ("BDAT", State.READY): wire.NEED_MAIL,
    ("BDAT", State.GREETED): wire.NEED_MAIL,
    ("BDAT", State.MAIL): wire.NO_VALID_RECIPIENTS,
    ("AUTH", State.READY): wire.NEED_EHLO,
}
"""The reply for a command out of order when it is more helpful than plain 503."""


@dataclass
class Transaction:
    """The open mail transaction (RFC 5321 §3.3)."""

    mail: ev.MailFrom
    recipients: int = 0
    used_data: bool = False
    message_size: int = 0
    oversize: bool = False


@dataclass
class AuthExchange:
    """An AUTH exchange in progress (RFC 4954 §4)."""

    mechanism: str
    result: tuple[bool, str | None] | None = None
    resume: State = State.GREETED
