"""The header scan gives the same fields as the standard library's compat32 parser."""

from __future__ import annotations

import random
from email.parser import Parser
from email.policy import compat32

from postroom.mta.header_fields import count_fields, header_fields, header_text


def _stdlib(text: str) -> list[tuple[str, str]]:
    return list(Parser(policy=compat32).parsestr(text, headersonly=True).items())


PIECES = ["Received: from a by b\r\n", "\tfor <x@y>;\r\n", " folded\n", "Subject: hi\r\n",
          "From someone@else Mon Jan 1\r\n", "From: <a@b>\n", ":no name\r\n", "\r\n", "\n",
          "\r", "X-Empty:\r\n", "no colon here\r\n", "List-Id: <l.x>\r", "Bad Name: v\r\n",
          "é-8bit: é\r\n", "\x00NUL: v\r\n", "X: a:b:c\r\n", "body text\r\n", "X-Tail: end",
          "  \r\n", "\t\n"]


def test_generated_garbage_parses_like_the_standard_library() -> None:
    rng = random.Random(5)
    for _ in range(5000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))
        assert header_fields(text) == _stdlib(text), repr(text)


def test_a_real_message() -> None:
    text = ("Received: from mx (mx [10.0.0.1])\r\n\tby us; Mon, 1 Jan 2024\r\n"
            "Received: from a\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n  continued\r\n"
            "X-ME-Content: Deliver-To=Junk\r\n\r\nbody: not a header\r\n")
    assert header_fields(text) == _stdlib(text)
    assert count_fields(text.encode(), "received") == 2
    assert count_fields(b"", "Received") == 0


def test_nul_and_8bit_bytes_never_raise() -> None:
    head = b"Received: \x00\xff\xfe\r\n\x00Received: x\r\n\r\n"
    assert header_fields(header_text(head)) == _stdlib(header_text(head))
    assert count_fields(head, "Received") == 1
