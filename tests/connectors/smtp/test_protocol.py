"""The SMTP server state machine, driven like a server drives it: bytes in, events
out, replies back (RFC 5321 and its extensions). See driver.py for the loop."""

from __future__ import annotations

import pytest

from postroom.connectors.smtp import events as ev
from postroom.connectors.smtp import wire
from postroom.connectors.smtp.protocol import (
    CLOSED,
    NEED_DATA,
    ProtocolError,
    SmtpFeatures,
    SmtpServerProtocol,
    SmtpUsageError,
    State,
)
from tests.connectors.smtp.driver import Error, Session, accept_all, body_of, plain

EHLO = b"EHLO client.example\r\n"
MAIL = b"MAIL FROM:<alice@example.org>\r\n"
RCPT = b"RCPT TO:<bob@example.net>\r\n"
OPEN = EHLO + MAIL + RCPT


def session(**kwargs: object) -> Session:
    features = kwargs.pop("features", None)
    proto = SmtpServerProtocol(features=features or SmtpFeatures(), **kwargs)  # type: ignore[arg-type]
    return Session(proto)


def errors(log: list[object]) -> list[tuple[int, str | None]]:
    return [(item.code, item.enhanced) for item in log if isinstance(item, Error)]


def kinds(log: list[object]) -> list[str]:
    return [type(item).__name__ if item is not CLOSED else "CLOSED" for item in log]


# -- a whole dialogue ---------------------------------------------------------


def test_a_complete_pipelined_session() -> None:
    s = session(max_message_size=10_000)
    log = s.feed(OPEN + b"RCPT TO:<carol@example.net> NOTIFY=SUCCESS,FAILURE\r\nDATA\r\n")
    assert kinds(log) == ["Ehlo", "MailFrom", "RcptTo", "RcptTo", "DataStart"]
    log = s.feed(b"Subject: test\r\n\r\nHello\r\n.\r\nQUIT\r\n")
    assert kinds(log) == ["DataChunk", "DataEnd", "Quit", "CLOSED"]
    assert body_of(log) == b"Subject: test\r\n\r\nHello\r\n"
    assert log[1] == ev.DataEnd(size=len(b"Subject: test\r\n\r\nHello\r\n"))
    assert s.codes() == [250, 250, 250, 250, 354, 250, 221]
    assert s.replies()[1:3] == ["250-PIPELINING", "250-SIZE 10000"]
    assert s.proto.state is State.CLOSED


def test_events_carry_parsed_commands() -> None:
    s = session(features=SmtpFeatures(auth_mechanisms=("PLAIN",), vrfy=True, expn=True))
    log = s.feed(
        b"HELP mail\r\nNOOP\r\nVRFY bob\r\nEXPN staff\r\nEHLO [192.0.2.7]\r\n"
        b"MAIL FROM:<> SIZE=42 BODY=8BITMIME RET=HDRS ENVID=QQ+2Bx AUTH=<>\r\n"
        b"RCPT TO:<postmaster> NOTIFY=NEVER ORCPT=rfc822;bob+2Bx@example.net\r\nRSET\r\n"
    )
    assert log[:5] == [
        ev.Help("mail"),
        ev.Noop(),
        ev.Vrfy("bob"),
        ev.Expn("staff"),
        ev.Ehlo("[192.0.2.7]"),
    ]
    mail, rcpt = log[5], log[6]
    assert isinstance(mail, ev.MailFrom) and isinstance(rcpt, ev.RcptTo)
    assert mail.path.is_null
    assert (mail.size, mail.body, mail.ret, mail.envid, mail.auth) == (
        42,
        "8BITMIME",
        "HDRS",
        "QQ+x",
        "<>",
    )
    assert mail.params["SIZE"] == "42"
    assert (
        rcpt.path.is_postmaster
        and rcpt.notify == ("NEVER",)
        and rcpt.orcpt == ("rfc822;bob+x@example.net")
    )
    assert log[7] == ev.Rset()


def test_mail_from_with_a_space_after_the_colon_is_accepted() -> None:
    s = session()
    log = s.feed(EHLO + b"mail from: <alice@example.org>\r\n")
    assert isinstance(log[1], ev.MailFrom) and log[1].path.address == "alice@example.org"


# -- order of commands (RFC 5321 §4.1.4) -------------------------------------


@pytest.mark.parametrize(
    ("before", "command", "reply"),
    [
        (b"", MAIL, (503, "5.5.1")),
        (b"", RCPT, (503, "5.5.1")),
        (b"", b"DATA\r\n", (503, "5.5.1")),
        (EHLO, RCPT, (503, "5.5.1")),
        (EHLO, b"DATA\r\n", (503, "5.5.1")),
        (EHLO + MAIL, b"DATA\r\n", (554, "5.5.1")),  # no valid recipients
        (EHLO + MAIL, MAIL, (503, "5.5.1")),
        (OPEN, MAIL, (503, "5.5.1")),
        (OPEN, b"AUTH PLAIN\r\n", (503, "5.5.1")),
        (b"", b"AUTH PLAIN\r\n", (503, "5.5.1")),
        (b"HELO client.example\r\n", b"AUTH PLAIN\r\n", (503, "5.5.1")),
    ],
)
def test_commands_out_of_order_get_503(
    before: bytes, command: bytes, reply: tuple[int, str]
) -> None:
    s = session(features=SmtpFeatures(auth_mechanisms=("PLAIN",), auth_plaintext_without_tls=True))
    s.feed(before)
    assert errors(s.feed(command)) == [reply]


def test_a_refused_mail_opens_no_transaction() -> None:
    def refuse_mail(proto: SmtpServerProtocol, event: ev.Event) -> wire.Reply:
        if isinstance(event, ev.MailFrom):
            return wire.ACCESS_DENIED
        return accept_all(proto, event)

    s = Session(SmtpServerProtocol(), refuse_mail)
    log = s.feed(OPEN + b"DATA\r\n")
    assert kinds(log) == ["Ehlo", "MailFrom", "Error", "Error"]
    assert s.codes() == [250, 550, 503, 503]
    assert s.proto.mail_from is None


def test_rset_clears_the_transaction_and_ehlo_does_too() -> None:
    s = session()
    s.feed(OPEN + b"RSET\r\n")
    assert errors(s.feed(RCPT)) == [(503, "5.5.1")]
    s.feed(MAIL + RCPT + EHLO)
    assert s.proto.state is State.GREETED and s.proto.recipient_count == 0


def test_help_noop_rset_quit_work_before_ehlo() -> None:
    s = session()
    log = s.feed(b"HELP\r\nNOOP\r\nRSET\r\nQUIT\r\n")
    assert kinds(log) == ["Help", "Noop", "Rset", "Quit", "CLOSED"]
    assert s.codes() == [214, 250, 250, 221]


def test_after_a_554_greeting_only_quit_is_accepted() -> None:
    proto = SmtpServerProtocol()
    assert proto.send(wire.NO_SERVICE) == b"554 5.3.2 No SMTP service here\r\n"
    proto.receive_data(EHLO + b"QUIT\r\n")
    with pytest.raises(ProtocolError) as info:
        proto.next_event()
    assert info.value.reply.code == 503
    proto.send(info.value.reply)
    assert proto.next_event() == ev.Quit()


# -- syntax errors, each with its code ---------------------------------------


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"FOO\r\n", (500, "5.5.1")),
        (b"\r\n", (500, "5.5.1")),
        (b"EHLO\r\n", (501, "5.5.4")),
        (b"EHLO two words\r\n", (501, "5.5.4")),
        (b"MAIL TO:<a@b.example>\r\n", (501, "5.5.4")),
        (b"MAIL FROM:a@b.example\r\n", (501, "5.1.7")),
        (b"MAIL FROM:<a@b.example\r\n", (501, "5.1.7")),
        (b"MAIL FROM:<a@@b.example>\r\n", (501, "5.1.7")),
        (b"MAIL FROM:<a@b.example>SIZE=1\r\n", (501, "5.1.7")),
        (b"MAIL FROM:<a@b.example> SIZE=ten\r\n", (501, "5.5.4")),
        (b"MAIL FROM:<a@b.example> SIZE=1 SIZE=2\r\n", (501, "5.5.4")),
        (b"MAIL FROM:<a@b.example> BODY=9BIT\r\n", (501, "5.5.4")),
        (b"MAIL FROM:<a@b.example> RET=ALL\r\n", (501, "5.5.4")),
        (b"MAIL FROM:<a@b.example> ENVID=a+zz\r\n", (501, "5.5.4")),
        (b"MAIL FROM:<a@b.example> FROBNICATE=1\r\n", (555, "5.5.4")),
        (b"MAIL FROM:<a@b.example> SMTPUTF8=yes\r\n", (501, "5.5.4")),
        (b"MAIL FROM:<j\xc3\xb6rg@b.example>\r\n", (553, "5.6.7")),
        (b"MAIL FROM:<a@b.example> SIZE=999999999\r\n", (552, "5.3.4")),
        (b"NOOP \xff\r\n", (500, "5.5.2")),
        (b"NOOP \xc3\xa9\r\n", (500, "5.5.2")),
        (b"NOOP a\x00b\r\n", (500, "5.5.2")),
        (b"NOOP a\tb\r\n", (500, "5.5.2")),
        (b"NOOP\n", (500, "5.5.2")),
        (b"NOOP\rRSET\r\n", (500, "5.5.2")),
        (b"RSET now\r\n", (501, "5.5.4")),
        (b"QUIT now\r\n", (501, "5.5.4")),
        (b"DATA now\r\n", (503, "5.5.1")),
        (b"VRFY bob\r\n", (502, "5.5.1")),
        (b"EXPN staff\r\n", (502, "5.5.1")),
        (b"STARTTLS\r\n", (502, "5.5.1")),
        (b"AUTH PLAIN\r\n", (502, "5.5.1")),
    ],
)
def test_syntax_errors_get_exact_replies_and_the_session_survives(
    line: bytes, reply: tuple[int, str]
) -> None:
    s = session(max_message_size=1000)
    s.feed(EHLO)
    log = s.feed(line)
    assert errors(log) == [reply]
    assert not s.closed
    assert kinds(s.feed(b"NOOP\r\n")) == ["Noop"]
    assert s.proto.invalid_commands == 1


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"RCPT TO:bob@example.net\r\n", (501, "5.1.3")),
        (b"RCPT TO:<>\r\n", (501, "5.1.3")),
        (b"RCPT TO:<b\xc3\xb6b@example.net>\r\n", (553, "5.6.7")),
        (b"RCPT TO:<bob@example.net> NOTIFY=SOMETIMES\r\n", (501, "5.5.4")),
        (b"RCPT TO:<bob@example.net> NOTIFY=NEVER,DELAY\r\n", (501, "5.5.4")),
        (b"RCPT TO:<bob@example.net> ORCPT=bob\r\n", (501, "5.5.4")),
        (b"RCPT TO:<bob@example.net> SIZE=1\r\n", (555, "5.5.4")),
    ],
)
def test_rcpt_errors(line: bytes, reply: tuple[int, str]) -> None:
    s = session()
    s.feed(EHLO + MAIL)
    assert errors(s.feed(line)) == [reply]
    assert s.proto.state is State.MAIL


def test_helo_sessions_may_not_use_extensions() -> None:
    s = session()
    log = s.feed(b"HELO client.example\r\nMAIL FROM:<a@b.example> SIZE=10\r\nBDAT 3\r\nabc")
    assert errors(log) == [(555, "5.5.4"), (503, "5.5.1")]
    assert kinds(s.feed(b"MAIL FROM:<a@b.example>\r\n")) == ["MailFrom"]


def test_extensions_that_are_off_are_refused() -> None:
    features = SmtpFeatures(size=False, dsn=False, eightbitmime=False, smtputf8=False)
    s = session(features=features)
    s.feed(EHLO)
    for param in (b"SIZE=1", b"RET=FULL", b"BODY=8BITMIME", b"SMTPUTF8"):
        assert errors(s.feed(b"MAIL FROM:<a@b.example> " + param + b"\r\n")) == [(555, "5.5.4")]
    assert "250-SIZE" not in s.replies() and "250 DSN" not in s.replies()


def test_disabled_commands_from_the_allowed_commands_setting() -> None:
    s = session(features=SmtpFeatures(vrfy=True, disabled_commands=frozenset({"VRFY", "HELP"})))
    log = s.feed(b"VRFY bob\r\nHELP\r\nNOOP\r\n")
    assert errors(log) == [(502, "5.5.1"), (502, "5.5.1")]
    assert s.replies()[0] == "502 5.5.1 VRFY command is disabled"


def test_too_many_recipients_get_452() -> None:
    s = session(max_recipients=2)
    log = s.feed(OPEN + b"RCPT TO:<c@example.net>\r\nRCPT TO:<d@example.net>\r\n")
    assert errors(log) == [(452, "4.5.3")]
    assert s.proto.recipient_count == 2


def test_an_http_request_is_fatal() -> None:
    s = session()
    log = s.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert log == [Error(500, "5.5.1", fatal=True)]
    assert s.proto.state is State.CLOSED


def test_invalid_commands_and_failed_replies_are_counted() -> None:
    s = session()
    s.feed(b"FOO\r\nBAR\r\n" + EHLO + b"MAIL FROM:<a@b.example> X=1\r\n")
    assert s.proto.invalid_commands == 3
    assert s.proto.errors_sent == 3


# -- line limits (RFC 5321 §4.5.3.1.4) ---------------------------------------


def test_a_long_command_line_is_discarded_and_answered_500_5_5_6() -> None:
    s = session()
    s.feed(b"NOOP " + b"x" * 600)
    assert s.proto.buffered == 0  # discarded as it arrives
    log = s.feed(b"y" * 600 + b"\r\nNOOP\r\n")
    assert kinds(log) == ["Error", "Noop"]
    assert errors(log) == [(500, "5.5.6")]


def test_a_complete_line_just_over_the_limit() -> None:
    s = session(max_line_length=20)
    assert errors(s.feed(b"NOOP " + b"x" * 14 + b"\r\n")) == [(500, "5.5.6")]
    assert kinds(s.feed(b"NOOP " + b"x" * 13 + b"\r\n")) == ["Noop"]  # 20 with CRLF


def test_a_line_far_beyond_the_limit_is_fatal() -> None:
    s = session()
    log = s.feed(b"x" * (s.proto.fatal_line_length + 10))
    assert log == [Error(500, "5.5.6", fatal=True)]
    assert s.proto.state is State.CLOSED


def test_a_lenient_line_limit_can_be_configured() -> None:
    s = session(max_line_length=2048)
    assert kinds(s.feed(b"NOOP " + b"x" * 1500 + b"\r\n")) == ["Noop"]


# -- DATA: dot-unstuffing, streaming, smuggling ------------------------------


def data_session(**kwargs: object) -> Session:
    s = session(**kwargs)
    s.feed(OPEN + b"DATA\r\n")
    return s


@pytest.mark.parametrize(
    ("wire_body", "body"),
    [
        (b".\r\n", b""),
        (b"a\r\n.\r\n", b"a\r\n"),
        (b"..\r\n.\r\n", b".\r\n"),
        (b"...\r\n.\r\n", b"..\r\n"),
        (b".x\r\n.\r\n", b"x\r\n"),
        (b"a\r\n..b\r\n.\r\n", b"a\r\n.b\r\n"),
        (b"a.\r\n.\r\n", b"a.\r\n"),
        (b"\r\n\r\n.\r\n", b"\r\n\r\n"),
        (b"x\r\n.. \r\n.\r\n", b"x\r\n. \r\n"),
    ],
)
def test_dot_unstuffing(wire_body: bytes, body: bytes) -> None:
    s = data_session()
    log = s.feed(wire_body)
    assert body_of(log) == body
    assert log[-1] == ev.DataEnd(size=len(body))


@pytest.mark.parametrize(
    "smuggled",
    [
        b"\n.\n",
        b"\n.\r\n",
        b"\r\n.\n",
        b"\r.\r",
        b"\r.\r\n",
        b"\r\n.\r",
        b"\n.\r",
        b"\r\n\x00.\r\n",
    ],
)
def test_smtp_smuggling_sequences_do_not_end_data(smuggled: bytes) -> None:
    """SEC Consult 2023: a second message hidden behind a non-standard end of data."""
    s = data_session()
    inner = b"MAIL FROM:<admin@bank.example>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nforged\r\n"
    log = s.feed(b"Subject: x\r\n\r\nhello" + smuggled + inner)
    assert [k for k in kinds(log) if k != "DataChunk"] == []  # still inside the first body
    log = s.feed(b".\r\n")
    end = log[-1]
    assert isinstance(end, ev.DataEnd)
    assert body_of(s.log).endswith(b"forged\r\n")
    assert not any(isinstance(item, ev.MailFrom) for item in s.log[2:])
    if smuggled != b"\r\n\x00.\r\n":
        assert end.bare_line_ending and end.refusal == wire.BARE_LINE_ENDING_IN_DATA
    assert s.codes()[-1] == (550 if end.refusal else 250)


def test_bare_line_endings_can_be_accepted_as_data() -> None:
    s = data_session(features=SmtpFeatures(bare_line_endings="accept"))
    log = s.feed(b"a\nb\rc\r\n.\r\n")
    assert body_of(log) == b"a\nb\rc\r\n"
    assert log[-1] == ev.DataEnd(size=7, bare_line_ending=True)
    assert s.codes()[-1] == 250


def test_end_of_data_split_across_every_boundary() -> None:
    wire_body = b"line one\r\n..dotted\r\nlast\r\n.\r\nNOOP\r\n"
    for cut in range(len(wire_body) + 1):
        s = data_session()
        s.feed(wire_body[:cut])
        s.feed(wire_body[cut:])
        assert body_of(s.log) == b"line one\r\n.dotted\r\nlast\r\n", cut
        assert kinds(s.log)[-2:] == ["DataEnd", "Noop"], cut


def test_body_is_streamed_as_it_arrives() -> None:
    s = data_session()
    assert body_of(s.feed(b"first part\r\nsecond")) == b"first part\r\nsecond"
    assert body_of(s.feed(b" half\r")) == b" half"  # the CR waits for its LF
    assert body_of(s.feed(b"\n.\r\n")) == b"\r\n"


def test_oversize_body_is_consumed_and_refused_with_552_and_the_session_goes_on() -> None:
    s = data_session(max_message_size=100)
    log = s.feed(b"x" * 60 + b"\r\n" + b"y" * 60 + b"\r\n.\r\n" + b"MAIL FROM:<a@b.example>\r\n")
    end = next(item for item in log if isinstance(item, ev.DataEnd))
    assert end.oversize and end.size == 124 and end.refusal == wire.SIZE_EXCEEDED
    assert s.codes()[-2:] == [552, 250]
    assert isinstance(log[-1], ev.MailFrom)


def test_long_data_lines_are_flagged_when_a_limit_is_set() -> None:
    s = data_session(max_data_line_length=10)
    log = s.feed(b"short\r\n" + b"z" * 11 + b"\r\n.\r\n")
    end = log[-1]
    assert isinstance(end, ev.DataEnd) and end.line_too_long
    assert end.refusal == wire.DATA_LINE_TOO_LONG
    s2 = data_session(max_data_line_length=10)
    s2.feed(b"z" * 6)
    s2.feed(b"z" * 6 + b"\r\n.\r\n")  # one line split across two reads
    assert s2.log[-1].line_too_long  # type: ignore[attr-defined]


def test_eof_in_the_middle_of_data_closes() -> None:
    s = data_session()
    s.feed(b"partial body")
    assert s.eof()[-1] is CLOSED


def test_binarymime_requires_bdat() -> None:
    s = session(features=SmtpFeatures(binarymime=True))
    s.feed(EHLO + b"MAIL FROM:<a@b.example> BODY=BINARYMIME\r\n" + RCPT)
    assert errors(s.feed(b"DATA\r\n")) == [(503, "5.5.1")]
    log = s.feed(b"BDAT 3 LAST\r\n\x00\xff\r")
    assert body_of(log) == b"\x00\xff\r"


# -- BDAT (RFC 3030) ----------------------------------------------------------


def test_bdat_is_binary_safe_and_exact() -> None:
    s = session()
    s.feed(OPEN)
    chunk1 = b"Subject: x\r\n\r\n\r\n.\r\n"
    chunk2 = b"\x00\xff\n.\n\r.\r"
    log = s.feed(b"BDAT %d\r\n" % len(chunk1) + chunk1 + b"BDAT %d LAST\r\n" % len(chunk2) + chunk2)
    assert body_of(log) == chunk1 + chunk2
    ends = [item for item in log if isinstance(item, ev.BdatEnd)]
    assert ends == [
        ev.BdatEnd(len(chunk1), False, len(chunk1)),
        ev.BdatEnd(len(chunk2), True, len(chunk1) + len(chunk2)),
    ]
    assert s.replies()[-2:] == [
        f"250 2.0.0 {len(chunk1)} octets received",
        "250 2.0.0 Message accepted for delivery",
    ]
    assert s.proto.state is State.GREETED


def test_bdat_zero_last_and_chunks_split_across_reads() -> None:
    s = session()
    s.feed(OPEN + b"BDAT 10\r\n01234")
    s.feed(b"56789BDAT 0 LAST\r\n")
    assert body_of(s.log) == b"0123456789"
    assert kinds(s.log)[-3:] == ["BdatChunk", "BdatEnd", "BdatEnd"]
    assert s.log[-1] == ev.BdatEnd(0, True, 10)


def test_refused_bdat_still_consumes_its_octets() -> None:
    s = session()
    log = s.feed(EHLO + b"BDAT 12\r\nNOOP\r\nNOOP\r\nQUIT\r\n")
    assert kinds(log) == ["Ehlo", "Error", "Quit", "CLOSED"]
    assert errors(log) == [(503, "5.5.1")]


def test_bdat_after_data_and_data_after_bdat_are_out_of_sequence() -> None:
    def refuse_data(proto: SmtpServerProtocol, event: ev.Event) -> wire.Reply:
        return wire.LOCAL_ERROR if isinstance(event, ev.DataStart) else accept_all(proto, event)

    s = Session(SmtpServerProtocol(), refuse_data)
    log = s.feed(OPEN + b"DATA\r\nBDAT 5 LAST\r\nhello" + b"NOOP\r\n")
    assert kinds(log)[-3:] == ["DataStart", "Error", "Noop"]
    assert errors(log) == [(503, "5.5.1")]
    s2 = session()
    log = s2.feed(OPEN + b"BDAT 2\r\nhiDATA\r\n")
    assert errors(log) == [(503, "5.5.1")]


def test_oversize_bdat_is_refused_and_discarded() -> None:
    s = session(max_message_size=10)
    s.feed(OPEN)
    log = s.feed(b"BDAT 8\r\n12345678BDAT 8 LAST\r\nabcdefghNOOP\r\n")
    ends = [item for item in log if isinstance(item, ev.BdatEnd)]
    assert ends[0].refusal is None and ends[1].oversize and ends[1].refusal == wire.SIZE_EXCEEDED
    assert body_of(log) == b"12345678"  # nothing past the limit is passed on
    assert s.codes()[-2:] == [552, 250]


def test_bad_bdat_arguments() -> None:
    s = session()
    s.feed(OPEN)
    assert errors(s.feed(b"BDAT\r\n")) == [(501, "5.5.4")]
    assert errors(s.feed(b"BDAT x\r\n")) == [(501, "5.5.4")]
    assert errors(s.feed(b"BDAT 3 FIRST\r\nabcNOOP\r\n")) == [(501, "5.5.4")]
    assert kinds(s.log)[-1] == "Noop"


def test_chunking_off_refuses_bdat() -> None:
    s = session(features=SmtpFeatures(chunking=False))
    s.feed(OPEN)
    log = s.feed(b"BDAT 4 LAST\r\nabcdNOOP\r\n")
    assert errors(log) == [(502, "5.5.1")] and kinds(log)[-1] == "Noop"
    assert "250-CHUNKING" not in s.replies()


# -- STARTTLS (RFC 3207) -------------------------------------------------------


def tls_features(**kwargs: object) -> SmtpFeatures:
    return SmtpFeatures(starttls=True, auth_mechanisms=("PLAIN", "LOGIN", "CRAM-MD5"), **kwargs)  # type: ignore[arg-type]


def test_starttls_discards_plaintext_pipelined_after_it() -> None:
    """The STARTTLS injection attack: commands sent in plaintext right after
    STARTTLS must not be run inside the TLS session."""
    s = session(features=tls_features())
    log = s.feed(
        EHLO + b"STARTTLS\r\nMAIL FROM:<evil@attacker.example>\r\nRCPT TO:<x@y.example>\r\n"
    )
    assert kinds(log) == ["Ehlo", "StartTls"]
    assert s.proto.state is State.TLS_HANDSHAKE
    s.proto.receive_data(b"more plaintext\r\n")
    s.proto.start_tls_done()
    assert s.proto.discarded_after_starttls > 0
    assert s.proto.tls_active and s.proto.state is State.READY
    log = s.feed(MAIL)  # EHLO is needed again after TLS
    assert errors(log) == [(503, "5.5.1")]


def test_after_starttls_the_session_starts_fresh() -> None:
    s = session(features=tls_features())
    s.feed(EHLO + b"STARTTLS\r\n")
    before = s.replies()
    assert "250-STARTTLS" in before and "250 AUTH CRAM-MD5" in before  # no PLAIN/LOGIN
    s.proto.start_tls_done()
    s.out.clear()
    s.feed(EHLO)
    after = bytes(s.out).decode()
    assert "STARTTLS" not in after and "AUTH PLAIN LOGIN CRAM-MD5" in after
    assert s.proto.helo_name == "client.example"
    assert errors(s.feed(b"STARTTLS\r\n")) == [(503, "5.5.1")]


def test_starttls_refused_keeps_the_plaintext_session() -> None:
    def no_tls(proto: SmtpServerProtocol, event: ev.Event) -> wire.Reply:
        return (
            wire.TLS_NOT_AVAILABLE if isinstance(event, ev.StartTls) else accept_all(proto, event)
        )

    s = Session(SmtpServerProtocol(features=tls_features()), no_tls)
    log = s.feed(EHLO + b"STARTTLS\r\n" + MAIL)
    assert kinds(log) == ["Ehlo", "StartTls", "MailFrom"]
    assert s.codes() == [250, 454, 250]


def test_starttls_is_not_allowed_in_a_transaction_or_with_arguments() -> None:
    s = session(features=tls_features())
    s.feed(EHLO)
    assert errors(s.feed(b"STARTTLS now\r\n")) == [(501, "5.5.4")]
    s.feed(MAIL)
    assert errors(s.feed(b"STARTTLS\r\n")) == [(503, "5.5.1")]


def test_start_tls_done_without_starttls_is_a_usage_error() -> None:
    with pytest.raises(SmtpUsageError):
        SmtpServerProtocol().start_tls_done()


# -- AUTH (RFC 4954) -----------------------------------------------------------


def test_auth_plain_with_initial_response() -> None:
    s = session(features=tls_features(), tls_active=True)
    log = s.feed(EHLO + f"AUTH PLAIN {plain('alice', 'secret')}\r\n".encode())
    assert log[1] == ev.AuthStart("PLAIN", b"\0alice\0secret")
    assert s.codes()[-1] == 235
    assert s.proto.authenticated and s.proto.auth_identity == "alice"
    assert errors(s.feed(b"AUTH PLAIN\r\n")) == [(503, "5.5.1")]
    s.out.clear()
    s.feed(EHLO)
    assert b"AUTH" not in s.out  # nothing more to offer once authenticated


def test_auth_plain_with_a_challenge_and_a_wrong_password() -> None:
    s = session(features=tls_features(), tls_active=True)
    log = s.feed(EHLO + b"AUTH PLAIN\r\n" + plain("alice", "wrong").encode() + b"\r\n")
    assert kinds(log) == ["Ehlo", "AuthStart", "AuthResponse"]
    assert s.codes()[-2:] == [334, 535]
    assert not s.proto.authenticated and s.proto.state is State.GREETED


def test_auth_login_dialogue() -> None:
    s = session(features=tls_features(), tls_active=True)
    s.feed(EHLO + b"AUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\n")
    assert s.replies()[-3:] == [
        "334 VXNlcm5hbWU6",  # "Username:"
        "334 UGFzc3dvcmQ6",  # "Password:"
        "235 2.7.0 Authentication successful",
    ]
    assert s.proto.authenticated


def test_auth_cancel_and_bad_base64() -> None:
    s = session(features=tls_features(), tls_active=True)
    log = s.feed(EHLO + b"AUTH PLAIN\r\n*\r\nAUTH PLAIN\r\n%%%\r\nAUTH PLAIN =\r\n")
    assert kinds(log) == ["Ehlo", "AuthStart", "AuthCancelled", "AuthStart", "Error", "AuthStart"]
    assert errors(log) == [(501, "5.5.2")]
    assert log[-1] == ev.AuthStart("PLAIN", b"")
    assert s.codes() == [250, 334, 501, 334, 501, 535]
    assert s.proto.state is State.GREETED


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", (538, "5.7.11")),
        (b"AUTH LOGIN\r\n", (538, "5.7.11")),
        (b"AUTH GSSAPI\r\n", (504, "5.5.4")),
        (b"AUTH\r\n", (501, "5.5.4")),
        (b"AUTH CRAM-MD5 a b\r\n", (501, "5.5.4")),
        (b"AUTH CRAM-MD5 !!!!\r\n", (501, "5.5.2")),
    ],
)
def test_auth_refusals_before_tls(line: bytes, reply: tuple[int, str]) -> None:
    s = session(features=tls_features())
    s.feed(EHLO)
    assert "250 AUTH CRAM-MD5" in s.replies()  # plaintext mechanisms are not offered
    assert errors(s.feed(line)) == [reply]


def test_plaintext_auth_without_tls_when_the_administrator_allows_it() -> None:
    s = session(features=tls_features(auth_plaintext_without_tls=True))
    s.feed(EHLO + f"AUTH PLAIN {plain('alice', 'secret')}\r\n".encode())
    assert "250 AUTH PLAIN LOGIN CRAM-MD5" in s.replies()
    assert s.proto.authenticated


def test_a_2xx_to_auth_without_auth_done_is_refused() -> None:
    proto = SmtpServerProtocol(features=tls_features(), tls_active=True)
    proto.send(wire.greeting("mx"))
    proto.receive_data(EHLO + b"AUTH PLAIN =\r\n")
    assert isinstance(proto.next_event(), ev.Ehlo)
    proto.send(proto.ehlo_response("mx"))
    assert isinstance(proto.next_event(), ev.AuthStart)
    with pytest.raises(SmtpUsageError):
        proto.send(wire.AUTH_OK)
    assert not proto.authenticated
    proto.auth_done(False)
    proto.send(wire.AUTH_FAILED)
    assert not proto.authenticated


def test_auth_lines_may_be_long() -> None:
    s = session(features=tls_features(), tls_active=True)
    big = b"A" * 8000
    log = s.feed(EHLO + b"AUTH CRAM-MD5\r\n" + big + b"\r\n")
    assert log[-1] == ev.AuthResponse(b"\x00" * 6000)


# -- SMTPUTF8 (RFC 6531) -------------------------------------------------------


def test_utf8_addresses_with_smtputf8() -> None:
    s = session()
    log = s.feed(
        EHLO + "MAIL FROM:<jörg@bücher.example> SMTPUTF8\r\nRCPT TO:<用户@例子.广告>\r\n".encode()
    )
    mail, rcpt = log[1], log[2]
    assert isinstance(mail, ev.MailFrom) and mail.smtputf8 and mail.path.local == "jörg"
    assert isinstance(rcpt, ev.RcptTo) and rcpt.path.domain == "例子.广告"


def test_utf8_recipient_needs_smtputf8_on_mail() -> None:
    s = session()
    s.feed(EHLO + MAIL)
    assert errors(s.feed("RCPT TO:<用户@例子.广告>\r\n".encode())) == [(553, "5.6.7")]


# -- the server's side of the contract ---------------------------------------


def test_next_event_before_the_reply_is_a_usage_error() -> None:
    proto = SmtpServerProtocol()
    proto.send(wire.greeting("mx"))
    proto.receive_data(b"NOOP\r\nNOOP\r\n")
    assert proto.next_event() == ev.Noop()
    with pytest.raises(SmtpUsageError):
        proto.next_event()
    proto.send(wire.OK)
    assert proto.next_event() == ev.Noop()


def test_reading_before_the_greeting_is_a_usage_error_but_early_talkers_are_noted() -> None:
    proto = SmtpServerProtocol()
    proto.receive_data(EHLO)
    assert proto.early_data
    with pytest.raises(SmtpUsageError):
        proto.next_event()
    proto.send(wire.greeting("mx"))
    assert proto.next_event() == ev.Ehlo("client.example")


def test_wrong_intermediate_replies_are_usage_errors() -> None:
    proto = SmtpServerProtocol()
    proto.send(wire.greeting("mx"))
    proto.receive_data(b"NOOP\r\n")
    proto.next_event()
    with pytest.raises(SmtpUsageError):
        proto.send(wire.START_MAIL_INPUT)
    assert proto.send(wire.OK) == b"250 2.0.0 OK\r\n"


def test_a_421_closes_the_session_at_any_time() -> None:
    proto = SmtpServerProtocol()
    proto.send(wire.greeting("mx"))
    proto.receive_data(b"NOOP\r\n")
    assert proto.send(wire.TIMEOUT).startswith(b"421 4.4.2")
    assert proto.next_event() is CLOSED


def test_need_data_until_a_line_is_complete() -> None:
    proto = SmtpServerProtocol()
    proto.send(wire.greeting("mx"))
    proto.receive_data(b"NO")
    assert proto.next_event() is NEED_DATA
    proto.receive_data(b"OP\r")
    assert proto.next_event() is NEED_DATA
    proto.receive_data(b"\n")
    assert proto.next_event() == ev.Noop()


def test_enhanced_status_codes_can_be_turned_off() -> None:
    s = session(features=SmtpFeatures(enhancedstatuscodes=False))
    s.feed(EHLO + MAIL)
    assert "ENHANCEDSTATUSCODES" not in bytes(s.out).decode()
    assert s.replies()[-1] == "250 Sender OK"


def test_ehlo_keywords_follow_the_configuration() -> None:
    proto = SmtpServerProtocol(
        features=SmtpFeatures(
            pipelining=False, binarymime=True, vrfy=True, expn=True, starttls=True
        ),
        max_message_size=5_000_000,
    )
    reply = proto.ehlo_response("mx.example.org", "at your service")
    assert reply.lines == (
        "mx.example.org at your service",
        "SIZE 5000000",
        "8BITMIME",
        "CHUNKING",
        "BINARYMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "DSN",
        "STARTTLS",
        "VRFY",
        "EXPN",
    )
    assert reply.to_bytes().startswith(b"250-mx.example.org at your service\r\n250-SIZE 5000000")


# -- streaming a large body ----------------------------------------------------


def test_a_50_mb_body_streams_through_without_accumulating() -> None:
    proto = SmtpServerProtocol(max_message_size=60 * 1024 * 1024)
    proto.send(wire.greeting("mx"))
    proto.receive_data(OPEN + b"DATA\r\n")
    for _ in range(3):
        event = proto.next_event()
        proto.send(proto.ehlo_response("mx") if isinstance(event, ev.Ehlo) else wire.OK)
    assert isinstance(proto.next_event(), ev.DataStart)
    proto.send(wire.START_MAIL_INPUT)
    line = b"x" * 76 + b"\r\n"
    piece = line * (64 * 1024 // len(line)) + b".leading dot\r\n" + b"tail without end"
    total = 0
    received = 0
    largest_buffer = 0
    while total < 50 * 1024 * 1024:
        proto.receive_data(piece)
        total += len(piece)
        while (event := proto.next_event()) is not NEED_DATA:
            assert isinstance(event, ev.DataChunk)
            received += len(event.data)
        largest_buffer = max(largest_buffer, proto.buffered)
    proto.receive_data(b"\r\n.\r\n")
    events = []
    while (event := proto.next_event()) is not NEED_DATA:
        events.append(event)
        if isinstance(event, ev.DataEnd):
            break
    received += sum(len(e.data) for e in events if isinstance(e, ev.DataChunk))
    end = events[-1]
    assert isinstance(end, ev.DataEnd) and not end.oversize
    dots = total // len(piece)
    assert end.size == received == total + 2 - dots  # each ".leading dot" loses its dot
    assert largest_buffer <= 3
