"""The MTA agent: route each message of ``MTA.inbound`` to the connectors' queues.

Manual 3.4 ("only the MTA can move the email from the SMTP Inbound queue to the
SMTP Outgoing queue"), 6.1.1 (moving messages by the address map, pickup events,
archiving), 6.1.2, 6.1.3. :class:`MtaAgent.handle` is the handler the
:class:`~postroom.services.queue_worker.QueueWorker` of :mod:`postroom.mta.service`
calls for every claimed entry, on one of ``mta.general.max_threads`` threads:

1. **Loop detection.** The message's ``Received`` headers are counted; above
   :data:`MAX_HOPS` every recipient fails with 5.4.6 and the sender gets an NDR: a
   looping message is bounced, never passed on again. The manual names no setting
   for this, so it is a constant (an ``MtaAgent`` argument). 30 is the project's
   choice and stricter than RFC 5321 6.3, which asks servers that count Received
   fields for "a large rejection threshold, normally at least 100" (Postfix uses 50):
   it catches loops sooner, at the risk of bouncing a legitimate message that really
   crossed more than 30 hops.
2. **Pickup event** (:mod:`.pickup_event`), before anything else reads the message.
   A program that changes the message (exit 0, file changed) puts the changed copy
   back into ``MTA.inbound`` as ``<tracking id>-e`` (marked so the event does not run
   twice) and the original entry is acknowledged; routing continues from the copy.
3. **Archive copy** (:mod:`.archive`) when ``mta.archiving.direction`` is ``pickup``
   (every message), or after expansion when it is ``delivery`` (messages routed to at
   least one connector). Archive errors are logged; the message goes on.
4. **Expansion** (:mod:`.expand`): groups, lists, catch-alls, unknown recipients.
5. **NDR** for the recipients that failed, through
   ``postroom.mta.ndr.bounce(store, entry, failed, service="MTA")`` (which decides
   whether an NDR may be sent at all: never to the null sender, never for a bounce,
   and records their ``bounced``/``failed`` tracking events). An NDR that cannot be
   built is logged and tracked; the other recipients still get their mail.
6. **One** ``store.queue.route`` call: one ``SF.outgoing`` entry with every mailbox
   recipient, one ``LS.outgoing`` entry per list, one ``SMTP.outgoing`` entry per
   remote destination domain. Each keeps the envelope's ``extra`` (HELO, DSN
   ``ret``/``envid`` ...) with ``extra["rcpt"]`` cut down to that entry's recipients
   (their DSN ``notify``/``orcpt``; ``target`` rewritten to the final recipient,
   ``expanded_from`` naming the envelope recipient a group or catch-all replaced).
   Nothing left to deliver: the entry is acknowledged.

Every recipient gets a tracking event (manual 10.5): ``routed`` (detail: connector
and target, and the group it came through) under the new entry's tracking id, or
``bounced``/``failed`` from the NDR module.

Throughput: :meth:`MtaAgent.handle_async` (the queue worker's handler) does not wait
for its ``route`` to commit: it hands the route's future to the worker and takes the
next entry, so many entries share one commit of the queue's group-commit writer; the
``routed`` tracking events and activity lines are written when the route committed.
:meth:`MtaAgent.handle` is the same, waiting.

Crash safety: route is atomic (old entry or all new ones). A crash between the NDR
and the route sends the NDR again on the retry; archive copies are idempotent
(``delivery_id``), the mailbox deliveries downstream too.

Known limits: ``route`` does not check that this worker still holds the claim (the
lease is 10 minutes, far longer than routing takes). A crash after a changed message
was re-queued as ``-e`` *and* routed, but before the original was acknowledged, runs
the pickup event again on retry.

Untrusted input: the whole message. Only the header block is read (at most
:data:`HEADER_LIMIT` bytes, in chunks from the queue file) and its ``Received`` fields
are counted by :mod:`.header_fields` (the standard library's compat32 reading, without
building a message object), so no headers, NUL bytes, 8-bit garbage or broken MIME
route like any other message, and a huge body is never loaded.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

from postroom.logs import ServiceLogs
from postroom.mta.archive import ArchiveError, archive_copy, archive_direction
from postroom.mta.expand import Delivery, Expander, Expansion, Unresolved
from postroom.mta.header_fields import count_fields
from postroom.mta.pickup_event import (
    CONNECTOR_TYPES,
    DEFAULT_TIMEOUT,
    run_pickup_event,
    spool_message,
)
from postroom.store import Store
from postroom.store.addresses import display_address
from postroom.store.directory_cache import CachedDirectory
from postroom.store.queue import Envelope, QueueEntry, QueueError, successor_tracking_id
from postroom.store.tracking import TrackingEvent

log = logging.getLogger("postroom.mta")

MAX_HOPS = 30
HEADER_LIMIT = 1024 * 1024
_READ_CHUNK = 16 * 1024
INBOUND = "MTA.inbound"
OUTGOING = {"SF": "SF.outgoing", "LS": "LS.outgoing", "SMTP": "SMTP.outgoing"}
SERVICE = "MTA"


def header_end(data: bytes) -> int:
    """Length of the header block at the start of ``data`` (through the empty line
    that ends it); -1 when ``data`` holds no empty line yet."""
    if data.startswith(b"\n"):
        return 1
    if data.startswith(b"\r\n"):
        return 2
    crlf, lf = data.find(b"\n\r\n"), data.find(b"\n\n")
    if crlf < 0 and lf < 0:
        return -1
    if lf < 0 or 0 <= crlf < lf:
        return crlf + 3
    return lf + 2


def read_header_block(store: Store, entry: QueueEntry, limit: int = HEADER_LIMIT) -> bytes:
    """The message's header block (up to the first empty line), at most ``limit`` bytes.

    The first 16 KB hold it almost always; a longer one is read again up to ``limit``
    in one go (both are single ``pread`` calls)."""
    block = store.queue.read_body(entry, min(_READ_CHUNK, limit))
    end = header_end(block)
    if end < 0 and len(block) < min(limit, entry.body_length):
        block = store.queue.read_body(entry, limit)
        end = header_end(block)
    return block[:end] if end >= 0 else block


def count_hops(block: bytes) -> int:
    """The number of ``Received`` fields in a header block."""
    return count_fields(block, "Received")


def connector_type(envelope: Envelope) -> str:
    """The pickup event's ``connectortype``: who put the message into MTA.inbound.

    Services other than SMTP and the drop folder set ``extra["connector"]`` to ``SF``
    (auto-replies, redirections, notifications) or ``LS`` (list mail).
    """
    value = str(envelope.extra.get("connector") or "SMTP").upper()
    return value if value in CONNECTOR_TYPES else "SMTP"


def plain(address: str) -> str:
    """``[SMTP:bob@x]`` -> ``bob@x`` for tracking and logs ("" stays "")."""
    return display_address(address) if address else ""


class MtaAgent:
    """Route entries of ``MTA.inbound`` (see the module docstring)."""

    def __init__(self, store: Store, *, worker: str | None = None,
                 logs: ServiceLogs | None = None,
                 pickup_event_timeout: float = DEFAULT_TIMEOUT,
                 max_hops: int = MAX_HOPS) -> None:
        self.store = store
        self.worker = worker
        self.logs = logs
        self.pickup_event_timeout = pickup_event_timeout
        self.max_hops = max_hops
        # Shared by the worker threads; refreshed per message, so a directory change
        # applies from the next message on (see directory_cache).
        self.directory = CachedDirectory(store)

    # -- the handler ---------------------------------------------------------------------

    def handle(self, entry: QueueEntry) -> None:
        """Route ``entry`` and wait until that is committed."""
        done = self.handle_async(entry)
        if done is not None:
            done.result()

    def handle_async(self, entry: QueueEntry) -> Future[Any] | None:
        """Route ``entry``; the future of the ``route`` (or ``ack``) that finishes it,
        or None when it is finished already (see the module docstring)."""
        envelope = entry.envelope
        hops = count_hops(read_header_block(self.store, entry))
        if hops > self.max_hops:
            self._debug(entry, f"mail loop: {hops} Received headers (limit {self.max_hops})")
            failed = [Unresolved(r, self._shown(entry, r), "5.4.6",
                                 f"554 5.4.6 Mail loop detected: {hops} Received headers "
                                 f"(limit {self.max_hops})") for r in envelope.recipients]
            self._bounce(entry, failed)
            return self._ack(entry)
        message_file: Path | None = None
        try:
            settings = self.store.settings
            program = str(settings.get("mta.general.pickup_event_program") or "")
            if (settings.get("mta.general.pickup_event_enabled") and program
                    and not envelope.extra.get("pickup_event_done")):
                message_file, modified = self._pickup_event(entry, program)
                if modified:
                    self._continue_changed(entry, message_file)
                    return None
            direction = archive_direction(self.store)
            if direction == "pickup":
                self._archive(entry, message_file)
            catch_alls = not settings.get("smtp.security.disable_all_catchalls")
            self.directory.refresh()
            expansion = Expander(self.directory,  # type: ignore[arg-type]
                                 catch_alls=catch_alls).expand(envelope.recipients)
            targets = build_targets(envelope, expansion)
            if direction == "delivery" and targets:
                self._archive(entry, message_file)
            if expansion.failed:
                self._bounce(entry, expansion.failed)
            if not targets:
                self._debug(entry, "no recipient left to deliver")
                return self._ack(entry)
            routed = self.store.queue.route_async(
                entry.id, [t for t, _ in targets], track=self._routed_events(entry, targets))
            routed.add_done_callback(lambda done: self._after_route(entry, targets, done))
            return routed
        finally:
            if message_file is not None:
                with contextlib.suppress(OSError):
                    message_file.unlink()

    # -- steps -----------------------------------------------------------------------------

    def _pickup_event(self, entry: QueueEntry, program: str) -> tuple[Path, bool]:
        with self.store.queue.open_body(entry) as body:
            path, digest = spool_message(body, self.store.home.tmp, "mta-pickup-")
        connector = connector_type(entry.envelope)
        result = run_pickup_event(program, path, connector, timeout=self.pickup_event_timeout,
                                  digest=digest)
        if result.ok:
            self._debug(entry, f"pickup event {program} {connector}: ok in "
                               f"{result.seconds:.2f} s"
                               + (" (message changed)" if result.modified else ""))
        else:
            log.warning("MTA pickup event %s for %s: %s", program, entry.tracking_id,
                        result.error)
            self._debug(entry, f"pickup event {program} {connector}: {result.error}; the "
                               "message goes on")
        if result.output:
            self._debug(entry, f"pickup event output: {result.output}")
        return path, result.modified

    def _continue_changed(self, entry: QueueEntry, message_file: Path) -> None:
        """The pickup event changed the message: go on with the changed copy."""
        new_id = f"{entry.tracking_id}-e"
        try:
            self.store.queue.get(new_id)      # already re-queued before a crash
        except QueueError:
            envelope = replace(entry.envelope, tracking_id=new_id,
                               extra={**entry.envelope.extra, "pickup_event_done": True})
            self.store.queue.enqueue(INBOUND, envelope, message_file)
        self.store.queue.ack(entry.id, worker=self.worker)
        self._track([TrackingEvent(entry.tracking_id, SERVICE, "event",
                                   sender=plain(entry.envelope.sender),
                                   detail=f"pickup event changed the message; continues as "
                                          f"{new_id}")])

    def _archive(self, entry: QueueEntry, message_file: Path | None) -> None:
        try:
            result = archive_copy(self.store, entry, message_file=message_file)
        except ArchiveError as exc:
            log.warning("MTA archive copy of %s failed: %s", entry.tracking_id, exc)
            self._debug(entry, f"archive copy failed: {exc}")
            return
        if not result.duplicate:
            self._track([TrackingEvent(entry.tracking_id, SERVICE, "archived",
                                       sender=plain(entry.envelope.sender),
                                       detail=str(self.store.settings.get(
                                           "mta.archiving.mailbox")))])

    def _bounce(self, entry: QueueEntry, failed: Sequence[Unresolved]) -> None:
        """NDR for ``failed`` (the NDR module records their tracking events)."""
        try:
            from postroom.mta import ndr

            records = [ndr.FailedRecipient(recipient=f.recipient,
                                           address=self._shown(entry, f.recipient, f.address),
                                           status=f.status, diagnostic=f.diagnostic)
                       for f in failed]
            ndr_id = ndr.bounce(self.store, entry, records, service=SERVICE)
            note = f"NDR {ndr_id}" if ndr_id else "no NDR"
        except Exception as exc:     # the NDR must not cost the other recipients their mail
            log.exception("MTA: NDR for %s failed", entry.tracking_id)
            note = f"NDR not sent: {type(exc).__name__}: {exc}"
            sender = plain(entry.envelope.sender)
            self._track([TrackingEvent(entry.tracking_id, SERVICE, "failed", sender=sender,
                                       recipient=self._shown(entry, f.recipient, f.address),
                                       detail=f"{f.diagnostic}; {note}") for f in failed])
        for f in failed:
            self._activity(entry, "FAIL", f"{f.recipient} {f.address}", f"{f.diagnostic}; {note}")
        self._debug(entry, f"{len(failed)} recipient(s) failed; {note}")

    def _ack(self, entry: QueueEntry) -> Future[Any]:
        return self.store.queue.ack_async(entry.id, worker=self.worker)  # type: ignore[attr-defined,no-any-return]

    def _after_route(self, entry: QueueEntry, targets: Sequence[tuple[tuple[str, Envelope],
                                                                       list[Delivery]]],
                     done: Future[list[QueueEntry]]) -> None:
        """The route committed (or failed: the queue worker retries the entry)."""
        if done.exception() is None:
            try:
                self._routed(entry, targets, done.result())
            except Exception:
                log.exception("MTA: logging the route of %s failed", entry.tracking_id)

    def _routed_events(self, entry: QueueEntry,
                       targets: Sequence[tuple[tuple[str, Envelope], list[Delivery]]],
                       ) -> list[TrackingEvent]:
        """The ``routed`` tracking steps, stored with the route in its transaction: a
        crash can leave a message routed, or not, but never routed without them. They
        name the new entries' tracking ids, which the route gives as
        :func:`successor_tracking_id` says."""
        sender = plain(entry.envelope.sender)
        events = []
        for number, ((_queue, envelope), deliveries) in enumerate(targets, start=1):
            tracking_id = envelope.tracking_id or successor_tracking_id(
                entry.tracking_id, number, len(targets))
            for d in deliveries:
                detail = f"{d.connector} {d.address}" + (f" via {d.via}" if d.via else "")
                events.append(TrackingEvent(tracking_id, SERVICE, "routed", sender=sender,
                                            recipient=self._shown(entry, d.origin, d.address),
                                            detail=detail))
        return events

    def _routed(self, entry: QueueEntry, targets: Sequence[tuple[tuple[str, Envelope],
                                                                  list[Delivery]]],
                created: Sequence[QueueEntry]) -> None:
        for ((queue, _envelope), deliveries), new in zip(targets, created, strict=False):
            self._activity(entry, "ROUTE", f"{queue} " + " ".join(d.address for d in deliveries),
                           new.tracking_id)
        summary = ", ".join(f"{queue} ({len(ds)})" for (queue, _), ds in targets)
        self._debug(entry, f"routed {len(entry.envelope.recipients)} envelope recipient(s) "
                           f"to {summary}")

    # -- helpers ---------------------------------------------------------------------------

    def _shown(self, entry: QueueEntry, recipient: str, address: str | None = None) -> str:
        """The address a person knows for ``recipient``: a remote or failing address
        as is, else the address the client gave at RCPT (from ``extra["rcpt"]``)."""
        if address and not address.startswith("["):
            return address
        for item in _rcpt_data(entry.envelope):
            if str(item.get("target", "")).lower() == recipient.lower() and item.get("address"):
                return str(item["address"])
        return plain(address or recipient)

    def _track(self, events: Sequence[TrackingEvent]) -> None:
        if events:
            with contextlib.suppress(Exception):
                self.store.tracking.record(*events)

    def _debug(self, entry: QueueEntry, text: str) -> None:
        log.debug("%s: %s", entry.tracking_id, text)
        if self.logs is not None:
            self.logs.debug.write(f"{entry.tracking_id}: {text}", connection_id=entry.id)

    def _activity(self, entry: QueueEntry, command: str, parameters: str,
                  response: str) -> None:
        if self.logs is not None:
            self.logs.activity.write(connection_id=entry.id,
                                     remote_ip=entry.envelope.client_ip or "",
                                     command=command, parameters=parameters[:2000],
                                     response=response, message_id=entry.tracking_id)


def _rcpt_data(envelope: Envelope) -> list[dict[str, Any]]:
    data = envelope.extra.get("rcpt")
    if not isinstance(data, list):
        return []
    return [item for item in data if isinstance(item, dict)]


def build_targets(envelope: Envelope, expansion: Expansion,
                  ) -> list[tuple[tuple[str, Envelope], list[Delivery]]]:
    """The ``route`` targets for an expansion, each with the deliveries it carries."""
    by_origin: dict[str, list[dict[str, Any]]] = {}
    for item in _rcpt_data(envelope):
        by_origin.setdefault(str(item.get("target", "")).lower(), []).append(item)
    has_rcpt = isinstance(envelope.extra.get("rcpt"), list)

    def target(queue: str, deliveries: list[Delivery]) -> tuple[tuple[str, Envelope],
                                                                 list[Delivery]]:
        extra = dict(envelope.extra)
        if has_rcpt:
            rcpt = []
            for d in deliveries:
                for item in by_origin.get(d.origin.lower(), ()):
                    copy = {**item, "target": d.address}
                    if d.address.lower() != d.origin.lower():
                        copy["expanded_from"] = d.origin
                    rcpt.append(copy)
            extra["rcpt"] = rcpt
        new = Envelope(sender=envelope.sender, recipients=[d.address for d in deliveries],
                       client_ip=envelope.client_ip, auth_user=envelope.auth_user,
                       tracking_id=None, extra=extra)
        return (queue, new), deliveries

    targets = []
    mailboxes = expansion.by_connector("SF")
    if mailboxes:
        targets.append(target(OUTGOING["SF"], mailboxes))
    for delivery in expansion.by_connector("LS"):
        targets.append(target(OUTGOING["LS"], [delivery]))
    for deliveries in expansion.smtp_by_domain().values():
        targets.append(target(OUTGOING["SMTP"], deliveries))
    return targets
