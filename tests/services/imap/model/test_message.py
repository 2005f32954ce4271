"""MessageView: what FETCH ENVELOPE / BODYSTRUCTURE / BODY[...] / BINARY[...] return."""

from __future__ import annotations

import pytest

from postroom.services.imap.message import MessageView, nstring, parse_addresses, quote
from tests.services.imap.model.messages import ALTERNATIVE, BROKEN, MIXED, NO_DELIMITER, PLAIN

TERRY = '(("Terry Gray" NIL "gray" "cac.washington.edu"))'


def test_plain_message_envelope_and_bodystructure() -> None:
    v = MessageView.parse(PLAIN)
    assert v.envelope() == (
        '("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" '
        f"{TERRY} {TERRY} {TERRY} "
        '((NIL NIL "imap" "cac.washington.edu")) '
        '((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) '
        'NIL NIL "<B27397-0100000@cac.washington.edu>")'
    )
    assert v.bodystructure() == (
        '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 55 1 NIL NIL NIL NIL)')
    assert v.bodystructure(extensible=False) == (
        '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 55 1)')
    assert v.size == len(PLAIN)


def test_multipart_alternative_with_bare_lf() -> None:
    v = MessageView.parse(ALTERNATIVE)
    assert v.size == len(ALTERNATIVE) + ALTERNATIVE.count(b"\n")   # every LF became CRLF
    assert v.section("") == ALTERNATIVE.replace(b"\n", b"\r\n")
    assert v.envelope() == (
        '(NIL "=?utf-8?q?Gr=C3=BC=C3=9Fe?=" ((NIL NIL "a" "example.com")) '
        '((NIL NIL "a" "example.com")) ((NIL NIL "a" "example.com")) '
        '((NIL NIL "b" "example.com")) NIL NIL NIL NIL)')
    assert v.bodystructure() == (
        '(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 15 1 NIL NIL NIL NIL)'
        '("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" 14 1 NIL NIL NIL NIL) '
        '"ALTERNATIVE" ("BOUNDARY" "b1") NIL NIL NIL)')
    assert v.bodystructure(False) == (
        '(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 15 1)'
        '("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" 14 1) "ALTERNATIVE")')
    assert v.header_value("Subject") == "Grüße"
    assert v.binary("1") == "Grüße".encode()
    assert v.binary_size("1") == len("Grüße".encode())
    assert "grüße" in v.text_for_search().lower()


MIXED_ENVELOPE = (
    '("Tue, 1 Jul 2003 10:52:37 +0200" "Hello world" '
    '(("Joe Q. Public" NIL "john.q.public" "example.com")) '
    '(("Joe Q. Public" NIL "john.q.public" "example.com")) '
    '((NIL NIL "Team" NIL)(NIL NIL "ann" "t.test")(NIL NIL "bob" "t.test")(NIL NIL NIL NIL)) '
    '(("Mary Smith" NIL "mary" "x.test")(NIL NIL "jdoe" "example.org")'
    '("Who?" NIL "one" "y.test")) '
    '((NIL NIL "boss" "nil.test")("Giant; \\"Big\\" Box" NIL "sysservices" "example.net")) '
    'NIL "<1000@local.machine.example>" "<1234@local.machine.example>")'
)
INNER_ENVELOPE = ('(NIL "inner" ((NIL NIL "a" "b.c")) ((NIL NIL "a" "b.c")) '
                  '((NIL NIL "a" "b.c")) NIL NIL NIL NIL NIL)')


def test_mixed_with_attachment_and_message_rfc822() -> None:
    v = MessageView.parse(MIXED)
    assert v.envelope() == MIXED_ENVELOPE
    assert v.bodystructure() == (
        '(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 8 1 NIL NIL NIL NIL)'
        '("APPLICATION" "PDF" ("NAME" "a.pdf") NIL NIL "BASE64" 18 NIL '
        '("ATTACHMENT" ("FILENAME" "a.pdf")) ("en" "de") NIL)'
        '("MESSAGE" "RFC822" NIL NIL "forwarded" "7BIT" 191 ' + INNER_ENVELOPE + ' '
        '(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 10 1 NIL NIL NIL NIL)'
        '("TEXT" "X-WEIRD" NIL NIL NIL "X-UUENCODE" 11 1 NIL NIL NIL NIL) '
        '"MIXED" ("BOUNDARY" "in") NIL NIL NIL) 13 NIL NIL NIL NIL) '
        '"MIXED" ("BOUNDARY" "XX") NIL NIL NIL)')
    assert v.bodystructure(False) == (
        '(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 8 1)'
        '("APPLICATION" "PDF" ("NAME" "a.pdf") NIL NIL "BASE64" 18)'
        '("MESSAGE" "RFC822" NIL NIL "forwarded" "7BIT" 191 ' + INNER_ENVELOPE + ' '
        '(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 10 1)'
        '("TEXT" "X-WEIRD" NIL NIL NIL "X-UUENCODE" 11 1) "MIXED") 13) "MIXED")')


@pytest.mark.parametrize(("spec", "expected"), [
    ("1", b"Hi there"),
    ("1.MIME", b"Content-Type: text/plain; charset=utf-8\r\n\r\n"),
    ("2", b"SGVsbG8gd29y\r\nbGQ="),
    ("3.HEADER", b'From: a@b.c\r\nSubject: inner\r\nContent-Type: multipart/mixed; '
                 b'boundary="in"\r\n\r\n'),
    ("3.1", b"inner body"),
    ("3.1.MIME", b"\r\n"),
    ("3.2", b"begin 644 x"),
    ("3.2.MIME", b"Content-Type: text/x-weird\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"),
    ("3.HEADER.FIELDS (SUBJECT)", b"Subject: inner\r\n\r\n"),
    ("HEADER.FIELDS (subject \"Date\")",
     b"Subject: Hello\r\n world\r\nDate: Tue, 1 Jul 2003 10:52:37 +0200\r\n\r\n"),
    ("HEADER.FIELDS (X-None)", b"\r\n"),
    ("header.fields.not (From To Cc Reply-To Subject Date Message-ID In-Reply-To "
     "MIME-Version)", b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'),
])
def test_sections(spec: str, expected: bytes) -> None:
    assert MessageView.parse(MIXED).section(spec) == expected


def test_whole_header_text_and_part_3_are_exact_octets() -> None:
    v = MessageView.parse(MIXED)
    header, _, body = MIXED.partition(b"\r\n\r\n")
    assert v.section("") == MIXED
    assert v.section("HEADER") == header + b"\r\n\r\n"
    assert v.section("TEXT") == body
    assert v.section("HEADER") + v.section("TEXT") == MIXED  # type: ignore[operator]
    inner = MIXED[MIXED.index(b"From: a@b.c"):MIXED.index(b"\r\n--XX--")]
    assert v.section("3") == inner
    assert v.section("3.TEXT") == inner.partition(b"\r\n\r\n")[2]
    # a partial fetch is a slice of the section (RFC 3501 <origin.count>)
    assert v.section("3")[4:4 + 7] == b": a@b.c"  # type: ignore[index]


@pytest.mark.parametrize("spec", ["4", "1.1", "3.3", "3.1.1", "2.HEADER",
                                  "1.TEXT", "9.MIME"])
def test_missing_parts_are_none(spec: str) -> None:
    assert MessageView.parse(MIXED).section(spec) is None


@pytest.mark.parametrize("spec", ["FOO", "1.", "01", "1..2", "MIME", "HEADER.FIELDS",
                                  "HEADER.FIELDS ()", "TEXT.1", "HEADER x"])
def test_bad_section_syntax_raises_value_error(spec: str) -> None:
    with pytest.raises(ValueError):
        MessageView.parse(MIXED).section(spec)


def test_non_multipart_part_numbering() -> None:
    v = MessageView.parse(PLAIN)
    body = b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
    assert v.section("1") == body
    assert v.section("TEXT") == body
    assert v.section("2") is None
    assert v.section("1.1") is None
    assert v.binary("1") == body
    assert v.binary("") == PLAIN


def test_binary_decodes_transfer_encodings() -> None:
    v = MessageView.parse(MIXED)
    assert v.binary("2") == b"Hello world"
    assert v.binary_size("2") == 11
    assert v.binary("3.1") == b"inner body"
    assert v.binary("3.2") is None              # x-uuencode: UNKNOWN-CTE
    assert v.binary_size("3.2") is None
    assert v.binary("7") == b""                 # no such part
    assert not v.has_part("7") and v.has_part("3.2")
    assert v.binary("3") == v.section("3")      # a message part is sent as it is


def test_broken_message_without_headers() -> None:
    v = MessageView.parse(BROKEN)
    assert v.envelope() == "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
    assert v.bodystructure() == (
        '("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 70 5 NIL NIL NIL NIL)')
    assert v.section("HEADER") == b""
    assert v.section("TEXT") == v.section("") == BROKEN.replace(b"\n", b"\r\n")
    assert v.date() is None and v.header_value("Subject") == ""


def test_multipart_without_delimiter_is_shown_as_text() -> None:
    v = MessageView.parse(NO_DELIMITER)
    assert v.bodystructure() == (
        '("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 26 1 NIL NIL NIL NIL)')


def test_unterminated_multipart_keeps_last_part_to_the_end() -> None:
    msg = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n"
           b"Content-Type: text/html\r\n\r\ntwo, cut off")
    v = MessageView.parse(msg)
    assert v.bodystructure(False) == ('(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 3 1)'
                                      '("TEXT" "HTML" NIL NIL NIL "7BIT" 12 1) "MIXED")')
    assert v.section("2") == b"two, cut off"


def test_nested_boundary_with_common_prefix() -> None:
    msg = (b"Content-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n"
           b"Content-Type: multipart/alternative; boundary=abc\r\n\r\n"
           b"--abc\r\n\r\nx\r\n--abc\r\n\r\ny\r\n--abc--\r\n--ab--\r\n")
    v = MessageView.parse(msg)
    assert v.section("1.1") == b"x" and v.section("1.2") == b"y"
    assert v.bodystructure(False).endswith('"ALTERNATIVE") "MIXED")')


def test_deep_nesting_is_capped() -> None:
    msg = b"".join(b"Content-Type: message/rfc822\r\n\r\n" for _ in range(200)) + b"end"
    v = MessageView.parse(msg)
    assert v.bodystructure().count("RFC822") <= 40
    assert v.section("") == msg


def test_header_values_search_helpers() -> None:
    v = MessageView.parse(MIXED)
    assert v.header_value("subject") == "Hello world"
    assert v.header_values("To") == ["Mary Smith <mary@x.test>, jdoe@example.org, "
                                     "Who? <one@y.test>"]
    assert v.date() == 1057049557.0
    assert str(v.sent_date()) == "2003-07-01"
    assert "Hi there" in v.text_for_search()
    assert "inner body" in v.text_for_search()
    assert "SGVsbG8" not in v.text_for_search()       # not a text part


def test_encoded_words_rfc_2047() -> None:
    msg = (b"Subject: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n"
           b"  =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=\r\n"
           b"From: =?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>\r\n\r\n")
    v = MessageView.parse(msg)
    assert v.header_value("Subject") == "If you can read this you understand the example."
    assert v.header_value("From") == "Keith Moore <moore@cs.utk.edu>"
    # ENVELOPE keeps them raw, for the client to decode
    assert '"=?US-ASCII?Q?Keith_Moore?="' in v.envelope()


def test_addresses_odd_forms() -> None:
    def imap(value: str) -> str:
        return "".join(a.imap() for a in parse_addresses(value))

    assert imap("<@route.test:joe@x.test>") == '(NIL "@route.test" "joe" "x.test")'
    assert imap("joe@x.test (Joe Bloggs)") == '("Joe Bloggs" NIL "joe" "x.test")'
    assert imap("undisclosed-recipients:;") == '(NIL NIL "undisclosed-recipients" NIL)' \
        '(NIL NIL NIL NIL)'
    assert imap("justlocal") == '(NIL NIL "justlocal" "")'
    assert imap('"a b"@x.test') == '(NIL NIL "a b" "x.test")'
    assert imap("") == ""


def test_quote_and_nstring() -> None:
    assert quote("plain") == '"plain"'
    assert quote('a "b" \\c') == '"a \\"b\\" \\\\c"'
    assert quote("two\r\nlines") == "{10}\r\ntwo\r\nlines"
    assert quote("Grüße") == "{7}\r\nGrüße"
    assert nstring(None) == "NIL"
    assert nstring("") == '""'


def test_non_ascii_header_goes_as_literal() -> None:
    v = MessageView.parse("Subject: Grüße\r\n\r\nx".encode())
    assert v.envelope() == "(NIL {7}\r\nGrüße NIL NIL NIL NIL NIL NIL NIL NIL)"
