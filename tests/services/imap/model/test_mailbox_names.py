"""Mailbox names: modified UTF-7 (RFC 3501 §5.1.3) and UTF-8 (RFC 6855 / RFC 9051)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postroom.services.imap.mailbox_names import decode_mailbox, encode_mailbox


@pytest.mark.parametrize(("wire", "name"), [
    ("~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語"),    # RFC 3501's example
    ("&Jjo-!", "☺!"),                                                   # RFC 2152 style
    ("INBOX", "INBOX"),
    ("Tom &- Jerry", "Tom & Jerry"),
    ("Entw&APw-rfe", "Entwürfe"),
    ("&2D3eAA-", "😀"),                                                 # surrogate pair
    ("", ""),
])
def test_modified_utf7_examples(wire: str, name: str) -> None:
    assert decode_mailbox(wire, utf8=False) == name
    assert encode_mailbox(name, utf8=False) == wire


@pytest.mark.parametrize(("wire", "why"), [
    ("&", "never ends"),
    ("abc&U,BT", "never ends"),
    ("&U,BTFw-&ZeVnLIqe-", "adjacent"),          # must have been one run
    ("&AGE-", "printable ASCII"),                # 'a' must not be encoded
    ("&U,BTF-", "base64"),                       # impossible length
    ("&U/BTFw-", "base64"),                      # '/' is ',' in modified base64
    ("&U,BTFx-", "padding"),                   # leftover bits not zero
    ("&2D0-", "UTF-16"),                         # lone high surrogate
    ("caf\u00e9", "must be encoded"),            # raw 8-bit outside UTF-8 mode
    ("tab\there", "must be encoded"),
    ("&AAA-", "control"),
])
def test_invalid_modified_utf7(wire: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        decode_mailbox(wire, utf8=False)


def test_utf8_mode_passes_names_through() -> None:
    assert decode_mailbox("Entwürfe & Co", utf8=True) == "Entwürfe & Co"
    assert encode_mailbox("台北/&", utf8=True) == "台北/&"
    with pytest.raises(ValueError, match="control"):
        decode_mailbox("bad\x07name", utf8=True)


@given(st.text(st.characters(blacklist_categories=("Cs", "Cc"))))
def test_round_trip_any_text(name: str) -> None:
    wire = encode_mailbox(name, utf8=False)
    assert wire.isascii()
    assert all(" " <= c <= "~" for c in wire)
    assert decode_mailbox(wire, utf8=False) == name


@given(st.text(alphabet=st.sampled_from("&-+,/AZaz09Ug ~\u00e9"), max_size=20))
def test_decode_is_value_error_or_canonical(wire: str) -> None:
    try:
        name = decode_mailbox(wire, utf8=False)
    except ValueError:
        return
    assert encode_mailbox(name, utf8=False) == wire    # only canonical forms accepted
