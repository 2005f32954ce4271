"""Reply formatting: what a client reads on the wire (RFC 5321 §4.2, RFC 2034)."""

from __future__ import annotations

import pytest

from postroom.connectors.smtp import wire


def test_single_line_reply_carries_enhanced_code() -> None:
    assert wire.OK.to_bytes() == b"250 2.0.0 OK\r\n"


def test_multi_line_reply_uses_dash_continuations_and_code_on_every_line() -> None:
    reply = wire.Reply(250, "2.1.5", ("first", "second", "last"))
    assert reply.to_bytes() == (b"250-2.1.5 first\r\n250-2.1.5 second\r\n250 2.1.5 last\r\n")


def test_enhanced_codes_can_be_left_out_when_not_offered() -> None:
    assert wire.SIZE_EXCEEDED.to_bytes(enhanced_codes=False) == (
        b"552 Message size exceeds fixed maximum message size\r\n"
    )


def test_greeting_and_intermediate_replies_have_no_enhanced_code() -> None:
    assert wire.greeting("mx.example.org").to_bytes() == b"220 mx.example.org ESMTP Postroom\r\n"
    assert wire.START_MAIL_INPUT.to_bytes().startswith(b"354 Start")
    assert wire.auth_challenge(b"").to_bytes() == b"334 \r\n"
    assert wire.auth_challenge(b"Username:").to_bytes() == b"334 VXNlcm5hbWU6\r\n"


@pytest.mark.parametrize(
    ("reply", "code", "enhanced"),
    [
        (wire.SYNTAX_ERROR, 500, "5.5.2"),
        (wire.PARAM_SYNTAX, 501, "5.5.4"),
        (wire.NOT_IMPLEMENTED, 502, "5.5.1"),
        (wire.BAD_SEQUENCE, 503, "5.5.1"),
        (wire.LINE_TOO_LONG, 500, "5.5.6"),
        (wire.MAILBOX_UNAVAILABLE, 550, "5.1.1"),
        (wire.RELAY_DENIED, 550, "5.7.1"),
        (wire.SIZE_EXCEEDED, 552, "5.3.4"),
        (wire.AUTH_REQUIRED, 530, "5.7.0"),
        (wire.AUTH_OK, 235, "2.7.0"),
        (wire.AUTH_FAILED, 535, "5.7.8"),
        (wire.ENCRYPTION_REQUIRED, 538, "5.7.11"),
        (wire.TLS_NOT_AVAILABLE, 454, "4.7.0"),
        (wire.TOO_MANY_RECIPIENTS, 452, "4.5.3"),
        (wire.NON_ASCII_SENDER, 553, "5.6.7"),
        (wire.MAIL_PARAMS_UNKNOWN, 555, "5.5.4"),
    ],
)
def test_named_replies_have_the_rfc_codes(reply: wire.Reply, code: int, enhanced: str) -> None:
    assert (reply.code, reply.enhanced) == (code, enhanced)
    assert reply.to_bytes().startswith(f"{code} {enhanced} ".encode())


def test_reply_text_cannot_inject_a_second_reply() -> None:
    with pytest.raises(ValueError, match="CR, LF"):
        wire.MAILBOX_UNAVAILABLE.with_text("no such user\r\n250 OK")


@pytest.mark.parametrize(
    ("code", "enhanced"), [(199, None), (600, None), (550, "4.1.1"), (250, "2.1"), (354, "2.0.0")]
)
def test_inconsistent_replies_are_refused(code: int, enhanced: str | None) -> None:
    with pytest.raises(ValueError):
        wire.Reply(code, enhanced, "x")


def test_reply_classes() -> None:
    assert wire.OK.is_positive and not wire.OK.is_permanent
    assert wire.START_MAIL_INPUT.is_intermediate
    assert wire.TOO_MANY_RECIPIENTS.is_transient
    assert wire.RELAY_DENIED.is_permanent


def test_bdat_received_names_the_octets() -> None:
    assert wire.bdat_received(1024).to_bytes() == b"250 2.0.0 1024 octets received\r\n"
