"""`postroom queue`: look into the connector queues (manual chapter 3, "Queues").

The manual's administrator browses each connector's inbound and outgoing queues,
and the bad mail and quarantine areas, to see what is waiting, why it is waiting
(last error, next retry) and what a message says. Bodies live in append-only
segment files (``DIR/queue/*.seg``), which ordinary tools cannot split into
messages; ``queue show`` reads them for the administrator.

The queue tools of manual 10.7 ("Queue overview": messages waiting by destination
domain) and what an administrator needs beside them: retry now, hold, release and
delete an entry.

* ``postroom queue list [QUEUE] [--connector C] [--state S] [--json]``
* ``postroom queue show ID|TRACKING_ID [--lines N] [--json]``
* ``postroom queue stats [--json]``
* ``postroom queue overview [--json]``
* ``postroom queue retry ID | --all [--connector C] [--json]``
* ``postroom queue hold ID`` / ``queue release ID`` / ``queue delete ID`` ``[--json]``

Every change is recorded in message tracking (service ``admin``; events ``retried``,
``held``, ``released``, ``deleted``) so ``postroom track`` shows who stopped a message.
``delete`` asks no question (scripts use it); ``--json`` prints what was deleted.
An entry being processed (``claimed``) cannot be held or deleted: wait for its attempt
to end. Unknown ids and bad names exit 2 naming the field, and change nothing.

Message bytes are untrusted: ``show`` decodes them leniently and prints them without
markup interpretation. ``overview`` and ``--connector`` read every entry's envelope:
fine for an administrator's look at a queue of some hundred thousand entries.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

import typer

from postroom.cli.common import (
    JsonOption,
    UsageError,
    console,
    done,
    emit,
    fail,
    run,
    timestamp,
)
from postroom.mta.ndr import header_block
from postroom.store.queue import QueueEntry, QueueError
from postroom.store.tracking import TrackingEvent

queue_app = typer.Typer(help="Connector queues: what is waiting and why (manual 3).",
                        no_args_is_help=True)

COLUMNS = ("id", "tracking_id", "queue", "state", "sender", "recipients", "size",
           "attempts", "next_attempt", "last_error")


def entry_record(entry: QueueEntry) -> dict[str, Any]:
    env = entry.envelope
    return {
        "id": entry.id,
        "tracking_id": entry.tracking_id,
        "queue": entry.queue,
        "state": entry.state,
        "sender": env.sender,
        "recipients": list(env.recipients),
        "size": entry.size,
        "attempts": entry.attempts,
        "created": timestamp(entry.created_at),
        "next_attempt": timestamp(entry.next_attempt_at),
        "claimed_by": entry.claimed_by,
        "claim_expires": timestamp(entry.claim_expires),
        "last_error": entry.last_error,
        "client_ip": env.client_ip,
        "auth_user": env.auth_user,
        "extra": env.extra,
        "body_file": entry.segment,
    }


def _guard(func: Any) -> Any:
    """Queue errors are bad input: report them as the field they name."""
    def wrapped(store: Any) -> Any:
        try:
            return func(store)
        except QueueError as exc:
            raise UsageError(exc.field, exc.message) from None
    return wrapped


@queue_app.command("list")
def queue_list(
    queue: str = typer.Argument(None, help="Queue name, e.g. SMTP.inbound (default: all)."),
    connector: str = typer.Option(None, "--connector",
                                  help="Only this connector's queues: SMTP, SF, LS, MTA ..."),
    state: str = typer.Option(None, "--state",
                              help="ready, claimed, held, failed, bad or quarantine."),
    limit: int = typer.Option(1000, "--limit", min=1, help="At most this many entries."),
    as_json: bool = JsonOption,
) -> None:
    """List queue entries, oldest first."""
    def act(store: Any) -> list[dict[str, Any]]:
        if connector is None:
            return [entry_record(e) for e in store.queue.list(queue, state, limit=limit)]
        wanted = check_connector(connector)
        entries = [e for e in store.queue.list(queue, state)
                   if connector_of(e.queue) == wanted]
        return [entry_record(e) for e in entries[:limit]]

    emit(run(_guard(act)), as_json, COLUMNS)


@queue_app.command("show")
def queue_show(
    entry: str = typer.Argument(..., metavar="ID|TRACKING_ID"),
    lines: int = typer.Option(20, "--lines", min=0, help="Body lines to show."),
    as_json: bool = JsonOption,
) -> None:
    """Show one entry: envelope, state, retries, last error, headers and first lines."""
    def act(store: Any) -> dict[str, Any]:
        found = store.queue.get(entry)
        record = entry_record(found)
        head: list[str] = []
        with store.queue.open_body(found) as body:
            raw = body.read(HEADER_LIMIT)
        block = header_block(raw)
        record["headers"] = _text_lines(block)
        for line in raw.splitlines(keepends=True)[:lines]:
            head.append(line.decode("utf-8", "replace").rstrip("\r\n"))
        record["body"] = head
        raw_lines = raw.splitlines(keepends=True)
        after = raw_lines[len(block.splitlines()):] if block else raw_lines
        if block and after and not after[0].strip():
            after = after[1:]      # the blank line ending the headers
        record["_text"] = _text_lines(b"".join(after[:lines]))
        return record

    record = run(_guard(act))
    text = record.pop("_text")
    if as_json:
        emit(record, True)
        return
    headers = record.pop("headers")
    record.pop("body")
    emit(record, False)
    console.print("")
    for line in [*headers, "", *text]:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


@queue_app.command("stats")
def queue_stats(as_json: bool = JsonOption) -> None:
    """Entries and bytes per queue and state, and the segment files holding them."""
    stats = run(lambda store: store.queue.stats())
    if as_json:
        emit(stats, True)
        return
    rows = [{**r, "oldest": timestamp(r["oldest"])} for r in stats["queues"]]
    emit(rows, False, ("queue", "state", "count", "bytes", "oldest"), title="queues")
    console.print(f"segments: {stats['segments']} files, {stats['segment_bytes']} bytes")


# --- administration (manual 10.7) --------------------------------------------------------

HEADER_LIMIT = 1024 * 1024
_CONNECTOR = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
_ADDRESS = re.compile(r"\[([A-Za-z]+):(.*)\]")


def _text_lines(data: bytes) -> list[str]:
    return [line.decode("utf-8", "replace") for line in data.replace(b"\0", b"").splitlines()]


def check_connector(name: str) -> str:
    """``smtp`` -> ``SMTP``; a connector is the part of a queue name before the dot."""
    if not _CONNECTOR.fullmatch(name or ""):
        raise UsageError("connector", f"invalid connector {name!r} (expected e.g. SMTP, SF, "
                                      "LS or MTA)")
    return name.upper()


def connector_of(queue: str) -> str:
    return queue.partition(".")[0].upper()


def destination_of(recipient: str) -> str:
    """Where a recipient goes: the domain of ``[SMTP:bob@x]``, the post office of
    ``[SF:po/mb]`` and ``[LS:po/list]``."""
    match = _ADDRESS.fullmatch(recipient.strip())
    kind, value = (match.group(1).upper(), match.group(2)) if match else ("", recipient)
    if kind in ("SF", "LS") or (not kind and "/" in value and "@" not in value):
        return value.partition("/")[0].lower() or "(none)"
    return value.rpartition("@")[2].strip("<> ").lower() or "(none)"


def _record_admin(store: Any, entries: Iterable[QueueEntry], event: str) -> None:
    """Track an administrator's action on each entry (service ``admin``)."""
    now = time.time()
    events = [TrackingEvent(e.tracking_id, "admin", event,
                            _ADDRESS.sub(r"\2", e.envelope.sender), "",
                            f"queue {e.queue} entry {e.id}", now) for e in entries]
    if events:
        store.tracking.record(*events)
        store.tracking.flush()


def _admin_action(action: str, entry: str, as_json: bool) -> None:
    def act(store: Any) -> dict[str, Any]:
        found = store.queue.get(entry)
        method = {"held": store.queue.hold, "released": store.queue.release,
                  "deleted": store.queue.delete}[action]
        changed = method(found.id)
        _record_admin(store, [changed], action)
        return entry_record(changed)

    record = run(_guard(act))
    if as_json:
        emit(record, True)
        return
    done(f"{action} entry {record['id']} ({record['tracking_id']}) in {record['queue']}")


@queue_app.command("hold")
def queue_hold(entry: str = typer.Argument(..., metavar="ID|TRACKING_ID"),
               as_json: bool = JsonOption) -> None:
    """Stop delivery attempts for an entry until it is released."""
    _admin_action("held", entry, as_json)


@queue_app.command("release")
def queue_release(entry: str = typer.Argument(..., metavar="ID|TRACKING_ID"),
                  as_json: bool = JsonOption) -> None:
    """Let a held entry go: it becomes ready now."""
    _admin_action("released", entry, as_json)


@queue_app.command("delete")
def queue_delete(entry: str = typer.Argument(..., metavar="ID|TRACKING_ID"),
                 as_json: bool = JsonOption) -> None:
    """Delete an entry and its message, without asking; no NDR is sent."""
    _admin_action("deleted", entry, as_json)


@queue_app.command("retry")
def queue_retry(
    entry: str = typer.Argument(None, metavar="[ID|TRACKING_ID]"),
    every: bool = typer.Option(False, "--all", help="Every ready or failed entry."),
    connector: str = typer.Option(None, "--connector",
                                  help="With --all: only this connector's queues."),
    as_json: bool = JsonOption,
) -> None:
    """Try an entry (or all waiting entries) again now, instead of at its next retry."""
    if (entry is None) == (not every):
        raise fail("entry: give an entry ID or --all (not both)")
    if connector is not None and not every:
        raise fail("connector: --connector goes with --all")

    def act(store: Any) -> dict[str, Any]:
        if entry is not None:
            found = store.queue.get(entry)
            if found.state not in ("ready", "failed"):
                raise UsageError("entry", f"queue entry {found.id} is {found.state}: only "
                                          "ready or failed entries can be retried"
                                          + (" (release it first)" if found.state == "held"
                                             else ""))
            count = store.queue.retry_now(found.id)
            _record_admin(store, [found], "retried")
            return {"retried": count, "queues": [found.queue],
                    "entries": [found.tracking_id]}
        wanted = check_connector(connector) if connector else None
        waiting = [e for e in store.queue.list()
                   if e.state in ("ready", "failed")
                   and (wanted is None or connector_of(e.queue) == wanted)]
        queues = sorted({e.queue for e in waiting})
        if wanted is None:
            count = store.queue.retry_now()
        else:
            count = sum(store.queue.retry_now(queue=q) for q in queues)
        _record_admin(store, waiting, "retried")
        return {"retried": count, "queues": queues,
                "entries": [e.tracking_id for e in waiting]}

    result = run(_guard(act))
    if as_json:
        emit(result, True)
        return
    done(f"retrying {result['retried']} entr{'y' if result['retried'] == 1 else 'ies'} now"
         + (f" ({', '.join(result['queues'])})" if result["queues"] else ""))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def overview(entries: Iterable[QueueEntry], now: float) -> dict[str, Any]:
    """Counts by connector and by destination (domain or post office), with the oldest
    entry's age and the next retry (earliest future attempt of a ready entry)."""
    groups: dict[tuple[str, ...], dict[str, Any]] = {}

    def add(key: tuple[str, ...], entry: QueueEntry) -> None:
        row = groups.setdefault(key, {"count": 0, "bytes": 0, "oldest": None,
                                      "next_retry": None, "states": {},
                                      "last_error": None, "_error_at": None})
        if entry.last_error and (row["_error_at"] is None
                                 or entry.next_attempt_at > row["_error_at"]):
            # the most recently deferred entry's error (outbound: the remote reply)
            row["last_error"], row["_error_at"] = entry.last_error, entry.next_attempt_at
        row["count"] += 1
        row["bytes"] += entry.size
        row["states"][entry.state] = row["states"].get(entry.state, 0) + 1
        if row["oldest"] is None or entry.created_at < row["oldest"]:
            row["oldest"] = entry.created_at
        if entry.state == "ready" and entry.next_attempt_at > now and (
                row["next_retry"] is None or entry.next_attempt_at < row["next_retry"]):
            row["next_retry"] = entry.next_attempt_at

    for entry in entries:
        add((connector_of(entry.queue),), entry)
        for destination in sorted({destination_of(r) for r in entry.envelope.recipients}):
            add((connector_of(entry.queue), entry.queue, destination), entry)

    def shaped(key: tuple[str, ...], row: dict[str, Any]) -> dict[str, Any]:
        names = dict(zip(("connector", "queue", "destination"), key, strict=False))
        return {**names, "count": row["count"], "bytes": row["bytes"],
                "states": row["states"], "oldest": timestamp(row["oldest"]),
                "oldest_age_seconds": round(now - row["oldest"]),
                "next_retry": timestamp(row["next_retry"]), "last_error": row["last_error"]}

    ordered = sorted(groups.items(), key=lambda item: (item[0], -item[1]["count"]))
    connectors = [shaped(k, v) for k, v in ordered if len(k) == 1]
    destinations = sorted((shaped(k, v) for k, v in ordered if len(k) == 3),
                          key=lambda r: (r["connector"], -r["count"], r["destination"]))
    return {"connectors": connectors, "destinations": destinations}


@queue_app.command("overview")
def queue_overview(as_json: bool = JsonOption) -> None:
    """Messages waiting per connector and per destination domain or post office (10.7)."""
    now = time.time()
    result = run(lambda store: overview(store.queue.list(), now))
    if as_json:
        emit(result, True)
        return
    for title, columns in (("connectors", ("connector", "count", "bytes", "oldest_age",
                                           "next_retry")),
                           ("destinations", ("connector", "queue", "destination", "count",
                                             "oldest_age", "next_retry", "last_error"))):
        rows = [{**r, "oldest_age": _age(r["oldest_age_seconds"])} for r in result[title]]
        emit(rows, False, columns, title=title)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `postroom` app."""
    app.add_typer(queue_app, name="queue")
