"""The POP3 protocol core without sockets: commands, states, replies, bad input."""

from __future__ import annotations

import base64

import pytest

from postroom.services.pop3 import commands as cmd
from postroom.services.pop3 import wire
from postroom.services.pop3.protocol import (
    CLOSED,
    NEED_DATA,
    Pop3Protocol,
    ProtocolError,
    State,
    UsageError,
)


def feed(proto: Pop3Protocol, data: bytes) -> object:
    proto.receive_data(data)
    return proto.next_event()


def logged_in() -> Pop3Protocol:
    proto = Pop3Protocol(tls=True)
    assert feed(proto, b"USER bob@example\r\n") == cmd.User("bob@example")
    proto.send(wire.ok())
    assert feed(proto, b"PASS secret word\r\n") == cmd.Pass("secret word")
    proto.login_done()
    proto.send(wire.ok())
    assert proto.state is State.TRANSACTION
    return proto


@pytest.mark.parametrize(("line", "event"), [
    (b"CAPA", cmd.Capa()),
    (b"capa", cmd.Capa()),
    (b"STLS", cmd.Stls()),
    (b"QUIT", cmd.Quit()),
    (b"USER bob@example", cmd.User("bob@example")),
    (b"APOP bob@example 0123456789ABCDEF0123456789abcdef",
     cmd.Apop("bob@example", "0123456789abcdef0123456789abcdef")),
    (b"AUTH", cmd.Auth(None)),
    (b"AUTH plain", cmd.Auth("PLAIN")),
    (b"AUTH PLAIN " + base64.b64encode(b"\0bob\0pw"), cmd.Auth("PLAIN", b"\0bob\0pw")),
    (b"AUTH PLAIN =", cmd.Auth("PLAIN", b"")),
])
def test_authorization_commands(line: bytes, event: cmd.Command) -> None:
    assert feed(Pop3Protocol(), line + b"\r\n") == event


@pytest.mark.parametrize(("line", "event"), [
    (b"STAT", cmd.Stat()), (b"LIST", cmd.List()), (b"LIST 3", cmd.List(3)),
    (b"RETR 1", cmd.Retr(1)), (b"DELE 2", cmd.Dele(2)), (b"NOOP", cmd.Noop()),
    (b"RSET", cmd.Rset()), (b"TOP 1 10", cmd.Top(1, 10)), (b"UIDL", cmd.Uidl()),
    (b"UIDL 7", cmd.Uidl(7)), (b"QUIT", cmd.Quit()), (b"CAPA", cmd.Capa()),
    (b"retr  1", cmd.Retr(1)),
])
def test_transaction_commands(line: bytes, event: cmd.Command) -> None:
    assert feed(logged_in(), line + b"\r\n") == event


@pytest.mark.parametrize("line", [b"STAT", b"LIST", b"RETR 1", b"DELE 1", b"NOOP", b"RSET",
                                  b"TOP 1 1", b"UIDL"])
def test_transaction_commands_refused_before_login(line: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        feed(Pop3Protocol(), line + b"\r\n")
    assert info.value.reply == wire.WRONG_STATE


@pytest.mark.parametrize("line", [b"USER bob", b"PASS x", b"APOP bob " + b"0" * 32,
                                  b"AUTH PLAIN", b"STLS"])
def test_authorization_commands_refused_after_login(line: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        feed(logged_in(), line + b"\r\n")
    assert info.value.reply == wire.WRONG_STATE


@pytest.mark.parametrize(("line", "text"), [
    (b"FOO", "unknown command"),
    (b"", "unknown command"),
    (b"RETR", "RETR takes 1 argument"),
    (b"RETR x", "invalid message number"),
    (b"RETR -1", "invalid message number"),
    (b"RETR 1234567890", "invalid message number"),
    (b"DELE 1 2", "DELE takes 1 argument"),
    (b"TOP 1", "TOP takes 2 arguments"),
    (b"LIST 1 2", "LIST takes 0 to 1 arguments"),
    (b"STAT now", "STAT takes 0 arguments"),
    (b"RETR \xef\xbc\x91", "invalid message number"),  # a full-width digit
])
def test_bad_transaction_lines(line: bytes, text: str) -> None:
    proto = logged_in()
    with pytest.raises(ProtocolError) as info:
        feed(proto, line + b"\r\n")
    assert not info.value.reply.ok and text in info.value.reply.text
    assert proto.state is State.TRANSACTION and proto.errors == 1


def test_pass_needs_user_first() -> None:
    with pytest.raises(ProtocolError, match="USER first"):
        feed(Pop3Protocol(), b"PASS x\r\n")


def test_failed_pass_forgets_the_user() -> None:
    proto = Pop3Protocol()
    feed(proto, b"USER bob\r\n")
    proto.send(wire.ok())
    feed(proto, b"PASS wrong\r\n")
    proto.send(wire.AUTH_FAILED)
    assert proto.state is State.AUTHORIZATION
    with pytest.raises(ProtocolError, match="USER first"):
        feed(proto, b"PASS again\r\n")


def test_ok_to_a_login_needs_login_done() -> None:
    proto = Pop3Protocol()
    feed(proto, b"USER bob\r\n")
    proto.send(wire.ok())
    feed(proto, b"PASS x\r\n")
    with pytest.raises(UsageError):
        proto.send(wire.ok())


@pytest.mark.parametrize("line", [b"USER b\x00b", b"USER \xff\xfe", b"NOOP\x1b[2J"])
def test_bad_characters(line: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        feed(Pop3Protocol(), line + b"\r\n")
    assert info.value.reply == wire.BAD_CHARACTERS


def test_over_long_line_is_refused_and_the_session_goes_on() -> None:
    proto = logged_in()
    proto.receive_data(b"NOOP " + b"x" * 300 + b"\r\n")
    with pytest.raises(ProtocolError) as info:
        proto.next_event()
    assert info.value.reply == wire.LINE_TOO_LONG and not info.value.fatal
    assert feed(proto, b"STAT\r\n") == cmd.Stat()


def test_over_long_line_in_pieces_is_discarded_to_its_end() -> None:
    proto = logged_in()
    for _ in range(40):
        proto.receive_data(b"y" * 1000)
        assert proto.next_event() is NEED_DATA
    proto.receive_data(b"zzz\r\nNOOP\r\n")
    with pytest.raises(ProtocolError) as info:
        proto.next_event()
    assert info.value.reply == wire.LINE_TOO_LONG
    assert proto.next_event() == cmd.Noop()


def test_endless_line_is_fatal() -> None:
    proto = Pop3Protocol(fatal_line_length=10_000)
    with pytest.raises(ProtocolError) as info:
        for _ in range(20):
            proto.receive_data(b"A" * 1000)
            proto.next_event()
    assert info.value.fatal
    assert proto.next_event() is CLOSED


def test_bare_lf_ends_a_line() -> None:
    assert feed(Pop3Protocol(), b"CAPA\n") == cmd.Capa()


def test_pipelined_commands_come_out_in_order() -> None:
    proto = logged_in()
    proto.receive_data(b"STAT\r\nLIST\r\nUIDL 1\r\n")
    seen = []
    while (event := proto.next_event()) is not NEED_DATA:
        seen.append(event)
        proto.send(wire.ok())
    assert seen == [cmd.Stat(), cmd.List(), cmd.Uidl(1)]


def test_next_event_before_answering_is_a_usage_error() -> None:
    proto = Pop3Protocol()
    proto.receive_data(b"CAPA\r\nCAPA\r\n")
    proto.next_event()
    with pytest.raises(UsageError):
        proto.next_event()


def test_stls_discards_pipelined_plaintext() -> None:
    proto = Pop3Protocol()
    proto.receive_data(b"STLS\r\nUSER evil\r\n")
    assert proto.next_event() == cmd.Stls()
    proto.send(wire.ok())
    proto.receive_data(b"PASS evil\r\n")
    assert proto.next_event() is NEED_DATA
    proto.start_tls_done()
    assert proto.tls and proto.next_event() is NEED_DATA
    with pytest.raises(ProtocolError, match="already"):
        feed(proto, b"STLS\r\n")


def test_sasl_exchange_and_cancel() -> None:
    proto = Pop3Protocol(tls=True)
    assert feed(proto, b"AUTH LOGIN\r\n") == cmd.Auth("LOGIN")
    assert proto.challenge(b"Username:") == b"+ VXNlcm5hbWU6\r\n"
    assert feed(proto, base64.b64encode(b"bob") + b"\r\n") == cmd.AuthResponse(b"bob")
    proto.challenge(b"Password:")
    assert feed(proto, b"*\r\n") == cmd.AuthCancelled()
    proto.send(wire.err("cancelled"))
    assert proto.state is State.AUTHORIZATION


def test_sasl_bad_base64() -> None:
    proto = Pop3Protocol(tls=True)
    feed(proto, b"AUTH PLAIN\r\n")
    proto.challenge(b"")
    with pytest.raises(ProtocolError, match="base64"):
        feed(proto, b"!!!notbase64\r\n")
    assert feed(proto, b"CAPA\r\n") == cmd.Capa()   # back to commands


def test_quit_closes() -> None:
    proto = logged_in()
    feed(proto, b"QUIT\r\n")
    proto.enter_update()
    assert proto.state is State.UPDATE
    proto.send(wire.ok())
    assert proto.state is State.CLOSED and proto.next_event() is CLOSED


def test_eof() -> None:
    proto = Pop3Protocol()
    proto.receive_data(b"CAP")
    proto.receive_data(b"")
    assert proto.next_event() is CLOSED


def test_status_lines_are_cut_to_512_octets() -> None:
    assert len(wire.err("x" * 2000).encode()) == 512
    assert wire.err("busy", "IN-USE").encode() == b"-ERR [IN-USE] busy\r\n"
