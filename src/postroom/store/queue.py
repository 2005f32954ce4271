"""Connector queues: envelopes, bodies, retries, bad mail and quarantine (the contract).

Manual chapter 3 (how messages flow): every connector and service puts messages into
its *inbound* queue (``SMTP.inbound``, ``SF.inbound`` ...); the MTA is the only thing
that moves an entry from an inbound queue to a connector's *outgoing* queue
(``SMTP.outgoing``, ``SF.outgoing``, ``LS.outgoing``); each connector works only its
own outgoing queue. Messages that cannot be processed go to the bad mail area;
messages held by antivirus or filters go to quarantine (manual 3.x, 4.x). Retry
times follow the connector's settings (manual defaults 15/30/60/240 minutes); the
queue only records ``next_attempt_at``.

A queue entry (envelope + body + state) is the only contract between connectors and
the MTA. Promises every implementation keeps:

* ``enqueue`` returns only when the body bytes and the entry are durable: an SMTP
  server may answer 250 as soon as it returns. Concurrent enqueues share one flush
  and one transaction (group commit).
* ``claim`` hands an entry to one worker for ``lease_seconds``; an entry whose lease
  ran out (its worker crashed) can be claimed again, so nothing is lost — delivery is
  at-least-once, and connectors make delivery idempotent where it matters.
* ``route`` creates the new entries and removes the old one in one transaction: a
  crash leaves either the old entry or all the new ones.

Untrusted input: everything in an envelope came from a remote client (sender,
recipients, HELO, DSN parameters). It is stored as given, after type checks; queue
names are checked against :data:`QUEUE_NAME`.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, Protocol

if TYPE_CHECKING:
    from postroom.store.tracking import TrackingEvent

QUEUE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}\.[a-z][a-z0-9_-]{0,31}")
STATES = ("ready", "claimed", "held", "failed", "bad", "quarantine")
AREAS = ("bad", "quarantine")

Body = bytes | Path
Area = Literal["bad", "quarantine"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class QueueError(ValueError):
    """Refused queue operation; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class AlreadyQueued(QueueError):
    """An enqueue with a ``once_key`` that was used before: nothing was queued."""


ONCE_KEEP_DAYS = 30       # how long enqueue-once keys are remembered


def new_tracking_id(now: float | None = None) -> str:
    """16 characters of Crockford base32: 48 bits of milliseconds, 32 random bits.

    Short enough to read over the phone, unique, and sorted by time of arrival.
    """
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    # random (seeded from os.urandom, reseeded in a forked child) rather than os.urandom:
    # no system call per message; uniqueness is what matters, and the column is UNIQUE.
    value = (millis << 32) | random.getrandbits(32)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(75, -1, -5))


def successor_tracking_id(tracking_id: str, number: int, count: int) -> str:
    """The tracking id ``route`` gives the ``number``-th (from 1) of ``count`` new
    entries of one entry: the same id when there is one, ``-1``, ``-2`` … after it when
    there are several (the MTA names them in the tracking events it stores with the
    route, before the entries exist)."""
    return tracking_id if count == 1 else f"{tracking_id}-{number}"


def check_queue_name(name: str) -> str:
    if not isinstance(name, str) or not QUEUE_NAME.fullmatch(name):
        raise QueueError("queue", f"invalid queue name {name!r} (expected e.g. SMTP.inbound)")
    return name


@dataclass(frozen=True)
class Envelope:
    """Who a message is from and for, as the connector received it."""

    sender: str                       # reverse path; "" for the null sender (bounces)
    recipients: list[str]             # connector addresses: [SMTP:bob@x], [SF:po/mb]
    client_ip: str | None = None
    auth_user: str | None = None
    tracking_id: str | None = None    # generated at enqueue when absent
    extra: dict[str, Any] = field(default_factory=dict)   # HELO, DSN parameters, ...

    def check(self) -> Envelope:
        if not isinstance(self.sender, str):
            raise QueueError("sender", "must be a string")
        if not isinstance(self.recipients, list | tuple) or not self.recipients:
            raise QueueError("recipients", "at least one recipient is required")
        if not all(isinstance(r, str) and r for r in self.recipients):
            raise QueueError("recipients", "every recipient must be a non-empty string")
        if self.tracking_id is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,64}",
                                                             self.tracking_id):
            raise QueueError("tracking_id", f"invalid tracking id {self.tracking_id!r}")
        if not isinstance(self.extra, dict):
            raise QueueError("extra", "must be a dictionary")
        return self


@dataclass(frozen=True)
class QueueEntry:
    id: int
    queue: str
    state: str
    tracking_id: str
    envelope: Envelope
    segment: str              # file holding the body, relative to the data directory
    body_offset: int
    body_length: int
    created_at: float
    next_attempt_at: float
    attempts: int
    claimed_by: str | None
    claim_expires: float | None
    last_error: str | None

    @property
    def size(self) -> int:
        return self.body_length


@dataclass(frozen=True)
class QueueStats:
    queue: str
    state: str
    count: int
    bytes: int
    oldest: float


class Queue(Protocol):
    def enqueue(self, queue: str, envelope: Envelope, body: Body) -> QueueEntry: ...

    def enqueue_async(self, queue: str, envelope: Envelope, body: Body,
                      once_key: str | None = None,
                      track: Sequence[TrackingEvent] = ()) -> Future[QueueEntry]:
        """As ``enqueue``, returning at once. With ``once_key`` the key is recorded in
        the same transaction as the entry; a key used before fails with
        :class:`AlreadyQueued` and queues nothing (a producer that crashed after the
        commit but before cleaning up does not queue its message twice). ``track``:
        message tracking events (the ``received`` step) stored in the same transaction,
        so they exist exactly when the entry does, with no commit of their own."""

    def claim(self, queue: str, worker: str, limit: int = 10,
              lease_seconds: float = 300.0) -> list[QueueEntry]: ...

    def read_body(self, entry: QueueEntry, limit: int | None = None) -> bytes:
        """The body, or its first ``limit`` bytes."""

    def open_body(self, entry: QueueEntry) -> BinaryIO: ...

    def ack(self, entry_id: int, worker: str | None = None) -> None:
        """Remove a finished entry; with ``worker``, only if it still holds the claim."""

    def retry(self, entry_id: int, at: float, error: str, worker: str | None = None) -> None:
        """Back to ready at ``at`` (the connector's retry schedule), noting the error."""

    def fail(self, entry_id: int, error: str, worker: str | None = None) -> None:
        """Give up (e.g. permanent 5xx): kept as ``failed`` for the NDR and the admin."""

    def move_to(self, entry_id: int, area: Area, reason: str) -> Path:
        """Copy the body to DIR/badmail or DIR/quarantine; return the .eml path."""

    def requeue(self, entry_id: int, queue: str) -> QueueEntry: ...

    def hold(self, entry_id: int) -> QueueEntry:
        """Admin hold (manual 10.7): a ready or failed entry becomes ``held``; ``claim``
        skips held entries until :meth:`release`. A claimed entry cannot be held."""

    def release(self, entry_id: int) -> QueueEntry:
        """A held entry becomes ready now."""

    def delete(self, entry_id: int) -> QueueEntry:
        """Remove an entry in any state but ``claimed`` (admin); return what it was."""

    def retry_now(self, entry_id: int | None = None, queue: str | None = None) -> int:
        """Make ready entries (and failed ones) due now: one entry, one queue, or all
        (both None). Return how many changed."""

    def abandon(self, queue: str, workers: Sequence[str]) -> int:
        """Entries of ``queue`` claimed by ``workers`` (processes known to be dead)
        become ready now, without waiting for their leases; return how many."""

    def claimants(self, queue: str) -> list[str]:
        """The workers holding claims on ``queue`` right now."""

    def subscribe(self, callback: Callable[[Sequence[str]], None]) -> None:
        """Call ``callback(queue_names)`` in the writer thread after every commit that
        made entries ready (enqueue, route, retry, release), for in-process wake-up.
        Other processes are woken through :mod:`postroom.store.wake`."""

    def space_commits(self, seconds: float) -> None:
        """Leave at least ``seconds`` between this process's commits under load (0: none),
        for a process none of whose callers waits on a commit for a person (the MTA);
        see :mod:`postroom.store.groupcommit`."""

    def route(self, entry_id: int, targets: Sequence[tuple[str, Envelope]], *,
              at: float | None = None, error: str | None = None,
              track: Sequence[TrackingEvent] = ()) -> list[QueueEntry]:
        """Enqueue the targets (sharing the body bytes) and remove the entry, atomically;
        with ``at``/``error`` the new entries wait until ``at`` (a partial retry).
        A target whose envelope has no tracking id gets :func:`successor_tracking_id`.
        ``track``: message tracking events (the ``routed`` steps) stored in the same
        transaction, so they exist exactly when the new entries do."""

    def route_async(self, entry_id: int, targets: Sequence[tuple[str, Envelope]], *,
                    at: float | None = None, error: str | None = None,
                    track: Sequence[TrackingEvent] = ()) -> Future[list[QueueEntry]]:
        """As ``route``, returning at once (the future is done after the commit)."""

    def get(self, id_or_tracking_id: int | str) -> QueueEntry: ...

    def list(self, queue: str | None = None, state: str | None = None,
             limit: int | None = None) -> list[QueueEntry]: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...
