"""MAIL/RCPT parameters and xtext (RFC 3461 §4, RFC 1870, RFC 6152)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postroom.connectors.smtp.params import (
    ParamError,
    check_mail_params,
    split_params,
    xtext_decode,
    xtext_encode,
)

ALL = {"SIZE", "8BITMIME", "SMTPUTF8", "DSN", "AUTH"}


@given(st.text(st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=60))
def test_xtext_round_trip(value: str) -> None:
    encoded = xtext_encode(value)
    assert all("!" <= ch <= "~" and ch != "=" for ch in encoded)
    assert xtext_decode(encoded) == value


@pytest.mark.parametrize("bad", ["a+", "a+2", "a+zz", "a+2b"])
def test_bad_xtext_escapes(bad: str) -> None:
    with pytest.raises(ValueError):
        xtext_decode(bad)


def test_keys_are_case_insensitive_and_keywords_have_no_value() -> None:
    assert split_params(" size=10 Smtputf8") == {"SIZE": "10", "SMTPUTF8": None}


@pytest.mark.parametrize("text", [" =1", " SIZE=", " SI_ZE=1", " SIZE=1 size=2", " A=b=c"])
def test_malformed_parameter_lists(text: str) -> None:
    with pytest.raises(ParamError) as info:
        split_params(text)
    assert info.value.reply.code == 501


def test_binarymime_only_when_offered() -> None:
    with pytest.raises(ParamError):
        check_mail_params({"BODY": "BINARYMIME"}, ALL)
    assert check_mail_params({"BODY": "binarymime"}, ALL | {"BINARYMIME"})["body"] == "BINARYMIME"
