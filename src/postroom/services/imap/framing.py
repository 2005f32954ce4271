"""The IMAP connection core without I/O: bytes in, whole commands out (RFC 3501 §2.2, §4.3,
§7.5; RFC 7888 LITERAL+).

A command is one or more lines joined by literals: a line ending in ``{n}`` (synchronising:
the server must answer ``+`` before the client sends the n octets) or ``{n+}``
(non-synchronising, LITERAL+). :class:`ImapFraming` collects a whole command, literals
included, as one ``bytes`` value (the literal markers stay inline; :mod:`.arguments`
reads them again) and hands it to :func:`.commands.parse_command`, which returns a typed
command or raises :class:`.commands.ParseError`; both come out of :meth:`next_event`.

Limits (untrusted input): a command's text outside literals is at most
:data:`MAX_LINE` bytes; a literal is at most :data:`MAX_LITERAL` bytes, except in
APPEND where the APPENDLIMIT given by the session applies (RFC 7889). A synchronising
literal over the limit is refused before the client sends it (tagged ``NO [TOOBIG]``);
a non-synchronising one is read and thrown away without being stored, then refused the
same way. Over-long lines are refused with ``BAD`` and the rest of the line skipped.
Every refusal leaves the connection usable.

Two raw modes serve exchanges that are not commands: AUTHENTICATE answers and the
``DONE`` that ends IDLE (:meth:`expect_line`).

Large messages: an APPEND literal of :data:`SPOOL_AT` octets or more is not collected
in memory but written as it arrives to a :class:`LiteralSpool` the session supplies
(a file under DIR/tmp); the command then carries ``NUL index NUL`` in its place and
:func:`.commands.parse_command` turns that into the spool's path. NUL is refused in
command text outside literals, so a client cannot name a spool. Whatever happens to
the command, :meth:`ImapFraming.take_spools` hands the spools back to the session,
which removes their files once the command is done.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from postroom.services.imap import wire
from postroom.services.imap.commands import Command, ParseError, parse_command

MAX_LINE = 64 * 1024
MAX_LITERAL = 64 * 1024
SPOOL_AT = 256 * 1024
_LITERAL_AT_END = re.compile(rb"~?\{(\d{1,20})(\+?)\}\Z")
_TAG_NAME = re.compile(rb"([^\x00-\x20(){%*\"\\+\x7f]+) (?:UID )?([A-Za-z]+)", re.IGNORECASE)


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_DATA = _Marker("NEED_DATA")
CLOSED = _Marker("CLOSED")


@dataclass(frozen=True)
class Continuation:
    """Write ``data`` (``+ ...``): the client may now send its synchronising literal."""

    data: bytes


@dataclass(frozen=True)
class RawLine:
    """A line in raw mode (an AUTHENTICATE answer, IDLE's DONE), without CRLF."""

    data: bytes


class ProtocolError(Exception):
    """Refused input: write ``reply``; the connection goes on. ``saves``: the refused
    command asked to save its search result, so ``$`` must become empty (RFC 5182)."""

    def __init__(self, reply: bytes, saves: bool = False) -> None:
        super().__init__(reply.decode("utf-8", "replace").strip())
        self.reply = reply
        self.saves = saves


Event = Command | Continuation | RawLine | _Marker


class LiteralSpool(Protocol):
    """Where a large APPEND literal goes while it arrives (supplied by the session)."""

    path: Path

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


def tag_and_name(data: bytes) -> tuple[str, str]:
    """The tag and the command name of a (partial) command, for replies; ``("*", "")``."""
    match = _TAG_NAME.match(data)
    if not match:
        return "*", ""
    return match.group(1).decode("ascii", "replace"), match.group(2).decode("ascii").upper()


class ImapFraming:
    """Feed bytes with :meth:`receive_data`; take events with :meth:`next_event`."""

    def __init__(self, append_limit: int = 50 * 1024 * 1024,
                 spool: Callable[[int], LiteralSpool] | None = None) -> None:
        self.append_limit = append_limit
        self._new_spool = spool
        self._spools: list[LiteralSpool] = []       # this command's, in order
        self._spool: LiteralSpool | None = None     # the one being written
        self._buffer = bytearray()
        self._command = bytearray()     # the command so far (lines and literals)
        self._scan = 0                  # where to look for the next CRLF in _buffer
        self._literal_left = 0          # literal octets still to move into _command
        self._discard_left = 0          # octets of a refused literal still to drop
        self._skip_line = False         # drop input up to the next CRLF (after a refusal)
        self._refusal: bytes | None = None
        self._raw = False
        self._eof = False
        self._literals = 0              # literal octets in _command

    def receive_data(self, data: bytes) -> None:
        if data:
            self._buffer += data
        else:
            self._eof = True

    def expect_line(self, raw: bool) -> None:
        """Raw mode: the next lines are AUTHENTICATE answers or IDLE's DONE."""
        self._raw = raw

    def next_event(self) -> Event:
        while True:
            if self._discard_left:
                take = min(self._discard_left, len(self._buffer))
                del self._buffer[:take]
                self._discard_left -= take
                if self._discard_left:
                    return self._need()
                self._skip_line = True
                continue
            if self._literal_left:
                take = min(self._literal_left, len(self._buffer))
                if self._spool is not None:
                    self._spool.write(bytes(self._buffer[:take]))
                else:
                    self._command += self._buffer[:take]
                del self._buffer[:take]
                self._literal_left -= take
                if self._literal_left:
                    return self._need()
                if self._spool is not None:
                    self._spool.close()
                    self._spool = None
                continue
            end = self._buffer.find(b"\r\n", self._scan)
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    # Too long: drop what we have and the rest of the line.
                    self._scan = 0
                    tag, _ = tag_and_name(bytes(self._command or self._buffer[:200]))
                    self._buffer.clear()
                    self._command.clear()
                    if self._skip_line:
                        return self._need()
                    self._skip_line = True
                    raise ProtocolError(wire.tagged(tag, "BAD", "command line too long"))
                self._scan = max(0, len(self._buffer) - 1)
                return self._need()
            line = bytes(self._buffer[:end])
            del self._buffer[:end + 2]
            self._scan = 0
            if self._skip_line:
                self._skip_line = False
                if self._refusal is not None:
                    reply, self._refusal = self._refusal, None
                    raise ProtocolError(reply)
                continue
            if self._raw and not self._command:
                return RawLine(line)
            if len(self._command) + len(line) > MAX_LINE + self._literals:
                tag, _ = tag_and_name(bytes(self._command) or line)
                self._command.clear()
                raise ProtocolError(wire.tagged(tag, "BAD", "command line too long"))
            if b"\x00" in line:
                tag, _ = tag_and_name(bytes(self._command) or line)
                self._command.clear()
                raise ProtocolError(wire.tagged(tag, "BAD", "NUL outside a literal"))
            self._command += line
            match = _LITERAL_AT_END.search(line)
            if match is None:
                data = bytes(self._command)
                self._command.clear()
                self._literals = 0
                if not data.strip():
                    continue            # an empty line: ignored, as most servers do
                try:
                    return parse_command(data, [spool.path for spool in self._spools])
                except ParseError as exc:
                    tag, _ = tag_and_name(data)
                    raise ProtocolError(wire.tagged(exc.tag or tag, "BAD", exc.text,
                                                    exc.code), exc.saves) from None
            size, non_sync = int(match.group(1)), bool(match.group(2))
            tag, name = tag_and_name(bytes(self._command))
            limit = self.append_limit if name == "APPEND" else MAX_LITERAL
            if size > limit:
                self._command.clear()
                what = "message" if name == "APPEND" else "literal"
                reply = wire.tagged(tag, "NO", f"{what} of {size} octets is over the "
                                               f"limit of {limit}", "TOOBIG")
                if non_sync:
                    self._discard_left = size
                    self._refusal = reply
                    continue
                raise ProtocolError(reply)
            self._literal_left = size
            if name == "APPEND" and size >= SPOOL_AT and self._new_spool is not None:
                # In the command, the literal (marker and data) becomes NUL index NUL.
                del self._command[len(self._command) - len(match.group(0)):]
                self._command += b"\x00%d\x00" % len(self._spools)
                self._spool = self._new_spool(size)
                self._spools.append(self._spool)
            else:
                self._command += b"\r\n"
                self._literals += size
            if not non_sync:
                return Continuation(wire.continuation("Ready for literal data"))

    def take_spools(self) -> list[LiteralSpool]:
        """The spools of the command just returned or refused (the caller removes their
        files when done with it); a spool still being written stays."""
        done = [spool for spool in self._spools if spool is not self._spool]
        self._spools = [spool for spool in self._spools if spool is self._spool]
        return done

    def _need(self) -> _Marker:
        return CLOSED if self._eof else NEED_DATA
