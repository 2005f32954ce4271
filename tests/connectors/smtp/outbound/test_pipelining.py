"""RFC 2920 PIPELINING on the client side: fewer round trips, the same results.

Each recipient still gets its own reply (accepted, deferred, refused) whether the
commands went out together or one at a time, and a server that answers 354 although
it accepted no recipient gets an empty message it refuses, not the mail.
"""

from __future__ import annotations

import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

from postroom.connectors.smtp.outbound.session import _command, wire_data
from tests.connectors.smtp.outbound.conftest import Outbound


def test_mail_rcpt_and_data_go_out_together_to_a_pipelining_peer(
        outbound: Outbound) -> None:
    peer = outbound.peer(30)
    outbound.send(["a@d30.test", "b@d30.test"])
    outbound.wait_for(lambda: len(peer.received) == 1)
    assert outbound.settled() == []
    assert peer.received[0].recipients == ["a@d30.test", "b@d30.test"]
    assert peer.lines_after_mail == [3]      # RCPT, RCPT and DATA arrived with the MAIL


def test_a_peer_without_pipelining_gets_one_command_at_a_time(outbound: Outbound) -> None:
    peer = outbound.peer(31, extensions=("8BITMIME", "SIZE 10000000"),
                         rcpt_replies={"gone@d31.test": "550 5.1.1 unknown"})
    outbound.send(["ok@d31.test", "gone@d31.test"])
    outbound.send(["ok2@d31.test"])
    outbound.wait_for(lambda: len(peer.received) == 2)
    (ndr,) = outbound.wait_for(lambda: outbound.inbox())
    assert b"gone@d31.test" in ndr and b"550 5.1.1 unknown" in ndr
    assert outbound.settled() == []
    assert set(peer.lines_after_mail) == {0}
    assert sorted(r.recipients[0] for r in peer.received) == ["ok2@d31.test", "ok@d31.test"]


def test_mixed_replies_in_one_pipelined_transaction(outbound: Outbound) -> None:
    peer = outbound.peer(32, rcpt_replies={"later@d32.test": "452 4.2.2 mailbox full",
                                           "gone@d32.test": "550 5.1.1 unknown"})
    outbound.send(["gone@d32.test", "ok@d32.test", "later@d32.test"])
    (waiting,) = outbound.wait_for(lambda: [e for e in outbound.outgoing()
                                            if e.state == "ready" and e.last_error])
    assert waiting.envelope.recipients == ["[SMTP:later@d32.test]"]
    assert "452 4.2.2 mailbox full" in waiting.last_error
    assert [r.recipients for r in peer.received] == [["ok@d32.test"]]
    (ndr,) = outbound.wait_for(lambda: outbound.inbox())
    assert b"gone@d32.test" in ndr and b"ok@d32.test" not in ndr


def test_every_recipient_refused_then_the_next_message_on_the_same_connection(
        outbound: Outbound) -> None:
    outbound.set("smtp.delivery.limit_concurrent_connections", 1)
    for n, lenient in ((33, False), (34, True)):
        peer = outbound.peer(n, data_without_recipients=lenient,
                             rcpt_replies={f"gone@d{n}.test": "550 5.1.1 unknown"})
        outbound.send([f"gone@d{n}.test"])
        outbound.send([f"ok@d{n}.test"])
        outbound.wait_for(lambda peer=peer: len(peer.received) == 1)
        assert [r.recipients for r in peer.received] == [[f"ok@d{n}.test"]]
        assert peer.connections == 1        # the refusal did not cost the connection
    ndrs = outbound.wait_for(lambda: len(found := outbound.inbox()) == 2 and found)
    for ndr in ndrs:
        assert b"550 5.1.1 unknown" in ndr and b"no valid recipients" not in ndr
    assert outbound.settled() == []


def test_message_bytes_on_the_wire_match_aiosmtplibs_encoding() -> None:
    """Line ends, final CRLF and dot-stuffing as aiosmtplib's ``data()`` sent them."""
    shapes = [b"", b".", b"a\r\nb\r\n", b"a\nb", b"a\rb\r\n", b".lead\r\n.\r\n..x\r\n",
              b"x\n.y\n", b"mixed\r\nlf\nlone\rcr", b"\r\n.\r\n", b"no end", b"\n\n.\n"]
    for data in shapes:
        expected = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(data)) + b".\r\n"
        assert wire_data(data) == expected, data
    with pytest.raises(ValueError):
        _command("RCPT", "TO:<a@b>\r\nRSET", "ascii")
