"""POP3 commands as typed events, and the parser of one command line (RFC 1939 §3-7,
RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH).

A command is a keyword of 3-4 letters (case-insensitive), then arguments separated
by single spaces (RFC 1939 §3; we accept runs of spaces). Message numbers are
``1*DIGIT`` without sign, at most 9 digits (no mailbox holds a billion messages); a
TOP line count likewise. PASS takes the rest of the line, spaces included (RFC 1939
§7 notes passwords may contain them). The parser knows nothing of state: the
transition table is in :mod:`.protocol`.

Untrusted input: the whole line. Errors raise :class:`CommandError` with the reply
to send; nothing else escapes.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import ClassVar

from postroom.auth.sasl import MAX_PASSWORD, MAX_USERNAME
from postroom.services.pop3 import wire

MAX_NUMBER_DIGITS = 9


class CommandError(Exception):
    """A bad command line; ``reply`` says why."""

    def __init__(self, reply: wire.Reply) -> None:
        super().__init__(reply.line)
        self.reply = reply


@dataclass(frozen=True)
class Command:
    """Base of every command event; ``name`` is its keyword (``RETR``)."""

    name: ClassVar[str] = "COMMAND"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.name = cls.__name__.upper()


@dataclass(frozen=True)
class User(Command):
    username: str


@dataclass(frozen=True)
class Pass(Command):
    password: str


@dataclass(frozen=True)
class Apop(Command):
    username: str
    digest: str


@dataclass(frozen=True)
class Auth(Command):
    mechanism: str | None              # None: list the mechanisms (RFC 5034 §4 note)
    initial_response: bytes | None = None


@dataclass(frozen=True)
class AuthResponse(Command):
    data: bytes


@dataclass(frozen=True)
class AuthCancelled(Command):
    pass


@dataclass(frozen=True)
class Capa(Command):
    pass


@dataclass(frozen=True)
class Stls(Command):
    pass


@dataclass(frozen=True)
class Quit(Command):
    pass


@dataclass(frozen=True)
class Stat(Command):
    pass


@dataclass(frozen=True)
class List(Command):
    msg: int | None = None


@dataclass(frozen=True)
class Retr(Command):
    msg: int


@dataclass(frozen=True)
class Dele(Command):
    msg: int


@dataclass(frozen=True)
class Noop(Command):
    pass


@dataclass(frozen=True)
class Rset(Command):
    pass


@dataclass(frozen=True)
class Top(Command):
    msg: int
    lines: int


@dataclass(frozen=True)
class Uidl(Command):
    msg: int | None = None


KEYWORDS = ("USER", "PASS", "APOP", "AUTH", "CAPA", "STLS", "QUIT", "STAT", "LIST", "RETR",
            "DELE", "NOOP", "RSET", "TOP", "UIDL")


def _number(text: str, what: str = "message number") -> int:
    if not text.isascii() or not text.isdigit() or len(text) > MAX_NUMBER_DIGITS:
        raise CommandError(wire.err(f"invalid {what} {text[:20]!r}"))
    return int(text)


def _args(rest: str, least: int, most: int, keyword: str) -> list[str]:
    args = rest.split()
    if not least <= len(args) <= most:
        if least == most:
            need = f"{least} argument{'s' if least != 1 else ''}"
        else:
            need = f"{least} to {most} arguments"
        raise CommandError(wire.err(f"{keyword} takes {need}"))
    return args


def decode_sasl(text: str) -> bytes:
    """A base64 SASL line (RFC 5034 §4); ``=`` is an empty initial response."""
    if text == "=":
        return b""
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise CommandError(wire.err("invalid base64 in SASL response")) from None


def parse(line: str) -> Command:
    """One command line (without its line end) as an event."""
    keyword, _, rest = line.partition(" ")
    keyword = keyword.upper()
    if keyword not in KEYWORDS:
        raise CommandError(wire.UNKNOWN_COMMAND)
    match keyword:
        case "USER":
            name = rest.strip()
            if not name or len(name.encode()) > MAX_USERNAME or " " in name:
                raise CommandError(wire.err("USER takes one user name"))
            return User(name)
        case "PASS":
            # The rest of the line: passwords may contain spaces (RFC 1939 §7).
            if not rest or len(rest.encode()) > MAX_PASSWORD:
                raise CommandError(wire.err("PASS takes the password"))
            return Pass(rest)
        case "APOP":
            name, digest = _args(rest, 2, 2, "APOP")
            if len(digest) != 32 or any(c not in "0123456789abcdefABCDEF" for c in digest):
                raise CommandError(wire.err("APOP digest must be 32 hex digits"))
            if len(name.encode()) > MAX_USERNAME:
                raise CommandError(wire.err("APOP user name too long"))
            return Apop(name, digest.lower())
        case "AUTH":
            args = _args(rest, 0, 2, "AUTH")
            if not args:
                return Auth(None)
            mechanism = args[0].upper()
            if len(mechanism) > 20 or not all(c.isalnum() or c in "-_" for c in mechanism):
                raise CommandError(wire.err("invalid SASL mechanism name"))
            initial = decode_sasl(args[1]) if len(args) == 2 else None
            return Auth(mechanism, initial)
        case "LIST" | "UIDL":
            args = _args(rest, 0, 1, keyword)
            msg = _number(args[0]) if args else None
            return List(msg) if keyword == "LIST" else Uidl(msg)
        case "RETR" | "DELE":
            (arg,) = _args(rest, 1, 1, keyword)
            return Retr(_number(arg)) if keyword == "RETR" else Dele(_number(arg))
        case "TOP":
            msg, lines = _args(rest, 2, 2, "TOP")
            return Top(_number(msg), _number(lines, "line count"))
    _args(rest, 0, 0, keyword)
    return {"CAPA": Capa, "STLS": Stls, "QUIT": Quit, "STAT": Stat, "NOOP": Noop,
            "RSET": Rset}[keyword]()
