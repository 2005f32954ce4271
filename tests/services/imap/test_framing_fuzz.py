"""The sans-I/O core under hostile input (hypothesis): only tagged/untagged BAD or NO
comes out, never another exception, whatever the bytes and however they are split;
a good command after garbage is still understood."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from postroom.services.imap.commands import Command, parse_command
from postroom.services.imap.framing import (
    CLOSED,
    NEED_DATA,
    Continuation,
    ImapFraming,
    ProtocolError,
)

ALPHABET = st.sampled_from([b"a", b"1", b" ", b"(", b")", b"{", b"}", b"+", b"*", b"%", b'"',
                            b"\\", b"[", b"]", b"<", b">", b".", b":", b",", b"\r\n", b"\x00",
                            b"FETCH", b"UID", b"SEARCH", b"STORE", b"LOGIN", b"APPEND",
                            b"BODY", b"{3}\r\n", b"{2+}\r\n", b"NIL", b"OR", b"NOT", b"\xff",
                            b"SETACL", b"GETACL", b"MYRIGHTS", b"$", b"RETURN", b"(SAVE)",
                            b"VANISHED", b"CHANGEDSINCE"])


class _Spool:
    """An in-memory literal spool (the session's writes a file in DIR/tmp)."""

    count = 0

    def __init__(self) -> None:
        _Spool.count += 1
        self.path = Path(f"/spool/{_Spool.count}")
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def close(self) -> None:
        pass


def drive(chunks: list[bytes], *, spool: bool = False) -> list[object]:
    framing = ImapFraming(append_limit=1000, spool=(lambda size: _Spool()) if spool else None)
    events: list[object] = []
    for chunk in [*chunks, b""]:
        framing.receive_data(chunk)
        while True:
            try:
                event = framing.next_event()
            except ProtocolError as exc:
                assert (exc.reply.endswith(b"\r\n") and b" BAD " in exc.reply) or \
                    b" NO " in exc.reply
                events.append(exc.reply)
                continue
            if event in (NEED_DATA, CLOSED):
                break
            assert isinstance(event, Command | Continuation)
            events.append(event)
        framing.take_spools()
    return events


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=40), st.integers(1, 7))
def test_spooled_literals_give_the_same_commands_however_split(
        parts: list[bytes], step: int) -> None:
    """With every APPEND literal spooled (the threshold lowered to 1 octet), garbage
    still gives only protocol errors, and splitting the input changes nothing."""
    import postroom.services.imap.framing as framing_module

    data = b"".join(parts) + b"\r\nz NOOP\r\n"
    saved = framing_module.SPOOL_AT
    framing_module.SPOOL_AT = 1
    try:
        whole = drive([data], spool=True)
        pieces = drive([data[i:i + step] for i in range(0, len(data), step)], spool=True)
    finally:
        framing_module.SPOOL_AT = saved

    def shape(events: list[object]) -> list[object]:
        return [type(e).__name__ if isinstance(e, Command | Continuation) else e
                for e in events]

    assert shape(whole) == shape(pieces)


@settings(max_examples=400, deadline=None)
@given(st.lists(ALPHABET, max_size=40))
def test_garbage_gives_only_protocol_errors(parts: list[bytes]) -> None:
    drive([b"".join(parts) + b"\r\nz NOOP\r\n"])


@settings(max_examples=200, deadline=None)
@given(st.lists(ALPHABET, max_size=30), st.integers(1, 7))
def test_split_input_gives_the_same_events(parts: list[bytes], step: int) -> None:
    data = b"".join(parts) + b"\r\nz NOOP\r\n"
    whole = drive([data])
    pieces = drive([data[i:i + step] for i in range(0, len(data), step)])
    assert whole == pieces
    if re.search(rb"\{\d+\+?\}\r\n", data):
        return      # garbage announced a literal: waiting for its octets is right
    assert any(isinstance(e, Command) and e.tag == "z" for e in whole) or any(
        isinstance(e, bytes) for e in whole)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parse_command_raises_only_parse_error(data: bytes) -> None:
    from postroom.services.imap.commands import ParseError
    for name in (b"FETCH", b"SEARCH", b"STORE", b"APPEND", b"LIST", b"SELECT", b"SORT",
                 b"SETACL", b"DELETEACL", b"GETACL", b"LISTRIGHTS", b"MYRIGHTS", b"ENABLE",
                 b"UID EXPUNGE", b"UID FETCH", b"MOVE"):
        with contextlib.suppress(ParseError):
            parse_command(b"t " + name + b" " + data)


QRESYNC_PIECES = st.sampled_from([b"(", b")", b" ", b"QRESYNC", b"CONDSTORE", b"1", b"0",
                                  b"7", b"4294967296", b"9223372036854775808", b":", b",",
                                  b"*", b"$", b"12:3", b"x"])


def _ranges_size(text: str) -> int:
    from postroom.services.imap.search import SequenceSet
    return sum(hi - lo + 1 for lo, hi in SequenceSet.parse(text, 1).ranges)


def _check_select(command: object) -> None:
    """What a parsed SELECT promises the handler (RFC 7162 §3.2.5 grammar)."""
    from postroom.services.imap.commands import Select
    assert isinstance(command, Select)
    q = command.qresync
    if q is None:
        return
    assert command.condstore
    assert 1 <= q.uidvalidity <= 0xFFFFFFFF and 1 <= q.modseq <= 2 ** 63 - 1
    for text in (q.known_uids, *(q.seq_match or ())):
        assert text is None or ("*" not in text and "$" not in text and _ranges_size(text))
    if q.seq_match is not None:
        numbers, uids = q.seq_match
        assert _elements(numbers) == _elements(uids)


def _elements(text: str) -> int:
    """How many numbers a sequence set writes (duplicates counted, as pairs go)."""
    total = 0
    for piece in text.split(","):
        lo, _, hi = piece.partition(":")
        total += abs(int(hi or lo) - int(lo)) + 1
    return total


@settings(max_examples=400, deadline=None)
@given(st.lists(QRESYNC_PIECES, max_size=30))
def test_select_parameters_parse_or_refuse(parts: list[bytes]) -> None:
    from postroom.services.imap.commands import ParseError
    data = b"t SELECT INBOX (QRESYNC (" + b"".join(parts)
    for text in (data, data + b"))", b"t EXAMINE INBOX " + b"".join(parts)):
        try:
            command = parse_command(text)
        except ParseError as exc:
            assert exc.tag == "t" and exc.text
            continue
        _check_select(command)


uid_set = st.lists(st.tuples(st.integers(1, 4000), st.integers(0, 3)), min_size=1,
                   max_size=4).map(lambda r: ",".join(
                       str(lo) if not n else f"{lo}:{lo + n}" for lo, n in r))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 0xFFFFFFFF), st.integers(1, 2 ** 63 - 1), st.none() | uid_set,
       st.none() | st.integers(1, 50))
def test_well_formed_qresync_round_trips(validity: int, modseq: int, known: str | None,
                                         match: int | None) -> None:
    from postroom.services.imap.commands import Qresync
    text = f"{validity} {modseq}" + (f" {known}" if known else "")
    seq_match = None
    if match is not None:
        seq_match = (f"1:{match}" if match > 1 else "1",
                     ",".join(str(3 * i + 1) for i in range(match)))
        text += f" ({seq_match[0]} {seq_match[1]})"
    command = parse_command(f"t SELECT INBOX (QRESYNC ({text}))".encode())
    _check_select(command)
    assert command.qresync == Qresync(validity, modseq, known, seq_match)  # type: ignore[attr-defined]


def test_literals_and_limits() -> None:
    events = drive([b"a LOGIN {3}\r\n", b"bob {2+}\r\npw\r\n"])
    assert isinstance(events[0], Continuation)
    assert events[1] == parse_command(b"a LOGIN {3}\r\nbob {2+}\r\npw")
    assert drive([b"a APPEND INBOX {5000}\r\n"]) == [
        b"a NO [TOOBIG] message of 5000 octets is over the limit of 1000\r\n"]
    assert drive([b"a APPEND INBOX {5000+}\r\n" + b"x" * 5000 + b"\r\nb NOOP\r\n"]) == [
        b"a NO [TOOBIG] message of 5000 octets is over the limit of 1000\r\n",
        parse_command(b"b NOOP")]
    assert drive([b"a " + b"x" * 70000 + b"\r\nb NOOP\r\n"]) == [
        b"a BAD command line too long\r\n", parse_command(b"b NOOP")]
    assert drive([b"a FETCH 1 (FLAGS\r\n"]) == [b"a BAD expected ')' at end of command\r\n"]
    assert drive([b"a FETCH 1 FLAGS)\r\n"]) == [b"a BAD unexpected text at ')'\r\n"]


GARBAGE = [b"a FETCH 1 (FLAGS", b"a FETCH 0 FLAGS", b"a FETCH 1:x BODY[", b"a SEARCH ((((",
           b"a STORE 1 +FLAGS (\\Bogus)", b"a LIST", b"a SELECT &Jjo", b"a APPEND INBOX",
           b"a UID FROB", b"a SEARCH OR", b"a FETCH 1 BODY[1.HEADER.FIELDS ()]",
           b"a STATUS INBOX ()", b"a COPY 1", b"\x00\xff\xfe", b"a ID (\"x\")",
           b"a FETCH * BINARY[1.TEXT]", b"a RENAME INBOX", b"a ENABLE", b"a EXPUNGE extra"]


def test_garbage_in_every_state_keeps_the_connection(imap_server: object) -> None:
    from tests.services.imap.conftest import ImapServer, RawImap, message
    assert isinstance(imap_server, ImapServer)
    imap_server.deliver(message(1))
    raw = RawImap(imap_server.host, imap_server.port)
    for state in ("not authenticated", "authenticated", "selected"):
        if state == "authenticated":
            raw.login()
        if state == "selected":
            raw.command("SELECT INBOX")
        for line in GARBAGE:
            raw.send(line + b"\r\n")
            reply = raw.line()
            while reply.startswith(b"* "):
                assert reply.startswith(b"* BAD") or reply.startswith(b"* OK")
                if reply.startswith(b"* BAD"):
                    break
                reply = raw.line()
            assert reply.split(b" ")[1] in (b"BAD", b"NO"), (state, line, reply)
            assert raw.command("NOOP", "z") == [b"z OK NOOP completed"]
    raw.close()


FETCH_ITEMS = st.lists(st.sampled_from([b"UID", b"FLAGS", b"BODY.PEEK[]", b"RFC822.SIZE",
                                        b"BODY[HEADER.FIELDS (FROM TO)]", b"BODY[]<0.10>",
                                        b"ENVELOPE", b"(", b")", b" ", b"X", b"CHANGEDSINCE 5"]),
                       min_size=1, max_size=8).map(b"".join)


@given(FETCH_ITEMS)
def test_a_fetch_parsed_again_gives_the_same_answer(items: bytes) -> None:
    """FETCH items are kept once parsed (clients repeat them): the second parse of a
    command, and of the same items after another sequence set, answers exactly as
    the first, refusals included."""
    def parse(line: bytes) -> object:
        try:
            return parse_command(line)
        except Exception as exc:        # the refusal is the answer compared
            return (type(exc), str(exc))

    first = parse(b"a FETCH 1:3 " + items)
    assert parse(b"a FETCH 1:3 " + items) == first
    other = parse(b"b UID FETCH 7 " + items)
    assert other == parse(b"b UID FETCH 7 " + items)
    if isinstance(first, Command) and isinstance(other, Command):
        assert first.items == other.items  # type: ignore[attr-defined]
