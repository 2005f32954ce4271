"""`postroom queue list|show|stats` as an administrator uses them."""

from __future__ import annotations

from pathlib import Path

from postroom.store import Store
from postroom.store.queue import Envelope
from tests.store.helpers import message


def fill(home: Path) -> list[str]:
    with Store.open(home) as store:
        a = store.queue.enqueue("SMTP.inbound", Envelope("alice@example.net",
                                ["[SMTP:bob@example.com]"], client_ip="192.0.2.1",
                                extra={"helo": "mx.example.net"}), message(1))
        b = store.queue.enqueue("SMTP.outgoing", Envelope("bob@example.com",
                                ["[SMTP:carol@remote.example]"]), message(2))
        store.queue.retry(b.id, b.created_at + 900, "451 greylisted")
        return [a.tracking_id, b.tracking_id]


def test_queue_list_and_filters(cli, cli_subprocess, home: Path) -> None:
    first, second = fill(home)
    records = cli("queue", "list", "--json").json()
    assert [r["tracking_id"] for r in records] == [first, second]
    only = cli("queue", "list", "SMTP.outgoing", "--json").json()
    assert [(r["tracking_id"], r["last_error"]) for r in only] == [(second, "451 greylisted")]
    assert cli("queue", "list", "--state", "failed", "--json").json() == []
    table = cli_subprocess("queue", "list").stdout
    assert first in table and "SMTP.inbound" in table


def test_queue_show_envelope_and_body(cli, cli_subprocess, home: Path) -> None:
    first, _ = fill(home)
    shown = cli("queue", "show", first, "--json").json()
    assert shown["sender"] == "alice@example.net"
    assert shown["extra"] == {"helo": "mx.example.net"}
    assert shown["body"][:3] == ["From: a@example.com", "To: bob@example.com",
                                 "Subject: message 1"]
    by_id = cli("queue", "show", str(shown["id"]), "--lines", "1", "--json").json()
    assert by_id["body"] == ["From: a@example.com"]
    text = cli_subprocess("queue", "show", first).stdout
    assert "Subject: message 1" in text and "192.0.2.1" in text


def test_queue_stats(cli, home: Path) -> None:
    fill(home)
    stats = cli("queue", "stats", "--json").json()
    assert {(r["queue"], r["state"], r["count"]) for r in stats["queues"]} == {
        ("SMTP.inbound", "ready", 1), ("SMTP.outgoing", "ready", 1)}
    assert stats["segments"] == 1
    assert "SMTP.outgoing" in cli("queue", "stats").stdout


def test_bad_input_exits_2_naming_the_field(cli, home: Path) -> None:
    fill(home)
    result = cli("queue", "show", "NOSUCHID", expect=2)
    assert "entry" in result.stderr
    result = cli("queue", "list", "--state", "lost", expect=2)
    assert "state" in result.stderr
    result = cli("queue", "list", "not a queue", expect=2)
    assert "queue" in result.stderr
