"""SEARCH keys evaluated against messages, and sequence sets (RFC 3501 §6.4.4, §9)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pytest

from postroom.services.imap import search as s
from postroom.services.imap.message import MessageView
from postroom.services.imap.search import SequenceSet, evaluate, needs_view
from tests.services.imap.model.messages import ALTERNATIVE, MIXED, PLAIN

NOON_2003_07_01 = 1057060800.0   # 2003-07-01 12:00 UTC


@dataclass
class Msg:
    """A message as the server's search sees it (real MessageView behind view())."""

    raw: bytes
    seq: int = 1
    uid: int = 10
    flags: tuple[str, ...] = ()
    internal_date: float = NOON_2003_07_01
    size: int = 0
    modseq: int = 5
    loads: list[int] = field(default_factory=list)

    def view(self) -> MessageView:
        self.loads.append(1)
        return MessageView.parse(self.raw)


def m(raw: bytes = MIXED, **kw: object) -> Msg:
    msg = Msg(raw, **kw)  # type: ignore[arg-type]
    if not msg.size:
        msg.size = MessageView.parse(raw).size
    return msg


@pytest.mark.parametrize(("key", "expected"), [
    (s.All(), True),
    (s.Header("Subject", "hello WORLD"), True),       # unfolded, case-insensitive
    (s.Header("subject", "goodbye"), False),
    (s.Header("From", "joe q."), True),
    (s.Header("To", "MARY@X.TEST"), True),
    (s.Header("Cc", "big"), True),
    (s.Header("Bcc", ""), False),                      # no Bcc field at all
    (s.Header("In-Reply-To", ""), True),               # present: "" matches
    (s.Header("X-Missing", "a"), False),
    (s.Body("hi THERE"), True),
    (s.Body("inner body"), True),                      # text inside message/rfc822
    (s.Body("Hello world"), False),                    # that is the subject, not the body
    (s.Text("hello world"), True),                     # TEXT covers header and body
    (s.Text("hi there"), True),
    (s.Text("nowhere"), False),
    (s.SentOn(date(2003, 7, 1)), True),
    (s.SentBefore(date(2003, 7, 1)), False),
    (s.SentBefore(date(2003, 7, 2)), True),
    (s.SentSince(date(2003, 7, 1)), True),
    (s.SentSince(date(2003, 7, 2)), False),
    (s.On(date(2003, 7, 1)), True),
    (s.Before(date(2003, 7, 1)), False),
    (s.Since(date(2003, 7, 1)), True),
    (s.Since(date(2003, 7, 2)), False),
    (s.Larger(100), True),
    (s.Larger(100000), False),
    (s.Smaller(100000), True),
    (s.Smaller(10), False),
    (s.ModSeq(5), True),
    (s.ModSeq(6), False),
    (SequenceSet.parse("1", 3), True),
    (SequenceSet.parse("2:*", 3), False),
    (s.UidSet(SequenceSet.parse("5:10", 99)), True),
    (s.UidSet(SequenceSet.parse("11:*", 99)), False),
    (s.Not(s.Larger(100)), False),
    (s.Or(s.Larger(100000), s.Body("inner")), True),
    (s.Or(s.Larger(100000), s.Body("outer")), False),
    (s.And((s.Since(date(2003, 1, 1)), s.Header("subject", "hello"))), True),
    (s.And((s.Since(date(2003, 1, 1)), s.Header("subject", "bye"))), False),
    (s.Older(3600), True),
    (s.Younger(3600), False),
])
def test_content_and_metadata_keys(key: s.SearchKey, expected: bool) -> None:
    assert evaluate(key, m()) is expected


def test_flag_keys() -> None:
    msg = m(flags=("\\Seen", "\\Recent", "$Forwarded"))
    assert evaluate(s.Flag("\\Seen"), msg)
    assert evaluate(s.Flag("\\seen"), msg)               # flags are case-insensitive
    assert not evaluate(s.Flag("\\Seen", present=False), msg)        # UNSEEN
    assert evaluate(s.Flag("\\Answered", present=False), msg)        # UNANSWERED
    assert not evaluate(s.Flag("\\Deleted"), msg)
    assert evaluate(s.Flag("$forwarded"), msg)           # KEYWORD
    assert not evaluate(s.Flag("$Junk"), msg)
    assert evaluate(s.Recent(), msg)
    assert not evaluate(s.New(), msg)                    # recent but seen
    assert not evaluate(s.Old(), msg)
    fresh = m(flags=("\\Recent",))
    assert evaluate(s.New(), fresh)
    assert evaluate(s.Old(), m(flags=()))
    assert msg.loads == [] and fresh.loads == []         # flags never open the file


def test_utf8_and_decoded_matching() -> None:
    alt = m(ALTERNATIVE)
    assert evaluate(s.Header("Subject", "grüße"), alt)    # RFC 2047 decoded
    assert evaluate(s.Header("Subject", "GRÜẞE".casefold()), alt)
    assert evaluate(s.Body("GRÜSSE"), alt)                # casefolding: ß == ss
    assert evaluate(s.Body("<p>"), alt)                   # html parts are text too
    assert evaluate(s.Body("gr=c3"), alt) is False        # quoted-printable decoded


def test_sent_keys_without_date_never_match() -> None:
    nodate = m(b"Subject: x\r\n\r\nbody")
    assert not evaluate(s.SentBefore(date(2100, 1, 1)), nodate)
    assert not evaluate(s.SentSince(date(1900, 1, 1)), nodate)


def test_sent_date_is_the_date_as_written() -> None:
    late = m(b"Date: Mon, 30 Jun 2003 23:30:00 -0500\r\n\r\nx")    # July 1st in UTC
    assert evaluate(s.SentOn(date(2003, 6, 30)), late)


def test_needs_view_and_metadata_first() -> None:
    assert not needs_view(s.And((s.Flag("\\Seen"), s.Not(s.Larger(3)))))
    assert needs_view(s.Or(s.Flag("\\Seen"), s.Body("x")))
    msg = m(flags=())
    # the flag test fails first, so the message is never opened
    assert not evaluate(s.And((s.Body("hi"), s.Flag("\\Seen"))), msg)
    assert msg.loads == []


def test_plain_message_body() -> None:
    assert evaluate(s.Body("3:30 TOMORROW"), m(PLAIN))


# --- sequence sets -----------------------------------------------------------------


@pytest.mark.parametrize(("text", "largest", "ranges"), [
    ("1", 10, ((1, 1),)),
    ("1:*", 10, ((1, 10),)),
    ("*", 10, ((10, 10),)),
    ("5:3", 10, ((3, 5),)),
    ("*:4", 10, ((4, 10),)),
    ("2,4:7,9,12:*", 15, ((2, 2), (4, 7), (9, 9), (12, 15))),
    ("1,2,3,5:6,4", 10, ((1, 6),)),
    ("559:*", 100, ((100, 559),)),            # RFC 3501: n:* always includes the last
    ("1:*", 0, ((1, 1),)),
    ("*", 0, ()),                             # "*" in an empty mailbox: nothing
    ("4294967295", 1, ((4294967295, 4294967295),)),
])
def test_sequence_set_parse(text: str, largest: int, ranges: tuple) -> None:
    parsed = SequenceSet.parse(text, largest)
    assert parsed.ranges == ranges


@pytest.mark.parametrize("text", ["", "0", "1:0", "01", "1,", ",1", "1::2", "a", "1:a", "-1",
                                  "4294967296", "1 2", " 1", "*:", "1.5", "²", "١"])
def test_sequence_set_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        SequenceSet.parse(text, 10)


def test_sequence_set_contains_values_str() -> None:
    ss = SequenceSet.parse("2,4:7,9,12:*", 15)
    assert [n for n in range(0, 18) if ss.contains(n)] == [2, 4, 5, 6, 7, 9, 12, 13, 14, 15]
    assert 4 in ss and 8 not in ss
    assert list(ss.values(13)) == [2, 4, 5, 6, 7, 9, 12, 13]
    assert str(ss) == "2,4:7,9,12:15"
    assert str(SequenceSet.of([3, 1, 2, 7])) == "1:3,7"


def test_sequence_set_of_thousands_of_ranges() -> None:
    text = ",".join(f"{i}:{i + 1}" for i in range(1, 20000, 3))
    ss = SequenceSet.parse(text, 100000)
    hits = sum(ss.contains(n) for n in range(1, 100001))
    assert hits == 13334
    big = SequenceSet.parse("1:*", 4294967295)
    assert big.contains(4294967295) and not big.contains(0)
