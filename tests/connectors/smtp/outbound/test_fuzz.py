"""Hypothesis tests of what the delivery agent reads from and writes to a peer.

The peer is untrusted: whatever bytes it answers, in whatever pieces they arrive, the
agent's reply reader (``_Wire``) never raises, reads the same replies however the
bytes are split, and either gives well-formed replies or ends the connection with a
reason. The message bytes we send after ``354`` must come out of a receiver exactly
as they went in: checked against our own inbound receiver's reader (``DotReader``),
for bodies with dots at line starts, a missing final line end and bare CR or LF.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from postroom.connectors.smtp.data import DotReader
from postroom.connectors.smtp.outbound.session import (
    LINE_LIMIT,
    REPLY_LIMIT,
    Reply,
    _Wire,
    wire_data,
)


class _Socket:
    """The part of a transport the reply reader uses: whether it was closed."""

    def __init__(self) -> None:
        self.closed = False

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def write(self, data: bytes) -> None:  # pragma: no cover - the reader never writes
        raise AssertionError("the reply reader wrote to the peer")


def read_replies(stream: bytes, cuts: list[int]) -> tuple[list[Reply], str | None, bool]:
    """The replies, the error and whether the connection was closed, after ``stream``
    arrived in the pieces ``cuts`` makes of it."""
    socket = _Socket()
    wire = _Wire(socket, timeout=1.0)
    previous = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        if socket.closed:
            break                       # a closed transport delivers nothing more
        wire.data_received(stream[previous:cut])
        previous = cut
    return list(wire.replies), wire.error, socket.closed


def cuts_for(data: st.DataObject, stream: bytes) -> list[int]:
    return data.draw(st.lists(st.integers(0, len(stream)), max_size=12))


REPLY_BYTES = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from([b"250", b"-", b" ", b"\r\n", b"\n", b"\r", b"ok", b"0",
                              b"1", b"2", b"5", b"6", b"9", b"\x00", b"\xff", b"220-x",
                              b"354 go", b"421 bye"]),
             max_size=40).map(b"".join),
)


@settings(max_examples=300, deadline=None)
@given(stream=REPLY_BYTES, data=st.data())
def test_any_peer_bytes_give_the_same_outcome_however_they_are_split(
        stream: bytes, data: st.DataObject) -> None:
    whole = read_replies(stream, [])
    split = read_replies(stream, cuts_for(data, stream))
    assert split == whole
    replies, error, closed = whole
    assert closed == (error is not None)          # refused bytes end the connection
    for reply in replies:
        assert 200 <= reply.code <= 599              # RFC 5321 §4.2.1: 2yz to 5yz only
        assert reply.text.split(" ", 1)[0] == str(reply.code)
        assert len(reply.text) <= REPLY_LIMIT
        assert "\r" not in reply.text and "\n" not in reply.text


TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


@settings(max_examples=200, deadline=None)
@given(replies=st.lists(st.tuples(st.integers(200, 599), st.lists(TEXT, min_size=1,
                                                                   max_size=4)),
                        min_size=1, max_size=5),
       data=st.data())
def test_well_formed_replies_are_read_one_for_one(
        replies: list[tuple[int, list[str]]], data: st.DataObject) -> None:
    stream = b"".join(
        b"".join(f"{code}{'-' if n < len(lines) - 1 else ' '}{line}\r\n".encode()
                 for n, line in enumerate(lines))
        for code, lines in replies)
    read, error, closed = read_replies(stream, cuts_for(data, stream))
    assert error is None and not closed
    assert [r.code for r in read] == [code for code, _ in replies]
    for reply, (code, lines) in zip(read, replies, strict=True):
        words = " ".join(" ".join(lines).split())
        assert reply.text == f"{code} {words}"[:REPLY_LIMIT]


def test_a_line_longer_than_the_limit_ends_the_connection() -> None:
    replies, error, closed = read_replies(b"250 " + b"x" * LINE_LIMIT + b"\r\n", [])
    assert replies == [] and closed and error is not None and "malformed" in error


def test_a_code_no_server_may_send_ends_the_connection() -> None:
    for stream in (b"250 ok\r\n650 6.0.0 what\r\n", b"250 ok\r\n199 early\r\n"):
        replies, error, closed = read_replies(stream, [])
        assert [r.code for r in replies] == [250]
        assert closed and error is not None and "out of range" in error


def received(sent: bytes, cuts: list[int]) -> tuple[bytes, bool]:
    """What our inbound reader makes of ``sent`` (after DATA's 354), fed in pieces,
    and whether it saw the end-of-data line."""
    reader = DotReader(max_size=None, max_line_length=None)
    buf = bytearray()
    pos = 0
    out = []
    previous = 0
    for cut in [*sorted(set(cuts)), len(sent)]:
        buf += sent[previous:cut]
        previous = cut
        piece, pos = reader.feed(buf, pos)
        out.append(piece)
        if reader.done:
            break
    return b"".join(out), reader.done and pos == len(sent)


LINE = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
BODY_LINES = st.lists(st.one_of(LINE, st.sampled_from([b".", b"..", b".x", b"", b". "])),
                      max_size=12)


@settings(max_examples=300, deadline=None)
@given(lines=BODY_LINES, ending=st.sampled_from([b"\r\n", b"\n", b"\r", b""]),
       data=st.data())
def test_the_message_we_send_arrives_as_it_was(lines: list[bytes], ending: bytes,
                                               data: st.DataObject) -> None:
    """RFC 5321 §4.5.2: every line goes through (dots included) and the end-of-data
    line ends the data exactly, whatever the line ends of the stored message."""
    body = ending.join(lines)
    sent = wire_data(body)
    got, ended = received(sent, cuts_for(data, sent))
    assert ended
    # The receiver sees CRLF line ends and a final line end, nothing else changed.
    expected = b"\r\n".join(body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"))
    if not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert got == expected
