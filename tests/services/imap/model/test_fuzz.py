"""Hypothesis: hostile messages never break MessageView; sequence sets parse or refuse."""

from __future__ import annotations

import contextlib
import itertools
import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from postroom.services.imap.message import MessageView, parse_addresses
from postroom.services.imap.search import SequenceSet
from tests.services.imap.model.messages import ALTERNATIVE, BROKEN, MIXED, PLAIN

PIECES = [b"\r\n", b"\n", b"\r", b"\x00", b": ", b"Content-Type: multipart/mixed; boundary=b",
          b"Content-Type: message/rfc822", b"Content-Transfer-Encoding: base64",
          b"Content-Transfer-Encoding: quoted-printable", b"--b", b"--b--", b" ", b"\t",
          b"From: \"a\" <b@c>, (x", b"To: g: a@b;", b"=?utf-8?b?w6k=?=", b"\xff\xfe",
          b"Subject: x", b"Date: 31 Feb 99999 99:99", b"(", b"\"", b"<", b"\\",
          b"Content-Disposition: attachment; filename*0*=utf-8''%C3%A9", b"abc=3D=\r\n"]
message_bytes = st.one_of(
    st.binary(max_size=400),
    st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join),
    st.tuples(st.sampled_from([PLAIN, ALTERNATIVE, MIXED, BROKEN]),
              st.integers(0, 2000), st.binary(max_size=20))
    .map(lambda t: t[0][:t[1]] + t[2] + t[0][t[1]:]),
)
SECTIONS = ["", "HEADER", "TEXT", "1", "1.MIME", "2", "2.HEADER", "3.1", "3.TEXT",
            "HEADER.FIELDS (From Subject)", "HEADER.FIELDS.NOT (To)", "1.2.3"]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(message_bytes)
@example(b"")
@example(b"\r\n")
@example(b"\n\n\n")
@example(b"!:\nFrom:]")
@example(b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n----\r\n")
def test_parse_never_raises(data: bytes) -> None:
    v = MessageView.parse(data)
    assert v.size == len(v.section("") or b"")
    assert b"\n" not in v.section("").replace(b"\r\n", b"")  # type: ignore[union-attr]
    bs = v.bodystructure()
    assert bs.count("(") >= 1 and bs.startswith("(") and bs.endswith(")")
    assert v.bodystructure(False)
    env = v.envelope()
    assert env.startswith("(") and env.endswith(")")
    assert "\r\n" not in re.sub(r"\{\d+\}\r\n", "", env)   # CRLF only after a literal
    for spec in SECTIONS:
        out = v.section(spec)
        assert out is None or isinstance(out, bytes)
    for part in ("1", "2", "1.1"):
        v.binary(part)
    v.date()
    v.header_value("subject")
    v.text_for_search()


@given(st.text(alphabet="0123456789:*,", max_size=30), st.integers(0, 5000))
@example("0", 5)
@example("4294967296", 5)
def test_sequence_set_parse_is_valid_or_value_error(text: str, largest: int) -> None:
    try:
        ss = SequenceSet.parse(text, largest)
    except ValueError:
        return
    ranges = ss.ranges
    assert all(1 <= lo <= hi <= 4294967295 for lo, hi in ranges)
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(ranges))
    # every number written in the text is in the set
    for piece in text.split(","):
        for n in piece.split(":"):
            value = largest if n == "*" else int(n)
            if value >= 1:
                assert ss.contains(value)
    assert SequenceSet.parse(str(ss), largest) == ss if ranges else True


@given(st.text(max_size=20), st.integers(0, 10))
def test_sequence_set_any_text(text: str, largest: int) -> None:
    with contextlib.suppress(ValueError):
        SequenceSet.parse(text, largest)


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list('ab@.,;:<>()"\\[] \t\r\né')), max_size=40))
def test_address_lists_never_raise(value: str) -> None:
    for a in parse_addresses(value):
        assert a.imap().startswith("(") and a.imap().endswith(")")
