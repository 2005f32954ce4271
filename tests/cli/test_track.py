"""`postroom track` (manual 10.5): every step of a message, and where it is now."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from postroom.cli.common import UsageError
from postroom.cli.track import parse_time
from postroom.store import Store
from postroom.store.queue import Envelope
from postroom.store.tracking import TrackingEvent

MESSAGE = b"From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n"
HOUR = 3600.0


def history(home: Path) -> dict[str, Any]:
    """A message received, routed to two queues (one delivered, one still waiting) and
    an older, unrelated message."""
    now = time.time()
    with Store.open(home) as store:
        entry = store.queue.enqueue("MTA.inbound", Envelope(
            "[SMTP:alice@remote.example]", ["[SMTP:bob@example.com]",
                                            "[SMTP:carol@far.example]"]), MESSAGE)
        tid = entry.tracking_id
        routed = store.queue.route(entry.id, [
            ("SF.outgoing", Envelope("[SMTP:alice@remote.example]", ["[SF:example/bob]"],
                                     tracking_id=f"{tid}-1")),
            ("SMTP.outgoing", Envelope("[SMTP:alice@remote.example]",
                                       ["[SMTP:carol@far.example]"],
                                       tracking_id=f"{tid}-2"))])
        sf = next(e for e in routed if e.queue == "SF.outgoing")
        store.queue.ack(sf.id)
        smtp = next(e for e in routed if e.queue == "SMTP.outgoing")
        store.queue.retry(smtp.id, now + 900, "451 4.4.1 no answer from host")
        store.tracking.record(
            TrackingEvent(tid, "SMTP", "received", "alice@remote.example", "", "from 192.0.2.7",
                          now - 30),
            TrackingEvent(tid, "MTA", "routed", "alice@remote.example", "bob@example.com",
                          "[SF:example/bob]", now - 20),
            TrackingEvent(tid, "MTA", "routed", "alice@remote.example", "carol@far.example",
                          "[SMTP:carol@far.example]", now - 20),
            TrackingEvent(f"{tid}-1", "SF", "delivered", "alice@remote.example",
                          "bob@example.com", "example/bob Inbox", now - 10),
            TrackingEvent(f"{tid}-2", "SMTP-out", "deferred", "alice@remote.example",
                          "carol@far.example", "451 4.4.1 no answer from host", now - 5),
            TrackingEvent("OLDMESSAGE000001", "SMTP", "received", "zed@old.example", "",
                          "", now - 3 * 86400))
        store.tracking.flush()
        return {"tid": tid, "smtp": smtp}


def test_track_by_id_shows_every_step_and_where_it_is(cli: Callable[..., Any],
                                                      home: Path) -> None:
    facts = history(home)
    tid = facts["tid"]
    result = cli("track", tid, "--json").json()
    assert [(e["tracking_id"], e["service"], e["event"]) for e in result["events"]] == [
        (tid, "SMTP", "received"), (tid, "MTA", "routed"), (tid, "MTA", "routed"),
        (f"{tid}-1", "SF", "delivered"), (f"{tid}-2", "SMTP-out", "deferred")]
    assert all(e["time"].endswith("Z") for e in result["events"])
    assert result["events"][3]["detail"] == "example/bob Inbox"
    [where] = result["queue"]
    assert where["tracking_id"] == f"{tid}-2"
    assert where["queue"] == "SMTP.outgoing"
    assert where["last_error"] == "451 4.4.1 no answer from host"


def test_track_table(cli_subprocess: Callable[..., Any], home: Path) -> None:
    tid = history(home)["tid"]
    text = cli_subprocess("track", tid).stdout
    assert "delivered" in text and "example/bob Inbox" in text
    assert "in the queues now" in text and "SMTP.outgoing" in text


def test_track_by_sender_recipient_and_time(cli: Callable[..., Any], home: Path) -> None:
    tid = history(home)["tid"]
    by_recipient = cli("track", "--recipient", "CAROL@far", "--since", "1h", "--json").json()
    assert [e["event"] for e in by_recipient["events"]] == ["routed", "deferred"]
    assert by_recipient["queue"] == []
    both = cli("track", "--sender", "alice@remote.example", "--recipient", "bob@example.com",
               "--since", "1d", "--json").json()
    assert [e["event"] for e in both["events"]] == ["routed", "delivered"]
    old = cli("track", "--sender", "zed@", "--since", "2020-01-01", "--until", "2d",
              "--json").json()
    assert [e["tracking_id"] for e in old["events"]] == ["OLDMESSAGE000001"]
    recent = cli("track", "--since", "1h", "--json").json()
    assert {e["tracking_id"].split("-")[0] for e in recent["events"]} == {tid}


def test_a_message_only_in_a_queue_is_found(cli: Callable[..., Any], home: Path) -> None:
    with Store.open(home) as store:
        entry = store.queue.enqueue("MTA.inbound", Envelope("", ["[SMTP:a@b.example]"]),
                                    MESSAGE)
    result = cli("track", entry.tracking_id, "--json").json()
    assert result["events"] == []
    assert [r["queue"] for r in result["queue"]] == ["MTA.inbound"]


def test_nothing_found_exits_1(cli: Callable[..., Any], home: Path) -> None:
    history(home)
    result = cli("track", "NOSUCHID00000000", expect=1)
    assert "nothing found" in result.stderr
    result = cli("track", "--sender", "nobody@nowhere.example", "--json", expect=1)
    assert result.json() == {"events": [], "queue": []}


@pytest.mark.parametrize("args,field", [
    ((), "criteria"),
    (("--since", "yesterday-ish"), "since"),
    (("--sender", "a", "--until", "13/05/2024"), "until"),
    (("--since", "1h", "--until", "2h"), "since"),
    (("bad id with spaces",), "tracking_id"),
])
def test_bad_input_exits_2(cli: Callable[..., Any], args: tuple[str, ...], field: str) -> None:
    result = cli("track", *args, expect=2)
    assert field in result.stderr


def test_parse_time_forms() -> None:
    now = 1_700_000_000.0
    assert parse_time("2h", "since", now) == now - 2 * HOUR
    assert parse_time("1d", "since", now) == now - 24 * HOUR
    assert parse_time("90s", "since", now) == now - 90
    assert parse_time("2023-11-14", "since") == 1_699_920_000.0
    assert parse_time("2023-11-14T22:13:20", "since") == 1_700_000_000.0
    assert parse_time("2023-11-14T22:13:20Z", "since") == 1_700_000_000.0
    assert parse_time("2023-11-15T00:13:20+02:00", "since") == 1_700_000_000.0
    with pytest.raises(UsageError, match="since"):
        parse_time("soon", "since")


def test_date_backwards_and_backtrace(cli: Callable[..., Any], home: Path) -> None:
    facts = history(home)
    tid = facts["tid"]
    today = time.strftime("%y%m%d", time.gmtime())
    day = cli("track", "--date", today, "--json").json()
    assert {e["tracking_id"].split("-")[0] for e in day["events"]} == {tid}
    newest = cli("track", tid, "--backwards", "--json").json()
    assert newest["events"][0]["event"] == "deferred"
    # The "received" step names no recipient; the backtrace finds it by following the
    # entry waiting in SMTP.outgoing for carol back to its origin.
    traced = cli("track", "--recipient", "carol@far.example", "--since", "1h", "--backtrace",
                 "--json").json()
    assert [r["tracking_id"] for r in traced["queue"]] == [f"{tid}-2"]
    assert "received" in [e["event"] for e in traced["events"]]
    assert cli("track", "--date", "2405xx", expect=2).stderr


def test_stored_utility_parameters_are_search_defaults(cli: Callable[..., Any],
                                                       home: Path) -> None:
    history(home)
    cli("track", expect=2)
    with Store.open(home) as store:
        store.settings.set("utilities.message_tracking.sender", "zed@old")
    result = cli("track", "--json").json()
    assert [e["tracking_id"] for e in result["events"]] == ["OLDMESSAGE000001"]
