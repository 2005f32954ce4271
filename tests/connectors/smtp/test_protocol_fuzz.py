"""Hypothesis tests: split input gives the same session, and hostile input in any
state only ever produces ProtocolError (with a reply), never another exception."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postroom.connectors.smtp import events as ev
from postroom.connectors.smtp import wire
from postroom.connectors.smtp.protocol import (
    CLOSED,
    NEED_DATA,
    ProtocolError,
    SmtpFeatures,
    SmtpServerProtocol,
    State,
)
from tests.connectors.smtp.driver import Session, accept_all, merged, plain

FEATURES = SmtpFeatures(
    starttls=True,
    auth_mechanisms=("PLAIN", "LOGIN", "CRAM-MD5"),
    auth_plaintext_without_tls=True,
    vrfy=True,
    expn=True,
    binarymime=True,
)

CORPUS = [
    b"EHLO a.example\r\nMAIL FROM:<x@a.example>\r\nRCPT TO:<y@b.example>\r\nDATA\r\n"
    b"Subject: s\r\n\r\n..dot\r\n.\r\n\r\nbody\r\n.\r\nQUIT\r\n",
    b"EHLO a.example\r\nMAIL FROM:<> BODY=BINARYMIME\r\nRCPT TO:<postmaster>\r\n"
    b"BDAT 7\r\n\r\n.\r\n\x00\xffBDAT 3 LAST\r\nxyzNOOP\r\n",
    b"HELO a.example\r\nMAIL FROM:<x@a.example>\r\nRCPT TO:<y@b.example>\r\n"
    b"RCPT TO:<z@b.example>\r\nDATA\r\nline\nwith bare lf\r\n.\r\nRSET\r\n",
    b"FOO\r\nEHLO\r\nEHLO a.example\r\nAUTH PLAIN\r\n"
    + plain("alice", "secret").encode()
    + b"\r\nAUTH LOGIN\r\nMAIL FROM:<x@a.example> SIZE=10 RET=FULL ENVID=a+2Bb\r\n"
    b"RCPT TO:<y@b.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;y@b.example\r\nDATA\r\n.\r\n",
    b"NOOP " + b"x" * 700 + b"\r\nEHLO a.example\r\nAUTH LOGIN\r\nYWxpY2U=\r\n*\r\n"
    b"VRFY bob\r\nEXPN list\r\nHELP\r\nMAIL FROM:<x@a.example>\r\nBDAT 5\r\nabc\r\n"
    b"DATA\r\nRSET\r\nQUIT\r\n",
    "EHLO a.example\r\nMAIL FROM:<jörg@bücher.example> SMTPUTF8\r\n"
    "RCPT TO:<用户@例子.广告>\r\nDATA\r\n\u00e9t\u00e9\r\n.\r\n".encode(),
]


def run_split(data: bytes, cuts: list[int]) -> tuple[list[object], bytes]:
    s = Session(SmtpServerProtocol(features=FEATURES, max_message_size=1000))
    previous = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        s.feed(data[previous:cut])
        previous = cut
    return merged(s.log), bytes(s.out)


@pytest.mark.parametrize("index", range(len(CORPUS)))
@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_split_input_gives_the_same_events_and_replies(index: int, data: st.DataObject) -> None:
    session_bytes = CORPUS[index]
    whole = run_split(session_bytes, [])
    cuts = data.draw(st.lists(st.integers(0, len(session_bytes)), max_size=12))
    assert run_split(session_bytes, cuts) == whole


@pytest.mark.parametrize("index", range(len(CORPUS)))
def test_byte_by_byte_gives_the_same_events_and_replies(index: int) -> None:
    session_bytes = CORPUS[index]
    assert run_split(session_bytes, list(range(len(session_bytes)))) == run_split(session_bytes, [])


# -- hostile input in every state ---------------------------------------------

PREFIXES = {
    "ready": b"",
    "greeted": b"EHLO a.example\r\n",
    "helo": b"HELO a.example\r\n",
    "mail": b"EHLO a.example\r\nMAIL FROM:<x@a.example>\r\n",
    "rcpt": b"EHLO a.example\r\nMAIL FROM:<x@a.example>\r\nRCPT TO:<y@b.example>\r\n",
    "data": b"EHLO a.example\r\nMAIL FROM:<x@a.example>\r\nRCPT TO:<y@b.example>\r\nDATA\r\n",
    "bdat-reading": b"EHLO a.example\r\nMAIL FROM:<x@a.example>\r\nRCPT TO:<y@b.example>\r\n"
    b"BDAT 40\r\n",
    "bdat": b"EHLO a.example\r\nMAIL FROM:<x@a.example>\r\nRCPT TO:<y@b.example>\r\nBDAT 1\r\nx",
    "auth": b"EHLO a.example\r\nAUTH LOGIN\r\n",
}

VERBS = [
    "EHLO",
    "HELO",
    "MAIL FROM:",
    "RCPT TO:",
    "DATA",
    "BDAT",
    "RSET",
    "NOOP",
    "QUIT",
    "HELP",
    "VRFY",
    "EXPN",
    "STARTTLS",
    "AUTH",
    "AUTH PLAIN",
    "AUTH LOGIN",
    "GET",
    "*",
    ".",
]
ARGS = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "<>",
            "<a@b.example>",
            " <a@b.example> SIZE=99999",
            "<@r.example:a@b.example>",
            '<"q>"@b.example>',
            " 5 LAST",
            " 0",
            " 99999999999999999999",
            " =",
            " a.example",
            "<a@[IPv6:::1]>",
            "<a@b.example> NOTIFY=NEVER ORCPT=rfc822;a+2B",
            " HTTP/1.1",
        ]
    ),
    st.text(max_size=30),
)
ENDINGS = st.sampled_from(["\r\n", "\n", "\r", "", "\r\r\n", "\r\n.\r\n"])


@st.composite
def command_lines(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.tuples(st.sampled_from(VERBS), ARGS, ENDINGS), min_size=1, max_size=8))
    return "".join(verb + arg + end for verb, arg, end in lines).encode("utf-8", "surrogatepass")


HOSTILE = st.one_of(st.binary(max_size=300), command_lines())


def random_reply(draw: st.DrawFn, proto: SmtpServerProtocol, event: ev.Event) -> wire.Reply:
    """A server that sometimes refuses, sometimes drops, sometimes accepts."""
    if isinstance(event, ev.Quit):
        return wire.closing("mx")
    choice = draw(st.sampled_from(["accept", "accept", "refuse", "temp", "drop"]))
    if choice == "drop":
        return wire.SERVICE_UNAVAILABLE
    if choice in ("refuse", "temp"):
        if isinstance(event, (ev.AuthStart, ev.AuthResponse)):
            proto.auth_done(False)
        return wire.ACCESS_DENIED if choice == "refuse" else wire.LOCAL_ERROR
    if isinstance(event, (ev.AuthStart, ev.AuthResponse)):
        step = draw(st.sampled_from(["challenge", "ok"]))
        if step == "challenge":
            return wire.auth_challenge(b"")
        proto.auth_done(True, "alice")
        return wire.AUTH_OK
    return accept_all(proto, event)


def check_invariants(proto: SmtpServerProtocol) -> None:
    assert proto.pending is None
    assert proto.buffered >= 0
    if proto.state in (State.MAIL, State.RCPT, State.BDAT):
        assert proto.mail_from is not None
    if proto.state in (State.READY, State.GREETED, State.CONNECTED):
        assert proto.mail_from is None
    if proto.state is State.RCPT:
        assert proto.recipient_count >= 1
    if proto.authenticated:
        assert proto.auth_identity == "alice"


def drive(draw: st.DrawFn, proto: SmtpServerProtocol, data: bytes) -> None:
    """The server loop: only ProtocolError may come out of next_event()."""
    proto.receive_data(data)
    for _ in range(10_000):
        try:
            event = proto.next_event()
        except ProtocolError as err:
            assert isinstance(err.reply, wire.Reply) and err.reply.code >= 400
            proto.send(err.reply)
            if err.fatal:
                assert proto.state is State.CLOSED
                return
            continue
        if event is NEED_DATA or event is CLOSED:
            check_invariants(proto)
            return
        assert isinstance(event, ev.Event)
        if not event.needs_reply:
            assert isinstance(event, (ev.DataChunk, ev.BdatChunk)) and event.data
            continue
        reply = random_reply(draw, proto, event)
        proto.send(reply)
        if isinstance(event, ev.StartTls) and reply.code == 220:
            proto.start_tls_done()
    raise AssertionError("the protocol did not stop producing events")


@pytest.mark.parametrize("state", sorted(PREFIXES))
@given(data=st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_hostile_input_in_every_state(state: str, data: st.DataObject) -> None:
    proto = SmtpServerProtocol(
        features=FEATURES, max_message_size=200, max_recipients=3, max_line_length=64
    )
    proto.send(wire.greeting("mx"))
    s = Session.__new__(Session)  # only to reuse the prefix through the accepting server
    s.proto, s.replier, s.log, s.out, s.closed = proto, accept_all, [], bytearray(), False
    s.feed(PREFIXES[state])
    for _ in range(data.draw(st.integers(1, 4))):
        if proto.state is State.CLOSED:
            break
        drive(data.draw, proto, data.draw(HOSTILE))
    if proto.state is not State.CLOSED:
        drive(data.draw, proto, b"")  # end of stream: always ends cleanly
        assert proto.next_event() is CLOSED


@given(data=st.data())
@settings(max_examples=200, deadline=None)
def test_arbitrary_bytes_from_the_start(data: st.DataObject) -> None:
    proto = SmtpServerProtocol(features=FEATURES)
    proto.send(wire.greeting("mx"))
    drive(data.draw, proto, data.draw(st.binary(max_size=2000)))


@given(body=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=6))
@settings(max_examples=300, deadline=None)
def test_data_round_trip_of_any_body(body: bytes, cuts: list[int]) -> None:
    """Dot-stuffing any CRLF-terminated body and sending it returns the body exactly."""
    body = body.replace(b"\r", b"").replace(b"\n", b"\r\n")
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    stuffed = b"\r\n".join(
        (b"." + line if line.startswith(b".") else line) for line in body.split(b"\r\n")
    )
    session_bytes = (
        b"EHLO a.example\r\nMAIL FROM:<x@a.example>\r\nRCPT TO:<y@b.example>\r\nDATA\r\n"
        + stuffed
        + b".\r\nNOOP\r\n"
    )
    log, _ = run_split(session_bytes, [c for c in cuts if c <= len(session_bytes)])
    chunks = b"".join(item.data for item in log if isinstance(item, ev.DataChunk))
    assert chunks == body
    end = next(item for item in log if isinstance(item, ev.DataEnd))
    assert end.size == len(body) and not end.bare_line_ending
    assert isinstance(log[-1], ev.Noop)
