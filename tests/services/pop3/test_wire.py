"""Message encoding on the wire: CRLF line ends, byte-stuffing, exact sizes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postroom.services.pop3.wire import CrlfEncoder, crlf_size, stuffed


def encode(data: bytes, cuts: list[int] | None = None, stuff: bool = True) -> bytes:
    encoder = CrlfEncoder(stuff=stuff)
    pieces, start = [], 0
    for cut in sorted(set(cuts or [])):
        pieces.append(data[start:cut])
        start = cut
    pieces.append(data[start:])
    return b"".join(encoder.feed(p) for p in pieces) + encoder.finish()


def reference(data: bytes) -> bytes:
    """The expected octets: every line ended by CRLF, a final CRLF added if missing."""
    text = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if text.endswith(b"\r"):
        text += b"\n"
    elif text and not text.endswith(b"\r\n"):
        text += b"\r\n"
    return text


@pytest.mark.parametrize(("data", "wire"), [
    (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
    (b"a\nb\n", b"a\r\nb\r\n.\r\n"),
    (b"a\nb", b"a\r\nb\r\n.\r\n"),
    (b".a\r\n..b\r\n.\r\n", b"..a\r\n...b\r\n..\r\n.\r\n"),
    (b"", b".\r\n"),
])
def test_examples(data: bytes, wire: bytes) -> None:
    assert encode(data) == wire


@given(st.binary(max_size=300).map(lambda b: b.replace(b"x", b"\n").replace(b"y", b"\r")
                                   .replace(b"z", b".")),
       st.lists(st.integers(0, 300), max_size=6))
def test_any_split_gives_the_same_bytes_and_size(data: bytes, cuts: list[int]) -> None:
    whole = encode(data)
    assert encode(data, cuts) == whole
    unstuffed = encode(data, cuts, stuff=False)
    assert unstuffed == reference(data)
    assert crlf_size([data]) == len(unstuffed)
    # Unstuffing what was sent gives back the counted octets.
    body = whole[:-3]
    lines = body.split(b"\r\n")
    assert b"\r\n".join(ln[1:] if ln.startswith(b".") else ln for ln in lines) == unstuffed


LINES = st.lists(st.sampled_from([b"a", b".", b"..", b" ", b"\r", b"\n", b"\r\n"]),
                 max_size=30).map(b"".join)


@given(LINES)
def test_the_shortcut_for_crlf_messages_sends_what_the_encoder_sends(data: bytes) -> None:
    """RETR of a small message whose CRLF size equals its length skips the scans for
    bare line ends: the octets on the wire stay exactly the encoder's."""
    if data and crlf_size([data]) == len(data):
        assert stuffed(data) == encode(data)


@given(st.binary(max_size=300).map(lambda b: b.replace(b"x", b"\n").replace(b"y", b"\r")
                                   .replace(b"z", b".")),
       st.lists(st.integers(0, 300), max_size=6))
def test_the_size_count_learns_whether_a_line_starts_with_a_dot(data: bytes,
                                                                cuts: list[int]) -> None:
    """What the maildrop records beside the size: however the file is read in chunks,
    it is right, and a message without such lines is sent as the encoder sends it."""
    encoder = CrlfEncoder(stuff=False)
    pieces, start = [], 0
    for cut in sorted(set(cuts)):
        pieces.append(data[start:cut])
        start = cut
    pieces.append(data[start:])
    for piece in pieces:
        encoder.feed(piece)
    encoder.finish()
    sent = reference(data)
    assert encoder.dot_lines == (sent.startswith(b".") or b"\n." in sent)
    if data and crlf_size([data]) == len(data):
        assert stuffed(data, encoder.dot_lines) == encode(data)
