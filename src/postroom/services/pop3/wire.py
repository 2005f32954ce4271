"""POP3 replies and the message encoding on the wire (RFC 1939 §3, RFC 2449, RFC 3206).

A reply is one status line, ``+OK text`` or ``-ERR [CODE] text``; RFC 2449 §5 limits a
status line to 512 octets with CRLF, so texts are cut. The extended response codes we
send (RFC 2449 §8, RFC 3206): ``IN-USE`` (maildrop locked by another session),
``AUTH`` (credentials refused), ``SYS/TEMP`` and ``SYS/PERM`` (our own failure),
``LOGIN-DELAY`` is not used.

Multi-line bodies (RETR, TOP) are "byte-stuffed": a line beginning with ``.`` gets a
second ``.``, and ``.CRLF`` ends the body. Message files are kept exactly as they
arrived, which may mean bare LF line ends (mail placed by tools, not by SMTP), so
:class:`CrlfEncoder` turns every bare LF into CRLF while it streams, chunk by chunk,
and ends the body with CRLF if the file does not (the store's encoder,
:mod:`postroom.store.crlf`, which learns the same facts when a message is delivered).
:func:`crlf_size` counts the octets
the encoder sends without the stuffing: the size STAT, LIST and the scan listing
announce (RFC 1939 §5: "exact size", and clients such as fetchmail compare).

Untrusted input: none (message bytes pass through unchanged apart from line ends).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from postroom.store.crlf import END, CrlfEncoder

__all__ = ["END", "CrlfEncoder", "Reply", "crlf_size", "err", "multiline", "ok", "stuffed"]

MAX_STATUS_LINE = 512


@dataclass(frozen=True)
class Reply:
    """One status line. Its wire form (``wire``: bytes with CRLF) and log text
    (``line``) are made with it: every reply is sent, then logged, and most are made
    per command. They are kept in the instance's ``__dict__``, not as fields (equality
    stays that of ``ok``, ``text`` and ``code``) and not through ``cached_property``,
    whose lock cost more than the formatting."""

    ok: bool
    text: str = ""
    code: str = ""

    if TYPE_CHECKING:
        wire: bytes
        line: str

    def __post_init__(self) -> None:
        head = "+OK" if self.ok else "-ERR"
        body = f"[{self.code}] {self.text}" if self.code else self.text
        line = f"{head} {body}".rstrip() if body else head
        data = line.encode("utf-8", "replace")[: MAX_STATUS_LINE - 2]
        self.__dict__["wire"] = data + b"\r\n"
        self.__dict__["line"] = line if len(data) == len(line) else \
            data.decode("utf-8", "replace")

    def encode(self) -> bytes:
        return self.wire


def ok(text: str = "") -> Reply:
    return Reply(True, text)


def err(text: str, code: str = "") -> Reply:
    return Reply(False, text, code)


UNKNOWN_COMMAND = err("unknown command")
WRONG_STATE = err("command not valid in this state")
LINE_TOO_LONG = err("line too long")
BAD_CHARACTERS = err("command line is not valid UTF-8 text")
SYNTAX = err("syntax error")
NO_SUCH_MESSAGE = err("no such message")
MESSAGE_DELETED = err("message already deleted")
AUTH_FAILED = err("authentication failed", "AUTH")
IN_USE = err("maildrop already locked by another session", "IN-USE")
PLAINTEXT_REFUSED = err("plain text logins need TLS: use STLS first", "AUTH")
TEMPORARY = err("temporary server error, try again later", "SYS/TEMP")


def multiline(lines: Iterable[str]) -> bytes:
    """A listing body (CAPA, LIST, UIDL): lines, byte-stuffed, and the end marker."""
    out = []
    for line in lines:
        out.append(("." + line if line.startswith(".") else line).encode("utf-8") + b"\r\n")
    out.append(b".\r\n")
    return b"".join(out)


def stuffed(message: bytes, dot_lines: bool | None = None, head: bytes = b"") -> bytes:
    """A whole message as RETR sends it, byte-stuffed and ended by ``.CRLF``, after
    ``head`` (the status line: one copy of the message, not two), when its line ends
    are known to be CRLF already: its CRLF size (what the maildrop records) equals its
    length, which a bare LF or a missing final line end would change. The two scans
    for bare line ends are then not needed; they cost two thirds of
    :meth:`CrlfEncoder.feed` on a message of 5 KB. ``dot_lines`` False (the maildrop
    knows no line starts with ".") skips the scan for those too."""
    if dot_lines is not False:
        if message.startswith(b"."):
            message = b"." + message
        if b"\n." in message:
            message = message.replace(b"\n.", b"\n..")
    return b"".join((head, message, END))


def crlf_size(chunks: Iterable[bytes]) -> int:
    """Octets of the message as RETR sends it, without stuffing and end marker."""
    encoder = CrlfEncoder(stuff=False)
    for chunk in chunks:
        encoder.feed(chunk)
    encoder.finish()
    return encoder.octets
