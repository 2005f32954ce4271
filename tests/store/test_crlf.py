"""The CRLF facts of a message (size with CRLF line ends, lines starting with ".") are
learnt when it is appended from bytes, and agree with what POP3 sends."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from postroom.store import Store
from postroom.store.crlf import crlf_facts
from tests.store.helpers import make_mailbox

MESSAGE_BYTES = st.binary(max_size=400).map(
    lambda b: b.replace(b"x", b"\n").replace(b"y", b"\r").replace(b"z", b"."))


def _sent(data: bytes) -> bytes:
    """What POP3 sends of ``data`` before stuffing, by the rules written out once more:
    every line ended by CRLF, a lone CR at the very end made CRLF, a final CRLF added."""
    text = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if text.endswith(b"\r"):
        text += b"\n"
    elif text and not text.endswith(b"\r\n"):
        text += b"\r\n"
    return text


@settings(max_examples=400)
@given(MESSAGE_BYTES)
def test_facts_agree_with_the_octets_pop3_sends(data: bytes) -> None:
    sent = _sent(data)
    assert crlf_facts(data) == (len(sent), sent.startswith(b".") or b"\n." in sent)


def test_an_append_records_them_with_the_message(store: Store) -> None:
    make_mailbox(store)
    bare_lf = b"Subject: one\n\nfirst line\n.dotted line\nno end"
    crlf = b"Subject: two\r\n\r\nplain. text.\r\n"
    for data in (bare_lf, crlf):
        store.messages.append("example", "bob", "Inbox", data)
    paths = [m.path for m in store.messages.list_messages("example", "bob", "Inbox")]
    recorded = dict(((path, (octets, dots)) for path, octets, dots in store.conn.execute(
        "SELECT path, octets, dot_lines FROM message_crlf_size")))
    assert recorded == {paths[0]: (len(bare_lf) + 4 + 2, 1), paths[1]: (len(crlf), 0)}
