"""`postroom track`: follow a message through the server (manual 10.5, Message Tracking).

The manual's tracking utility searches the logs of the SMTP connector, the MTA and the
post office connector by date, sender and recipient, and traces a message from the SMTP
transaction to mailbox delivery. Here every service records its steps in the store
(:mod:`postroom.store.tracking`) under the message's tracking id, so:

* ``postroom track ID [--json]``: every step of that message and of the messages
  derived from it (``ID-1``, ``ID-2`` ... when it went to several queues), and where it
  is right now (its queue entries: queue, state, next attempt, last error);
* ``postroom track --sender A --recipient B --since T [--until T] [--date YYMMDD]
  [--backtrace] [--backwards] [--json]``: the steps matching every given criterion
  (addresses match case-insensitively, as substrings). ``--backtrace`` also finds the
  entries waiting in ``SMTP.outgoing`` for that sender/recipient and traces them back
  to where they came from; ``--backwards`` lists the newest step first. The manual's
  stored utility parameters (``utilities.message_tracking.*``: sender, recipient, date,
  search backwards, backtrace) are the defaults of a search.

``T`` is an ISO date or time (``2024-05-01``, ``2024-05-01T13:30``, with an optional
offset; without one it is UTC) or an age (``90s``, ``30m``, ``2h``, ``1d``, ``1w``).
Times are shown in UTC.

Exit codes: 0 when something was found; 1 when nothing matched (like ``grep``: a search
that finds nothing is not an error in the input); 2 for bad input (no criteria, a time
that cannot be read, ``--since`` after ``--until``).
"""

from __future__ import annotations

import contextlib
import datetime
import re
import time
from typing import Any

import typer

from postroom.cli.common import (
    JsonOption,
    UsageError,
    console,
    emit,
    err_console,
    run,
    timestamp,
)
from postroom.store.queue import QueueEntry, QueueError
from postroom.store.tracking import TrackingEvent

EVENT_COLUMNS = ("time", "tracking_id", "service", "event", "sender", "recipient", "detail")
QUEUE_COLUMNS = ("id", "tracking_id", "queue", "state", "attempts", "next_attempt",
                 "last_error")
_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(text: str, field: str, now: float | None = None) -> float:
    """An ISO date/time (UTC unless it names an offset) or an age such as ``2h``."""
    value = text.strip()
    age = _AGE.fullmatch(value.lower())
    if age:
        return (time.time() if now is None else now) - float(age.group(1)) * \
            _UNITS[age.group(2)]
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(field, f"cannot read time {text!r}: use e.g. 2024-05-01, "
                                "2024-05-01T13:30, 2h or 1d") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def event_record(event: TrackingEvent) -> dict[str, Any]:
    return {"time": timestamp(event.at), "tracking_id": event.tracking_id,
            "service": event.service, "event": event.event, "sender": event.sender,
            "recipient": event.recipient, "detail": event.detail}


def location_record(entry: QueueEntry) -> dict[str, Any]:
    return {"id": entry.id, "tracking_id": entry.tracking_id, "queue": entry.queue,
            "state": entry.state, "attempts": entry.attempts,
            "next_attempt": timestamp(entry.next_attempt_at),
            "last_error": entry.last_error}


def current_location(store: Any, tracking_id: str) -> list[QueueEntry]:
    """The queue entries of the message and of the messages derived from it."""
    found: list[QueueEntry] = []
    with contextlib.suppress(QueueError):
        found.append(store.queue.get(tracking_id))
    prefix = f"{tracking_id}-"
    found.extend(e for e in store.queue.list() if e.tracking_id.startswith(prefix))
    return found


def parse_date(text: str) -> tuple[float, float]:
    """The manual's ``YYMMDD`` (or an ISO ``YYYY-MM-DD``): that UTC day, start to end."""
    value = text.strip()
    try:
        if re.fullmatch(r"\d{6}", value):
            day = datetime.datetime.strptime(value, "%y%m%d")
        else:
            day = datetime.datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise UsageError("date", f"cannot read date {text!r}: use YYMMDD (060905) or "
                                 "YYYY-MM-DD") from None
    start = day.replace(tzinfo=datetime.UTC).timestamp()
    return start, start + 86400 - 0.001


def _matches(needle: str | None, haystack: list[str]) -> bool:
    return not needle or any(needle.lower() in value.lower() for value in haystack)


def backtrace_outgoing(store: Any, sender: str | None, recipient: str | None,
                       ) -> list[QueueEntry]:
    """SMTP.outgoing entries whose envelope matches (manual 10.5, "Backtrace Message from
    Outgoing Queue to Origin")."""
    if not (sender or recipient):
        return []
    return [e for e in store.queue.list("SMTP.outgoing")
            if _matches(sender, [e.envelope.sender])
            and _matches(recipient, list(e.envelope.recipients))]


def track(
    tracking_id: str = typer.Argument(None, metavar="[TRACKING_ID]",
                                      help="The message's tracking id."),
    sender: str = typer.Option(None, "--sender", help="Sender address (or part of it)."),
    recipient: str = typer.Option(None, "--recipient",
                                  help="Recipient address (or part of it)."),
    since: str = typer.Option(None, "--since", help="From this time: ISO, or an age: 2h, 1d."),
    until: str = typer.Option(None, "--until", help="Up to this time: ISO, or an age."),
    date: str = typer.Option(None, "--date", help="One UTC day, YYMMDD as in the manual."),
    backwards: bool = typer.Option(None, "--backwards/--forwards",
                                   help="Newest step first (default: "
                                        "utilities.message_tracking.search_backwards)."),
    backtrace: bool = typer.Option(None, "--backtrace/--no-backtrace",
                                   help="Also trace matching SMTP.outgoing entries to their "
                                        "origin (default: utilities.message_tracking."
                                        "backtrace_outgoing)."),
    limit: int = typer.Option(1000, "--limit", min=1, help="At most this many steps."),
    as_json: bool = JsonOption,
) -> None:
    """Show every step of a message (by tracking id), or of the messages matching a
    sender, recipient and time range; exit 1 when nothing matches."""
    def act(store: Any) -> dict[str, Any]:
        settings = store.settings
        who_from, who_to, day = sender, recipient, date
        if not tracking_id:     # the utility's stored parameters are a search's defaults
            who_from = who_from or settings.get("utilities.message_tracking.sender") or None
            who_to = who_to or settings.get("utilities.message_tracking.recipient") or None
            if not (since or until):
                day = day or settings.get("utilities.message_tracking.date") or None
        if not (tracking_id or who_from or who_to or since or until or day):
            raise UsageError("criteria", "give a tracking id, or --sender, --recipient, "
                                         "--date and/or --since/--until")
        now = time.time()
        start = parse_time(since, "since", now) if since else None
        end = parse_time(until, "until", now) if until else None
        if day:
            day_start, day_end = parse_date(day)
            start = day_start if start is None else max(start, day_start)
            end = day_end if end is None else min(end, day_end)
        if start is not None and end is not None and start > end:
            raise UsageError("since", "--since is after --until (or outside --date)")
        if tracking_id is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,64}",
                                                         tracking_id):
            raise UsageError("tracking_id", f"invalid tracking id {tracking_id!r}")
        events = store.tracking.find(tracking_id or None, sender=who_from, recipient=who_to,
                                     since=start, until=end, limit=limit)
        if tracking_id:
            where = current_location(store, tracking_id)
        else:
            trace = backtrace if backtrace is not None else \
                bool(settings.get("utilities.message_tracking.backtrace_outgoing"))
            where = backtrace_outgoing(store, who_from, who_to) if trace else []
            known = {(e.tracking_id, e.at, e.event, e.recipient) for e in events}
            for root in sorted({e.tracking_id.split("-")[0] for e in where}):
                events.extend(e for e in store.tracking.find(root, limit=limit)
                              if (e.tracking_id, e.at, e.event, e.recipient) not in known)
            events.sort(key=lambda e: e.at)
        newest_first = backwards if backwards is not None else \
            bool(settings.get("utilities.message_tracking.search_backwards"))
        if newest_first:
            events.reverse()
        return {"events": [event_record(e) for e in events],
                "queue": [location_record(e) for e in where]}

    result = run(act)
    if as_json:
        emit(result, True)
    else:
        if result["events"]:
            emit(result["events"], False, EVENT_COLUMNS, title="steps (UTC)")
        if result["queue"]:
            emit(result["queue"], False, QUEUE_COLUMNS, title="in the queues now")
        elif tracking_id and result["events"]:
            console.print("not in any queue now (delivered, bounced or removed)")
    if not result["events"] and not result["queue"]:
        what = f"tracking id {tracking_id}" if tracking_id else "these criteria"
        err_console.print(f"nothing found for {what}", highlight=False, markup=False)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``postroom track`` to the `postroom` app."""
    app.command("track")(track)
