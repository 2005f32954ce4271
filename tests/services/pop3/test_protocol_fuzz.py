"""Fuzzing the POP3 command parser (hypothesis): any bytes, in any state, split anywhere.

Only :class:`ProtocolError` may escape; input split into pieces gives the same events
and errors as the whole; the session state never changes on refused input.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from postroom.services.pop3 import commands as cmd
from postroom.services.pop3 import wire
from postroom.services.pop3.protocol import CLOSED, NEED_DATA, Pop3Protocol, ProtocolError

WORDS = [b"USER", b"PASS", b"APOP", b"AUTH", b"CAPA", b"STLS", b"QUIT", b"STAT", b"LIST",
         b"RETR", b"DELE", b"NOOP", b"RSET", b"TOP", b"UIDL", b"PLAIN", b"*", b"=", b"1",
         b"99999999999", b"-1", b" ", b"\r\n", b"\n", b"\r", b"\x00", b"\xff", b"."]
lines = st.lists(st.one_of(st.sampled_from(WORDS), st.binary(max_size=20)),
                 max_size=30).map(b"".join)


def start(logged_in: bool) -> Pop3Protocol:
    proto = Pop3Protocol(max_line_length=64, fatal_line_length=2000)
    if logged_in:
        proto.receive_data(b"USER u\r\n")
        proto.next_event()
        proto.send(wire.ok())
        proto.receive_data(b"PASS p\r\n")
        proto.next_event()
        proto.login_done()
        proto.send(wire.ok())
    return proto


def run(proto: Pop3Protocol, pieces: list[bytes]) -> list[object]:
    out: list[object] = []
    for piece in [*pieces, b""]:
        proto.receive_data(piece)
        while True:
            state = proto.state
            try:
                event = proto.next_event()
            except ProtocolError as exc:
                proto.send_error(exc)
                out.append(("error", exc.reply.line))
                if exc.fatal:
                    return out
                assert proto.state is state
                continue
            if event is NEED_DATA or event is CLOSED:
                break
            assert isinstance(event, cmd.Command)
            out.append(event)
            if isinstance(event, cmd.Auth) and event.mechanism and event.initial_response is None:
                proto.challenge(b"")
            else:
                proto.send(wire.err("no"))      # refuse everything: nothing changes state
    return out


@settings(max_examples=400, deadline=None)
@given(lines, st.booleans(), st.lists(st.integers(0, 500), max_size=8))
def test_split_input_gives_the_same_result(data: bytes, logged_in: bool,
                                           cuts: list[int]) -> None:
    whole = run(start(logged_in), [data])
    pieces, begin = [], 0
    for cut in sorted(c for c in set(cuts) if c <= len(data)):
        pieces.append(data[begin:cut])
        begin = cut
    pieces.append(data[begin:])
    assert run(start(logged_in), pieces) == whole


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400), st.booleans())
def test_random_bytes_only_raise_protocol_errors(data: bytes, logged_in: bool) -> None:
    run(start(logged_in), [data])
