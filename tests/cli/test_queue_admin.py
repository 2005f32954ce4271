"""`postroom queue list/show/retry/hold/release/delete/overview` (manual 10.7) on real
queue entries, as an administrator uses them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from postroom.store import Store
from postroom.store.queue import Envelope, QueueEntry
from tests.cli.helpers import flat

MESSAGE = (b"From: Alice <alice@example.com>\r\nTo: carol@remote.example\r\n"
           b"Subject: quarterly figures\r\nReceived: from a\r\n by b\r\n\r\n"
           b"first body line\r\nsecond body line\r\n")


def fill(home: Path) -> dict[str, QueueEntry]:
    """An SMTP entry waiting for a retry, another SMTP entry, an SF entry, an MTA one."""
    with Store.open(home) as store:
        q = store.queue
        remote = q.enqueue("SMTP.outgoing", Envelope(
            "[SMTP:alice@example.com]", ["[SMTP:carol@remote.example]",
                                         "[SMTP:dan@remote.example]"]), MESSAGE)
        q.retry(remote.id, time.time() + 900, "451 4.7.1 greylisted")
        other = q.enqueue("SMTP.outgoing", Envelope(
            "[SMTP:alice@example.com]", ["[SMTP:erin@far.example]"]), MESSAGE)
        local = q.enqueue("SF.outgoing", Envelope("[SMTP:x@remote.example]",
                                                  ["[SF:example/bob]"]), MESSAGE)
        inbound = q.enqueue("MTA.inbound", Envelope("", ["[SMTP:bob@example.com]"]), MESSAGE)
        return {"remote": q.get(remote.id), "other": other, "local": local,
                "inbound": inbound}


def events(home: Path, tracking_id: str) -> list[tuple[str, str]]:
    with Store.open(home) as store:
        return [(e.service, e.event) for e in store.tracking.find(tracking_id)]


def state_of(home: Path, entry_id: int) -> str:
    with Store.open(home) as store:
        return store.queue.get(entry_id).state


def test_list_by_connector_and_state(cli: Callable[..., Any],
                                     cli_subprocess: Callable[..., Any], home: Path) -> None:
    entries = fill(home)
    smtp = cli("queue", "list", "--connector", "smtp", "--json").json()
    assert [r["tracking_id"] for r in smtp] == [entries["remote"].tracking_id,
                                                entries["other"].tracking_id]
    sf = cli("queue", "list", "--connector", "SF", "--json").json()
    assert [r["recipients"] for r in sf] == [["[SF:example/bob]"]]
    assert cli("queue", "list", "--connector", "LS", "--json").json() == []
    assert cli("queue", "list", "--connector", "MTA", "--state", "held", "--json").json() == []
    table = cli_subprocess("queue", "list", "--connector", "SF").stdout
    assert entries["local"].tracking_id in table and "SMTP.outgoing" not in table


def test_show_envelope_state_retry_error_and_headers(cli: Callable[..., Any],
                                                     cli_subprocess: Callable[..., Any],
                                                     home: Path) -> None:
    remote = fill(home)["remote"]
    shown = cli("queue", "show", remote.tracking_id, "--json").json()
    assert shown["state"] == "ready"
    assert shown["last_error"] == "451 4.7.1 greylisted"
    assert shown["attempts"] == remote.attempts
    assert shown["next_attempt"].endswith("Z")
    assert shown["recipients"] == ["[SMTP:carol@remote.example]", "[SMTP:dan@remote.example]"]
    assert shown["headers"] == ["From: Alice <alice@example.com>", "To: carol@remote.example",
                                "Subject: quarterly figures", "Received: from a", " by b"]
    text = cli_subprocess("queue", "show", str(remote.id)).stdout
    assert "Subject: quarterly figures" in text
    assert "451 4.7.1 greylisted" in flat(text)
    assert "first body line" in text


def test_show_message_without_headers_and_with_nul(cli: Callable[..., Any],
                                                   home: Path) -> None:
    with Store.open(home) as store:
        entry = store.queue.enqueue("SMTP.inbound", Envelope("", ["[SMTP:a@b.example]"]),
                                    b"no headers here\x00\r\n\xff\xfe\r\n")
    shown = cli("queue", "show", entry.tracking_id, "--json").json()
    assert shown["headers"] == []
    assert "no headers here" in cli("queue", "show", entry.tracking_id).stdout


def test_hold_and_release(cli: Callable[..., Any], home: Path) -> None:
    other = fill(home)["other"]
    held = cli("queue", "hold", other.tracking_id, "--json").json()
    assert held["state"] == "held" and held["id"] == other.id
    assert state_of(home, other.id) == "held"
    assert [r["id"] for r in cli("queue", "list", "--state", "held", "--json").json()] == [
        other.id]
    result = cli("queue", "hold", str(other.id), expect=2)
    assert "entry" in result.stderr and "held" in flat(result.stderr)
    result = cli("queue", "retry", str(other.id), expect=2)
    assert "release it first" in flat(result.stderr)
    text = cli("queue", "release", str(other.id)).stdout
    assert "released" in text and other.tracking_id in text
    assert state_of(home, other.id) == "ready"
    assert cli("queue", "release", str(other.id), expect=2).stderr
    assert events(home, other.tracking_id) == [("admin", "held"), ("admin", "released")]


def test_delete_prints_what_was_deleted(cli: Callable[..., Any], home: Path) -> None:
    local = fill(home)["local"]
    deleted = cli("queue", "delete", local.tracking_id, "--json").json()
    assert deleted["tracking_id"] == local.tracking_id
    assert deleted["queue"] == "SF.outgoing"
    assert deleted["recipients"] == ["[SF:example/bob]"]
    result = cli("queue", "show", local.tracking_id, expect=2)
    assert "entry" in result.stderr
    assert events(home, local.tracking_id) == [("admin", "deleted")]
    assert cli("queue", "delete", local.tracking_id, expect=2).stderr


def test_claimed_entry_cannot_be_held_or_deleted(cli: Callable[..., Any], home: Path) -> None:
    with Store.open(home) as store:
        store.queue.enqueue("LS.outgoing", Envelope("", ["[LS:example/news]"]), MESSAGE)
        [claimed] = store.queue.claim("LS.outgoing", "worker-1")
    for command in ("hold", "delete"):
        result = cli("queue", command, str(claimed.id), expect=2)
        assert "entry" in result.stderr
    assert state_of(home, claimed.id) == "claimed"


def test_retry_one_entry_now(cli: Callable[..., Any], home: Path) -> None:
    remote = fill(home)["remote"]
    assert remote.next_attempt_at > time.time() + 600
    result = cli("queue", "retry", remote.tracking_id, "--json").json()
    assert result == {"retried": 1, "queues": ["SMTP.outgoing"],
                      "entries": [remote.tracking_id]}
    with Store.open(home) as store:
        assert store.queue.get(remote.id).next_attempt_at <= time.time()
    assert events(home, remote.tracking_id) == [("admin", "retried")]


def test_retry_all_of_one_connector(cli: Callable[..., Any], home: Path) -> None:
    entries = fill(home)
    result = cli("queue", "retry", "--all", "--connector", "SMTP", "--json").json()
    assert result["retried"] == 2 and result["queues"] == ["SMTP.outgoing"]
    assert set(result["entries"]) == {entries["remote"].tracking_id,
                                      entries["other"].tracking_id}
    assert events(home, entries["local"].tracking_id) == []
    assert "retrying 4 entries now" in cli("queue", "retry", "--all").stdout


@pytest.mark.parametrize("args,field", [
    (("retry",), "entry"),
    (("retry", "1", "--all"), "entry"),
    (("retry", "1", "--connector", "SMTP"), "connector"),
    (("retry", "--all", "--connector", "not a connector"), "connector"),
    (("list", "--connector", "S.F"), "connector"),
    (("hold", "999999"), "entry"),
    (("release", "NOSUCHID"), "entry"),
    (("delete", "999999"), "entry"),
    (("retry", "NOSUCHID"), "entry"),
])
def test_bad_input_exits_2_and_changes_nothing(cli: Callable[..., Any], home: Path,
                                              args: tuple[str, ...], field: str) -> None:
    fill(home)
    before = cli("queue", "list", "--json").json()
    result = cli("queue", *args, expect=2)
    assert field in result.stderr
    assert cli("queue", "list", "--json").json() == before


def test_overview_by_connector_and_destination(cli: Callable[..., Any],
                                               cli_subprocess: Callable[..., Any],
                                               home: Path) -> None:
    entries = fill(home)
    result = cli("queue", "overview", "--json").json()
    connectors = {r["connector"]: r for r in result["connectors"]}
    assert {k: v["count"] for k, v in connectors.items()} == {"SMTP": 2, "SF": 1, "MTA": 1}
    assert connectors["SMTP"]["next_retry"] is not None      # the greylisted one
    assert connectors["SF"]["next_retry"] is None
    assert connectors["SMTP"]["oldest_age_seconds"] >= 0
    destinations = {(r["queue"], r["destination"]): r["count"]
                    for r in result["destinations"]}
    assert destinations == {("SMTP.outgoing", "remote.example"): 1,
                            ("SMTP.outgoing", "far.example"): 1,
                            ("SF.outgoing", "example"): 1,
                            ("MTA.inbound", "example.com"): 1}
    cli("queue", "hold", str(entries["other"].id))
    held = cli("queue", "overview", "--json").json()
    smtp = next(r for r in held["connectors"] if r["connector"] == "SMTP")
    assert smtp["states"] == {"ready": 1, "held": 1}
    text = cli_subprocess("queue", "overview").stdout
    assert "remote.example" in text and "destinations" in text


def test_overview_of_empty_queues(cli: Callable[..., Any]) -> None:
    assert cli("queue", "overview", "--json").json() == {"connectors": [], "destinations": []}
    assert "(none)" in cli("queue", "overview").stdout
