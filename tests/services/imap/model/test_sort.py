"""SORT and THREAD (RFC 5256): base subjects, criteria, and the thread response data."""

from __future__ import annotations

import pytest

from postroom.services.imap.sort import base_subject, sort, thread
from tests.services.imap.model.test_search import Msg

DAY = 86400.0
T0 = 1_000_000_000.0


def msg(seq: int, *, subject: str = "", date_offset: float | None = None,
        frm: str = "", to: str = "", cc: str = "", size: int = 100, arrival: float = 0,
        message_id: str = "", references: str = "", in_reply_to: str = "") -> Msg:
    from email.utils import formatdate
    lines = []
    if subject:
        lines.append(f"Subject: {subject}")
    if date_offset is not None:
        lines.append("Date: " + formatdate(T0 + date_offset))
    for name, value in (("From", frm), ("To", to), ("Cc", cc), ("Message-ID", message_id),
                        ("References", references), ("In-Reply-To", in_reply_to)):
        if value:
            lines.append(f"{name}: {value}")
    raw = ("\r\n".join(lines) + "\r\n\r\nbody\r\n").encode()
    return Msg(raw, seq=seq, uid=seq * 10, internal_date=T0 + arrival, size=size)


@pytest.mark.parametrize(("subject", "base", "reply"), [
    ("Hello", "HELLO", False),
    ("Re: Hello", "HELLO", True),
    ("RE: re:  Fwd:hello", "HELLO", True),
    ("Re[2]: hello", "HELLO", True),                     # blob inside the leader
    ("[list] Re: hello (fwd)", "HELLO", True),
    ("[list] hello", "HELLO", False),                    # blob removed: something remains
    ("[only a blob]", "[ONLY A BLOB]", False),           # nothing would remain: kept
    ("[Fwd: Re: hello]", "HELLO", True),
    ("  hello \t world  ", "HELLO WORLD", False),
    ("=?utf-8?q?Re=3A_caf=C3=A9?=", "CAFé", True),       # decoded first; ASCII casemap only
    ("Re:", "", True),
    ("", "", False),
])
def test_base_subject(subject: str, base: str, reply: bool) -> None:
    assert base_subject(subject) == (base, reply)


def sample() -> list[Msg]:
    return [
        msg(1, subject="Re: beta", date_offset=3 * DAY, frm="zed@x.test", to="b@x.test",
            size=300, arrival=1),
        msg(2, subject="alpha", date_offset=1 * DAY, frm="Adam <adam@x.test>", to="c@x.test",
            cc="q@x.test", size=100, arrival=3),
        msg(3, subject="[list] Alpha", date_offset=2 * DAY, frm="mike@x.test", to="a@x.test",
            size=200, arrival=2),
        msg(4, subject="gamma", frm="Bob <bob@x.test>", size=200, arrival=0),   # no Date
    ]


@pytest.mark.parametrize(("criteria", "expected"), [
    (["ARRIVAL"], [4, 1, 3, 2]),
    (["REVERSE", "ARRIVAL"], [2, 3, 1, 4]),
    (["DATE"], [4, 2, 3, 1]),                 # no Date: the internal date stands in
    (["SUBJECT"], [2, 3, 1, 4]),              # alpha, alpha, beta, gamma
    (["SUBJECT", "REVERSE", "DATE"], [3, 2, 1, 4]),
    (["SIZE"], [2, 3, 4, 1]),                 # ties in mailbox order
    (["REVERSE", "SIZE"], [1, 3, 4, 2]),      # REVERSE does not reverse the tie order
    (["FROM"], [2, 4, 3, 1]),                 # adam, bob, mike, zed
    (["TO"], [4, 3, 1, 2]),                   # "" (no To) sorts first
    (["CC"], [1, 3, 4, 2]),
    (["DISPLAY"], [2, 4, 3, 1]),              # Adam, Bob, mike@, zed@
    (["size", "reverse", "arrival"], [2, 3, 4, 1]),
])
def test_sort(criteria: list[str], expected: list[int]) -> None:
    assert sort(criteria, sample()) == expected


def test_sort_by_uid() -> None:
    assert sort(["ARRIVAL"], sample(), number=lambda m: m.uid) == [40, 10, 30, 20]


@pytest.mark.parametrize("criteria", [[], ["REVERSE"], ["SIZE", "REVERSE"], ["COLOUR"],
                                      ["REVERSE", "REVERSE", "SIZE"]])
def test_sort_bad_criteria(criteria: list[str]) -> None:
    with pytest.raises(ValueError):
        sort(criteria, sample())


def test_thread_references_rfc_5256_shape() -> None:
    """The response shape of RFC 5256 §4: ``(2)(3 6 (4 23)(44 7 96))``."""
    ids = {n: f"<{n}@x.test>" for n in (2, 3, 4, 6, 7, 23, 44, 96)}

    def refs(*chain: int) -> str:
        return " ".join(ids[c] for c in chain)

    messages = [
        msg(2, subject="other", date_offset=0, message_id=ids[2]),
        msg(3, subject="topic", date_offset=1, message_id=ids[3]),
        msg(4, subject="Re: topic", date_offset=3, message_id=ids[4], references=refs(3, 6)),
        msg(6, subject="Re: topic", date_offset=2, message_id=ids[6], references=refs(3)),
        msg(7, subject="Re: topic", date_offset=7, message_id=ids[7],
            references=refs(3, 6, 44)),
        msg(23, subject="Re: topic", date_offset=5, message_id=ids[23],
            in_reply_to=ids[4]),
        msg(44, subject="Re: topic", date_offset=4, message_id=ids[44], references=refs(3, 6)),
        msg(96, subject="Re: topic", date_offset=8, message_id=ids[96],
            references=refs(3, 6, 44, 7)),
    ]
    assert thread("REFERENCES", messages) == "(2)(3 6 (4 23)(44 7 96))"
    assert thread("references", list(reversed(messages))) == "(2)(3 6 (4 23)(44 7 96))"


def test_thread_references_missing_parent_and_subject_grouping() -> None:
    messages = [
        # two replies to a message we do not have: a dummy root keeps them together
        msg(1, subject="Re: lost", date_offset=10, message_id="<a@x>", references="<gone@x>"),
        msg(2, subject="Re: lost", date_offset=20, message_id="<b@x>", references="<gone@x>"),
        # same base subject, no references: joined under the original by subject
        msg(3, subject="news", date_offset=5, message_id="<c@x>"),
        msg(4, subject="Re: news", date_offset=30, message_id="<d@x>"),
        # duplicate Message-ID and a reference loop must not hurt
        msg(5, subject="solo", date_offset=40, message_id="<c@x>", references="<e@x> <e@x>"),
    ]
    assert thread("REFERENCES", messages) == "(3 4)((1)(2))(5)"


def test_thread_references_ignores_loops() -> None:
    messages = [
        msg(1, subject="a", date_offset=1, message_id="<1@x>", references="<2@x>"),
        msg(2, subject="b", date_offset=2, message_id="<2@x>", references="<1@x>"),
    ]
    out = thread("REFERENCES", messages)
    assert out in ("(1 2)", "(2 1)")


def test_thread_ordered_subject() -> None:
    messages = [
        msg(1, subject="Re: beta", date_offset=3),
        msg(2, subject="alpha", date_offset=1),
        msg(3, subject="beta", date_offset=2),
        msg(4, subject="Re: alpha", date_offset=4),
        msg(5, subject="RE: Alpha", date_offset=5),
        msg(6, subject="gamma", date_offset=0),
    ]
    assert thread("ORDEREDSUBJECT", messages) == "(6)(2 (4)(5))(3 1)"
    assert thread("ORDEREDSUBJECT", messages, number=lambda m: m.uid) == \
        "(60)(20 (40)(50))(30 10)"
    assert thread("ORDEREDSUBJECT", []) == ""


def test_thread_unknown_algorithm() -> None:
    with pytest.raises(ValueError):
        thread("BYCOLOUR", sample())
