"""Message tracking (manual 10.5): every step of a message, under its tracking id.

Each service records what it did with a message: the SMTP connector ``received`` it,
the MTA ``routed`` it (one event per recipient, naming the target connector), the
post office connector ``delivered`` it (naming the mailbox and folder) or it
``failed`` / was ``bounced`` / ``deferred`` (naming the reply), the outbound SMTP
connector ``delivered`` it to a remote host. ``postroom track`` shows the path.

Derived messages keep their parent's id as a prefix: a message routed to several
queues gets ``ID-1``, ``ID-2`` ...; :meth:`Tracking.find` with a tracking id returns
the events of the id and of every id derived from it.

Recording is fire-and-forget and cheap: events ride along with the next group commit
of the queue writer (no flush or transaction of their own), so tracking never slows
mail down. A crash can lose the last few events; it never loses mail. The steps that
move a message between queues (``received``, ``routed``) are stored in the move's own
transaction instead (``track=`` of ``enqueue_async`` and ``route``): they exist exactly
when the moved entries do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

EVENTS = ("received", "routed", "delivered", "deferred", "failed", "bounced",
          "redirected", "autoreplied", "archived", "held", "released", "deleted",
          "retried", "quarantined", "badmail", "event")


@dataclass(frozen=True)
class TrackingEvent:
    tracking_id: str
    service: str            # SMTP, MTA, SF, SMTP-out, LS, admin ...
    event: str              # one of EVENTS
    sender: str = ""        # reverse path as an address (no connector prefix), "" = null
    recipient: str = ""     # the recipient this step concerns, "" when it is the message
    detail: str = ""        # connector, mailbox/folder, remote host and reply, error ...
    at: float = field(default_factory=time.time)


class Tracking(Protocol):
    def record(self, *events: TrackingEvent) -> None:
        """Store the events with the next group commit; never raises for bad events
        (they are logged and dropped: tracking must not stop mail)."""

    def find(self, tracking_id: str | None = None, *, sender: str | None = None,
             recipient: str | None = None, since: float | None = None,
             until: float | None = None, limit: int = 1000) -> list[TrackingEvent]:
        """Events matching every given criterion, oldest first. ``tracking_id``
        matches the id and ids derived from it (``ID-1`` ...); ``sender`` and
        ``recipient`` match case-insensitively, as substrings."""

    def flush(self) -> None:
        """Wait until every event recorded so far is committed (tests, shutdown)."""
