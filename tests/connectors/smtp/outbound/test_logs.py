"""The delivery agent's lines in the SMTP logs ("-OU" records): written for a real
delivery to a real peer, and reading as if each had been written through the log
classes one at a time, whichever path the shared transcript
(:class:`~postroom.logs.session.SessionTranscript`) takes for a command."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

from postroom.connectors.smtp.outbound.routing import Hop
from postroom.connectors.smtp.outbound.session import Connection, Reply
from postroom.logs import Direction, ServiceLogs, W3CEntry
from tests.connectors.smtp.outbound.conftest import Outbound

HOP = Hop("mx.example.net", "192.0.2.25", 25)
# (command, parameters, the peer's reply, DATA octets): what a session logs.
EXCHANGES = [
    ("(connect)", "", Reply(220, "220 mx.example.net ESMTP"), 0),
    ("EHLO", "relay.example.com", Reply(250, "250 mx.example.net"), 0),
    ("AUTH", "PLAIN ****", Reply(235, "235 2.7.0 Authentication successful"), 0),
    ("MAIL", "FROM:<bob@example.com> SIZE=5120", Reply(250, "250 2.1.0 Ok"), 0),
    ("RCPT", "TO:<alice@example.net>", Reply(250, "250 2.1.5 Ok"), 0),
    ("RCPT", "TO:<j\\x@example.net>", Reply(550, "550 5.1.1 no\tsuch user"), 0),
    ("DATA", "5120 octets", Reply(250, "250 2.0.0 Ok: queued as Ünï"), 5120),
    ("QUIT", "", Reply(221, "221 2.0.0 Bye"), 0),
]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 25, 12, 0, 0, tzinfo=timezone(timedelta(hours=1)))

    def __call__(self) -> datetime:
        return self.now


def _one_by_one(home: Path, clock: Clock, number: int) -> None:
    """The reference: what the delivery agent wrote line by line before it shared the
    sessions' transcript."""
    logs = ServiceLogs("SMTP", home, clock=clock)
    for command, params, reply, sent in EXCHANGES:
        text = reply.text
        logs.activity.write(connection_id=number, remote_ip=HOP.address, command=command,
                            parameters=params, response=text,
                            bytes_sent=sent + len(command) + len(params) + 3,
                            bytes_received=len(text) + 2, message_id="0123456789ABCDEF",
                            direction=Direction.OUT)
        logs.w3c.write(W3CEntry(c_ip=HOP.address, cs_method=command, cs_uri_query=params,
                                cs_uri_stem=text, sc_status=reply.code,
                                sc_bytes=sent + len(params), cs_bytes=len(text),
                                cs_version="ESMTP", cs_host=HOP.host))
        logs.debug.write(f"{command} {params}".rstrip(), connection_id=f"OUT{number}",
                         from_client=False)
        logs.debug.write(text, connection_id=f"OUT{number}")
    logs.close()


def _connection(home: Path, clock: Clock) -> int:
    """The agent's lines for the same exchanges; the connection's number."""
    logs = ServiceLogs("SMTP", home, clock=clock)

    async def session() -> int:
        connection = Connection(None, HOP, logs, False)  # type: ignore[arg-type]
        connection.message_id = "0123456789ABCDEF"
        for command, params, reply, sent in EXCHANGES:
            connection._log(command, params, reply, sent=sent)
        connection.flush()
        return connection.id

    number = asyncio.run(session())
    logs.close()
    return number


def test_outgoing_session_lines_match_the_log_classes(tmp_path: Path) -> None:
    clock = Clock()
    number = _connection(tmp_path / "agent", clock)
    _one_by_one(tmp_path / "reference", clock, number)
    expected = {p.name: p.read_text() for p in sorted((tmp_path / "reference").rglob("*.log"))}
    written = {p.name: p.read_text() for p in sorted((tmp_path / "agent").rglob("*.log"))}
    assert set(written) == set(expected) and len(written) == 3
    for name, text in expected.items():
        assert written[name] == text, name
    activity = next(text for name, text in written.items() if "Activity" in name)
    assert "SMTP-OU\t" in activity and "no\\tsuch user" in activity


def test_a_delivery_to_a_real_peer_is_in_the_three_smtp_logs(outbound: Outbound) -> None:
    peer = outbound.peer(9)
    entry = outbound.send(["carol@d9.test"])
    outbound.wait_for(lambda: len(peer.received) == 1)
    assert outbound.settled() == []       # acknowledged: the logs were written before
    folder = outbound.home / "logs" / "SMTP"
    activity = "".join(p.read_text() for p in folder.glob("SMTP-Activity-*.log"))
    debug = "".join(p.read_text() for p in folder.glob("SMTP-Debug-*.log"))
    w3c = "".join(p.read_text() for p in folder.glob("ex*.log"))
    ours = [line.split("\t") for line in activity.splitlines()
            if line.split("\t")[1:3] == ["SMTP-OU", entry.tracking_id]]
    size = len(peer.received[0].data)
    assert [(f[5], f[6], f[7][:3]) for f in ours] == [
        ("MAIL", f"FROM:<bob@example.com> SIZE={size}", "250"),
        ("RCPT", "TO:<carol@d9.test>", "250"),
        ("DATA", f"{size} octets", "250")], ours
    assert all(f[4] == "127.0.0.9" for f in ours)
    assert "RCPT TO:<carol@d9.test>" in debug and "\tOUT" in debug
    assert "RCPT" in w3c and "127.0.0.9" in w3c
