"""`postroom queue`: look into the connector queues (manual chapter 3, "Queues").

The manual's administrator browses each connector's inbound and outgoing queues,
and the bad mail and quarantine areas, to see what is waiting, why it is waiting
(last error, next retry) and what a message says. Bodies live in append-only
segment files (``DIR/queue/*.seg``), which ordinary tools cannot split into
messages; ``queue show`` reads them for the administrator.

* ``postroom queue list [QUEUE] [--state S] [--json]``
* ``postroom queue show ID|TRACKING_ID [--lines N] [--json]``
* ``postroom queue stats [--json]``

Read-only: nothing here changes a queue. Message bytes are untrusted: ``show``
decodes them leniently and prints them without markup interpretation.
"""

from __future__ import annotations

from typing import Any

import typer

from postroom.cli.common import JsonOption, UsageError, console, emit, run, timestamp
from postroom.store.queue import QueueEntry, QueueError

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
    state: str = typer.Option(None, "--state",
                              help="ready, claimed, failed, bad or quarantine."),
    limit: int = typer.Option(1000, "--limit", min=1, help="At most this many entries."),
    as_json: bool = JsonOption,
) -> None:
    """List queue entries, oldest first."""
    records = run(_guard(lambda store: [entry_record(e) for e in
                                        store.queue.list(queue, state, limit=limit)]))
    emit(records, as_json, COLUMNS)


@queue_app.command("show")
def queue_show(
    entry: str = typer.Argument(..., metavar="ID|TRACKING_ID"),
    lines: int = typer.Option(20, "--lines", min=0, help="Body lines to show."),
    as_json: bool = JsonOption,
) -> None:
    """Show one entry: its envelope and the first lines of the message."""
    def act(store: Any) -> dict[str, Any]:
        found = store.queue.get(entry)
        record = entry_record(found)
        head: list[str] = []
        with store.queue.open_body(found) as body:
            for _ in range(lines):
                line = body.readline()
                if not line:
                    break
                head.append(line.decode("utf-8", "replace").rstrip("\r\n"))
        record["body"] = head
        return record

    record = run(_guard(act))
    if as_json:
        emit(record, True)
        return
    body = record.pop("body")
    emit(record, False)
    console.print("")
    for line in body:
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


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `postroom` app."""
    app.add_typer(queue_app, name="queue")
