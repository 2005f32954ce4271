"""What happens to an entry after an attempt: per-recipient results to queue changes.

Manual 6.2.3.8; RFC 5321 §4.2.5 / §6.1 (4xx: try again later, 5xx: give up and tell
the sender), RFC 3461/3464 (notices).

For one attempt at one ``SMTP.outgoing`` entry each recipient ended as

* **delivered** (2xx to the data): tracked ``delivered`` with the remote host and its
  reply; a "relayed" notice when it asked ``NOTIFY=SUCCESS`` and the peer had no DSN;
* **failed** (5xx, a permanent routing error, or a 4xx past the failed message
  lifetime): one NDR for all of them (:func:`postroom.mta.ndr.bounce`, which tracks
  them ``bounced``/``failed``) with each remote reply and remote host;
* **deferred** (4xx, no connection): tracked ``deferred``; the entry waits for the
  next retry (:mod:`.schedule`), carrying *only these* recipients — a partial success
  never sends the message twice to the recipients that already have it. A delay
  notice goes out when one is due.

Queue changes, crash-safe in this order: notices and NDRs are queued first, then the
entry is acknowledged (``ack_async``: group-committed with other acks), retried in
place (``retry``: same recipients), or replaced atomically (``route``: fewer
recipients, or the history must record a delay notice) and then given its retry
time. A crash between the two steps repeats the attempt: an NDR or notice may be sent
twice, and recipients that already got the message may get it again (the at-least-once
boundary, docs/smtp-outbound.md). Entries past their lifetime with nothing delivered
are moved to the bad mail area after the NDR, as the manual says.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from typing import Any

from postroom.connectors.smtp.outbound.message import rcpt_info
from postroom.connectors.smtp.outbound.notices import NoticeRecipient, send_notice, wants
from postroom.connectors.smtp.outbound.schedule import (
    HISTORY_KEY,
    History,
    delay_notice_due,
    expired,
    next_attempt,
)
from postroom.mta.ndr import FailedRecipient, bounce, plain_address
from postroom.store.queue import Envelope, QueueEntry, QueueError
from postroom.store.tracking import TrackingEvent

log = logging.getLogger("postroom.smtp.out")

QUEUE = "SMTP.outgoing"
SERVICE = "SMTP"


@dataclass(frozen=True)
class Result:
    recipient: str          # [SMTP:addr]
    status: str             # enhanced status code
    text: str               # the reply or our error, one line
    remote: str | None      # "mx.host [ip]" when a server answered


@dataclass
class Attempt:
    entry: QueueEntry
    delivered: list[Result] = field(default_factory=list)
    deferred: list[Result] = field(default_factory=list)
    failed: list[Result] = field(default_factory=list)
    dsn_passed: bool = False      # the peer took NOTIFY: it reports success itself

    @property
    def simple_success(self) -> bool:
        return not self.deferred and not self.failed and (
            self.dsn_passed or not any(wants(self.entry, r.recipient, "relayed")
                                       for r in self.delivered))


def track(store: Any, attempt: Attempt, now: float) -> None:
    sender = plain_address(attempt.entry.envelope.sender)
    events = [TrackingEvent(attempt.entry.tracking_id, SERVICE, "delivered", sender,
                            plain_address(r.recipient), f"{r.remote}: {r.text}", now)
              for r in attempt.delivered]
    events += [TrackingEvent(attempt.entry.tracking_id, SERVICE, "deferred", sender,
                             plain_address(r.recipient),
                             f"{r.remote + ': ' if r.remote else ''}{r.text}", now)
               for r in attempt.deferred]
    if events:
        try:
            store.tracking.record(*events)
        except Exception:
            log.exception("could not record tracking events for %s", attempt.entry.tracking_id)


async def ack(store: Any, entry: QueueEntry, worker: str) -> None:
    """Acknowledge through the writer's group commit; a lost lease is logged."""
    try:
        await asyncio.wrap_future(store.queue.ack_async(entry.id, worker))
    except (QueueError, LookupError) as exc:
        log.warning("entry %s (%s) was not ours to acknowledge any more: %s",
                    entry.id, entry.tracking_id, exc)


def finish(store: Any, attempt: Attempt, worker: str, now: float, real_now: float) -> None:
    """Everything but the plain success path (blocking: run in a thread).

    ``now`` is the service clock (schedule decisions); ``real_now`` the wall clock the
    queue compares retry times with."""
    entry = attempt.entry
    settings = store.settings
    history = History.of(entry, now)
    if attempt.delivered and not attempt.dsn_passed:
        relayed = [NoticeRecipient(r.recipient, "2.0.0", r.text, r.remote)
                   for r in attempt.delivered if wants(entry, r.recipient, "relayed")]
        _safely(send_notice, store, entry, "relayed", relayed, now=now)
    failed = list(attempt.failed)
    deferred = list(attempt.deferred)
    gave_up = False
    if deferred and expired(settings, history, now):
        hours = int(settings.get("smtp.delivery.failed_message_lifetime"))
        failed += [replace(r, status="4.4.7" if r.status.startswith("4") else r.status,
                           text=f"{r.text} (gave up after {hours} hours)") for r in deferred]
        deferred = []
        gave_up = True
    if failed:
        _safely(bounce, store, entry, [
            FailedRecipient(r.recipient, plain_address(r.recipient), r.status, r.text,
                            r.remote) for r in failed], service=SERVICE)
    if not deferred:
        if gave_up and not attempt.delivered:
            store.queue.move_to(entry.id, "bad", f"SMTP: {failed[0].text}"[:500])
        else:
            try:
                store.queue.ack(entry.id, worker=worker)
            except (QueueError, LookupError) as exc:
                log.warning("entry %s: %s", entry.tracking_id, exc)
        return
    at = next_attempt(settings, history, now)
    notices = history.delay_notices
    if delay_notice_due(settings, history, now):
        wanted = [NoticeRecipient(r.recipient, r.status, r.text, r.remote)
                  for r in deferred if wants(entry, r.recipient, "delayed")]
        if wanted and _safely(send_notice, store, entry, "delayed", wanted,
                              until=history.first_attempt + 3600.0 * int(
                                  settings.get("smtp.delivery.failed_message_lifetime")),
                              now=now):
            notices += 1
    error = "; ".join(f"{plain_address(r.recipient)}: {r.text}" for r in deferred)[:500]
    real_at = real_now + (at - now)
    remaining = [r.recipient for r in deferred]
    if remaining == list(entry.envelope.recipients) and notices == history.delay_notices:
        store.queue.retry(entry.id, real_at, error, worker=worker)
        return
    extra = dict(entry.envelope.extra)
    if isinstance(extra.get("rcpt"), list):
        extra["rcpt"] = [item for item in extra["rcpt"]
                         if any(item is rcpt_info(entry, r) for r in remaining)]
    extra[HISTORY_KEY] = history.carried(delay_notices=notices, not_before=at)
    envelope = Envelope(sender=entry.envelope.sender, recipients=remaining,
                        client_ip=entry.envelope.client_ip, auth_user=entry.envelope.auth_user,
                        tracking_id=None, extra=extra)
    # One transaction: the remaining recipients are never due before ``real_at``.
    store.queue.route(entry.id, [(QUEUE, envelope)], at=real_at, error=error)


def _safely(func: Any, *args: Any, **kwargs: Any) -> Any:
    """Notices and NDRs must not stop the queue: log and go on."""
    try:
        return func(*args, **kwargs)
    except Exception:
        log.exception("%s failed", getattr(func, "__name__", func))
        return None
