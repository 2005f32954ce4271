"""Delivery of one ``SF.outgoing`` entry into mailboxes (manual 6.2.4, 5.5).

For each recipient ``[SF:postoffice/mailbox]`` of the entry (the MTA has expanded
groups and catch-alls, so a recipient is a mailbox; one that is not — deleted since —
gets an NDR ``5.1.1``):

1. **Disabled** mailbox, post office, or domain of the address the sender used: not
   delivered; NDR per ``postoffice_connector.ndr_generation`` (``enabled``: always,
   ``smtp_settings``: as the SMTP NDR settings say, ``disabled``: none).
2. **Redirection / forward all** (:mod:`.redirection`): copies into ``MTA.inbound``;
   the message is stored only with keep-copy (or when a loop is detected).
3. **Folder**: ``Junk E-mail`` when ``X-ME-Content`` says ``Deliver-To=Junk`` and the
   post office's ``features.junk_email_delivery`` is on; else ``Inbox``.
4. **Footer** (:mod:`.footers`): for mail from another post office.
5. **Append** with ``delivery_id = "<tracking id>/<recipient>"``: exactly once, even
   when the entry is handled again after a crash (the store answers
   ``duplicate=True``, and then every side effect below is skipped too).
6. **Quota** (:mod:`.quota`): on ``QuotaExceeded``, ``quota_exceeded_action``:
   ``return_to_sender`` (NDR 5.2.2), ``postmaster`` (the post office's postmaster
   mailbox gets it) or ``notify_only`` (stored over the limit), with the notices of
   ``quota_notifications``.
7. **Auto-reply** (:mod:`.autoresponder`) and **delivery event** (:mod:`.delivery_event`).
8. **Tracking** (manual 10.5): ``delivered`` (detail ``po/mailbox/folder``),
   ``redirected``, ``autoreplied``, ``bounced`` / ``failed`` (with the reason) or
   ``deferred``.

Outcomes that are not deliveries (bounces, redirected copies) are remembered in
:class:`~.sent_marks.SentMarks` per tracking id and recipient, so a retried entry
neither bounces nor redirects twice. They are looked up only when the entry was
claimed before (``attempts > 1``): on a first attempt no earlier one can have left
any (the MTA routes an entry once, and every claim counts an attempt). Unexpected
errors for a recipient (disk full, database busy) defer it: the other recipients are
finished, then
:class:`DeliveryDeferred` is raised and the queue worker retries the entry later
(and moves it to bad mail after repeated failures) — never stuck, never lost.

Directory lookups (mailbox, post office, domain, the mailbox's addresses) go through
a :class:`~postroom.store.directory_cache.CachedDirectory` refreshed once per entry,
so a directory change applies from the next entry on; mailbox usage and quota are
always read from the message store.

Untrusted input: the envelope and the message (see :mod:`.headers`; the body is only
parsed for footers, which never fail delivery).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from postroom.connectors.postoffice import autoresponder, quota, redirection
from postroom.connectors.postoffice.delivery_event import (
    DeliveryEvents,
    EventRequest,
    connector_type,
)
from postroom.connectors.postoffice.footers import add_footer, footer_for
from postroom.connectors.postoffice.headers import MessageFacts
from postroom.connectors.postoffice.mailbox_address import mailbox_address, plain
from postroom.connectors.postoffice.message_file import MessageFile
from postroom.connectors.postoffice.sent_marks import SentMarks
from postroom.logs import Direction, ServiceLogs
from postroom.store import Store
from postroom.store.addresses import AddressError, parse_connector
from postroom.store.directory import DirectoryError, Mailbox, PostOffice
from postroom.store.directory_cache import CachedDirectory
from postroom.store.messages import AppendResult, MessageStoreError, QuotaExceeded
from postroom.store.queue import QueueEntry
from postroom.store.tracking import TrackingEvent

log = logging.getLogger("postroom.postoffice")

SERVICE = "SF"
INBOX = "Inbox"
JUNK = "Junk E-mail"
DONE_PREFIX = "sf-done:"
REDIRECT_PREFIX = "sf-redirect:"


class DeliveryDeferred(Exception):
    """Some recipients could not be handled now; the entry must be tried again."""


@dataclass(frozen=True)
class Outcome:
    recipient: str          # connector address of the recipient
    event: str              # delivered | redirected | bounced | failed | deferred
    detail: str
    address: str = ""       # the recipient's e-mail address, as shown in tracking


@dataclass
class _Failure:
    recipient: str
    address: str
    status: str
    diagnostic: str
    policy: str             # NDR policy for mta.ndr.bounce (always/smtp_settings/never)


@dataclass
class _EntryState:
    entry: QueueEntry
    sender: str
    facts: MessageFacts
    message: MessageFile
    failures: list[_Failure] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    derived: dict[str, MessageFile] = field(default_factory=dict)   # po -> with footer


Steps = Generator[Future[AppendResult], AppendResult, list[Outcome]]
"""One entry's delivery as steps (:meth:`Delivery.deliver`)."""


class Delivery:
    """Delivers ``SF.outgoing`` entries: :meth:`handle_many` a batch of them (the
    service's way, see :mod:`.connector`), :meth:`handle` one."""

    def __init__(self, store: Store, *, logs: ServiceLogs | None = None,
                 events: DeliveryEvents | None = None, marks: SentMarks | None = None,
                 notices: quota.QuotaNotices | None = None) -> None:
        self.store = store
        self.logs = logs
        self.events = events
        self.marks = marks or SentMarks(store)
        # Shared by the worker threads, refreshed per entry (see the module docstring).
        self.directory = CachedDirectory(store)
        self.notices = notices or quota.QuotaNotices(store, self.marks,
                                                     directory=self.directory)

    # -- one entry -------------------------------------------------------------------------

    def handle(self, entry: QueueEntry) -> list[Outcome]:
        """Deliver every recipient of ``entry``; raise :class:`DeliveryDeferred` when
        some must be tried again (the others are done and will not be repeated)."""
        result = self.handle_many([entry])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def handle_many(self, entries: Sequence[QueueEntry]) -> list[list[Outcome] | Exception]:
        """Deliver several entries on this thread, their appends in one commit.

        Each entry's :meth:`deliver` runs until it waits for an append; then the next
        entry's does, and only when every entry waits (their appends all queued for
        the same group commit) does this thread wait, once for all of them. The result
        for each entry is its outcomes, or the exception :meth:`handle` would raise."""
        results: list[list[Outcome] | Exception] = [[] for _ in entries]
        running: list[tuple[int, Steps, Any, BaseException | None]] = [
            (index, self.deliver(entry), None, None) for index, entry in enumerate(entries)]
        while running:
            waiting: list[tuple[int, Steps, Future[AppendResult]]] = []
            for index, steps, answer, failure in running:
                try:
                    pending = steps.throw(failure) if failure is not None \
                        else steps.send(answer)
                except StopIteration as done:
                    results[index] = done.value
                    continue
                except Exception as exc:
                    results[index] = exc
                    continue
                waiting.append((index, steps, pending))
            running = []
            for index, steps, pending in waiting:
                try:
                    running.append((index, steps, pending.result(), None))
                except Exception as exc:
                    running.append((index, steps, None, exc))
        return results

    def deliver(self, entry: QueueEntry) -> Steps:
        """:meth:`handle` as steps: yields each append's future, is sent its result."""
        with self.store.queue.open_body(entry) as stream:
            message = MessageFile.from_stream(stream, entry.body_length, self.store.home.tmp)
        state = _EntryState(entry, plain(entry.envelope.sender),
                            MessageFacts.from_head(message.head), message)
        self.directory.refresh()
        retried = entry.attempts > 1      # only a retry can find recipients done before
        try:
            for recipient in dict.fromkeys(entry.envelope.recipients):
                if retried and self.marks.has(f"{DONE_PREFIX}{entry.tracking_id}/{recipient}"):
                    continue
                try:
                    outcome = yield from self._recipient(state, recipient)
                except Exception as exc:      # unexpected: try this recipient again later
                    log.exception("SF: %s for %s deferred", entry.tracking_id, recipient)
                    outcome = Outcome(recipient, "deferred", f"{type(exc).__name__}: {exc}")
                if outcome is not None:
                    state.outcomes.append(outcome)
            self._bounce(state)
        finally:
            for derived in state.derived.values():
                derived.discard()
            message.discard()
        for outcome in state.outcomes:
            self._note(state, outcome)
        deferred = [o for o in state.outcomes if o.event == "deferred"]
        if deferred:
            raise DeliveryDeferred("; ".join(f"{o.recipient}: {o.detail}" for o in deferred))
        return state.outcomes

    # -- one recipient ---------------------------------------------------------------------

    def _recipient(self, state: _EntryState, recipient: str,
                   ) -> Generator[Future[AppendResult], AppendResult, Outcome | None]:
        store, entry = self.store, state.entry
        used = self._address_used(entry, recipient)
        try:
            parsed = parse_connector(recipient, "recipient")
        except AddressError:
            parsed = None
        if parsed is None or parsed.connector != "SF":
            return self._fail(state, recipient, used, "5.1.1",
                              "550 5.1.1 Not a mailbox of this server", self._ndr_policy())
        try:
            box = self.directory.get_mailbox(parsed.postoffice, parsed.name)
            po = self.directory.get_postoffice(box.postoffice)
        except DirectoryError:
            return self._fail(state, recipient, used, "5.1.1",
                              "550 5.1.1 Mailbox unknown", self._ndr_policy())
        if used == recipient:
            used = mailbox_address(store, box, directory=self.directory)
        refusal = self._disabled(box, po, used)
        if refusal is not None:
            status, diagnostic = refusal
            return self._fail(state, recipient, used, status, diagnostic, self._ndr_policy())
        plan = redirection.plan(store, box, state.facts)
        if plan.refused:
            self._debug(entry, f"{recipient}: redirection not followed ({plan.refused}); "
                               "stored in the mailbox instead")
        own = (mailbox_address(store, box, used, directory=self.directory)
               if plan.redirects else "")
        sent_copies = []
        for redirect in plan.redirects:
            key = f"{REDIRECT_PREFIX}{entry.tracking_id}/{recipient}/{redirect.reason}"
            if self.marks.has(key):
                continue
            copy_id = redirection.send(store, entry, box, redirect, state.message, state.facts,
                                       own)
            self.marks.mark(key)
            sent_copies.append(f"{redirect.reason} to {', '.join(redirect.targets)} "
                               f"as {copy_id}")
        if sent_copies:
            self._track(state, "redirected", used, "; ".join(sent_copies))
        if not plan.keep_local:
            self.marks.mark(f"{DONE_PREFIX}{entry.tracking_id}/{recipient}")
            return Outcome(recipient, "redirected", "; ".join(sent_copies) or "redirected",
                           used)
        folder = JUNK if state.facts.junk and po.options.get("features.junk_email_delivery",
                                                             True) else INBOX
        message = self._with_footer(state, box.postoffice)
        return (yield from self._store(state, recipient, used, box, folder, message))

    def _store(self, state: _EntryState, recipient: str, used: str, box: Mailbox, folder: str,
               message: MessageFile,
               ) -> Generator[Future[AppendResult], AppendResult, Outcome | None]:
        entry = state.entry
        delivery_id = f"{entry.tracking_id}/{recipient}"
        fits = quota.inbox_fits(self.store, box, message.size)
        result: AppendResult | None = None
        over = fits is False
        if not over:
            try:
                result, folder = yield from self._append(box, folder, message, delivery_id,
                                                         ignore_quota=fits is True)
            except QuotaExceeded:
                over = True
        target_box, note = box, ""
        if over:
            action = self.store.settings.get("postoffice_connector.quota_exceeded_action")
            may_tell = not state.facts.is_bulk(state.sender)
            if action == "postmaster":
                postmaster = self._postmaster(box)
                if postmaster is None:
                    action = "return_to_sender"
                else:
                    result, folder = yield from self._append(postmaster, INBOX, message,
                                                             f"{delivery_id}/postmaster",
                                                             ignore_quota=True)
                    target_box, note = postmaster, f" (mailbox {box.login} is full)"
            elif action == "notify_only":
                result, folder = yield from self._append(box, folder, message, delivery_id,
                                                         ignore_quota=True)
                note = " (over quota)"
            if action == "return_to_sender":
                self.notices.mailbox_full(box, state.sender, action, message.size, may_tell)
                return self._fail(state, recipient, used, "5.2.2",
                                  "552 5.2.2 Mailbox full", "always")
            assert result is not None
            if not result.duplicate:
                self.notices.mailbox_full(box, state.sender, action, message.size, may_tell)
        assert result is not None
        detail = f"{target_box.postoffice}/{target_box.name}/{folder}{note}"
        if result.duplicate:
            self._debug(entry, f"{recipient}: already delivered ({detail}); not repeated")
            return None
        if not over:
            self.notices.after_delivery(box)
        if target_box is box:
            self._side_effects(state, box, used, folder, message)
        return Outcome(recipient, "delivered", detail, used)

    def _append(self, box: Mailbox, folder: str, message: MessageFile, delivery_id: str, *,
                ignore_quota: bool,
                ) -> Generator[Future[AppendResult], AppendResult, tuple[AppendResult, str]]:
        """Append, falling back to the Inbox (re-created if need be) when the folder is
        gone (a user may delete "Junk E-mail"). Yields the append's future: the driver
        (:meth:`handle`, :meth:`handle_many`) waits for it and sends the result back."""
        messages = self.store.messages
        for attempt in range(3):
            try:
                pending = messages.append_async(box.postoffice, box.name, folder,
                                                message.payload, delivery_id=delivery_id,
                                                ignore_quota=ignore_quota)
                return (yield pending), folder
            except QuotaExceeded:
                raise
            except MessageStoreError as exc:
                if exc.field != "folder" or attempt == 2:
                    raise
                if folder != INBOX:
                    folder = INBOX
                else:
                    messages.create_folder(box.postoffice, box.name, INBOX)
        raise AssertionError("unreachable")

    def _side_effects(self, state: _EntryState, box: Mailbox, used: str, folder: str,
                      message: MessageFile) -> None:
        entry = state.entry
        options = box.options
        if options.get("autoresponder.enabled"):
            try:
                reply_id, reason = autoresponder.reply(
                    self.store, self.marks, box, state.sender, state.facts,
                    mailbox_address(self.store, box, used, directory=self.directory))
                if reply_id is not None:
                    self._track(state, "autoreplied", used, f"auto-reply {reply_id} to "
                                                            f"{state.sender}")
                else:
                    self._debug(entry, f"{box.login}: no auto-reply ({reason})")
            except Exception:
                log.exception("SF: auto-reply for %s failed", box.login)
        program = str(options.get("delivery_event.program") or "")
        if self.events is None or not options.get("delivery_event.enabled") or not program:
            return
        if state.facts.is_bulk(state.sender) and not self.store.settings.get(
                "postoffice_connector.delivery_event_on_bulk"):
            self._debug(entry, f"{box.login}: delivery event skipped for bulk/system message")
            return
        try:
            path = message.copy_to_file(self.store.home.tmp, "event")
            self.events.submit(EventRequest(program, path, connector_type(entry.envelope.extra),
                                            state.sender, box.connector_address, box.login,
                                            folder, entry.tracking_id))
        except Exception:
            log.exception("SF: delivery event for %s not started", box.login)

    # -- helpers ---------------------------------------------------------------------------

    def _disabled(self, box: Mailbox, po: PostOffice, used: str) -> tuple[str, str] | None:
        if box.options.get("disabled"):
            return "5.2.1", "550 5.2.1 Mailbox disabled"
        if po.options.get("disabled"):
            return "5.2.1", "550 5.2.1 Post office disabled"
        domain = used.rpartition("@")[2] if "@" in used else ""
        if domain:
            try:
                record = self.directory.get_domain(domain)
            except (DirectoryError, ValueError):
                return None
            if record.options.get("disabled"):
                return "5.1.2", "550 5.1.2 Domain disabled"
        return None

    def _postmaster(self, box: Mailbox) -> Mailbox | None:
        if box.name.lower() == "postmaster":
            return None
        try:
            return self.directory.get_mailbox(box.postoffice, "postmaster")
        except DirectoryError:
            return None

    def _ndr_policy(self) -> str:
        setting = self.store.settings.get("postoffice_connector.ndr_generation")
        return {"enabled": "always", "disabled": "never"}.get(setting, "smtp_settings")

    @staticmethod
    def _address_used(entry: QueueEntry, recipient: str) -> str:
        """The address the sender wrote for this recipient (for NDRs and From lines)."""
        for item in entry.envelope.extra.get("rcpt") or ():
            if isinstance(item, dict) and str(item.get("target", "")).lower() \
                    == recipient.lower() and item.get("address"):
                return str(item["address"])
        return recipient

    def _with_footer(self, state: _EntryState, postoffice: str) -> MessageFile:
        key = postoffice.lower()
        if key in state.derived:
            return state.derived[key]
        result = state.message
        try:
            footer = footer_for(self.store, state.entry.envelope, postoffice)
            if footer is not None and not state.facts.signed:
                changed = add_footer(state.message.read(), footer)
                if changed is not None:
                    result = MessageFile.of_bytes(changed, self.store.home.tmp)
                    state.derived[key] = result
        except Exception:
            log.exception("SF: footer for %s skipped", state.entry.tracking_id)
        return result

    def _fail(self, state: _EntryState, recipient: str, used: str, status: str,
              diagnostic: str, policy: str) -> None:
        state.failures.append(_Failure(recipient, plain(used), status, diagnostic, policy))
        return None

    def _bounce(self, state: _EntryState) -> None:
        """One NDR per policy for the failed recipients; then mark them done.

        ``mta.ndr.bounce`` records their tracking events (bounced / failed and why)."""
        if not state.failures:
            return
        entry = state.entry
        by_policy: dict[str, list[_Failure]] = {}
        for failure in state.failures:
            by_policy.setdefault(failure.policy, []).append(failure)
        for policy, failures in by_policy.items():
            ndr_id = self._send_ndr(entry, failures, policy)
            for failure in failures:
                event = "bounced" if ndr_id else "failed"
                detail = failure.diagnostic + (f"; NDR {ndr_id}" if ndr_id else "")
                state.outcomes.append(Outcome(failure.recipient, event, detail))
                self.marks.mark(f"{DONE_PREFIX}{entry.tracking_id}/{failure.recipient}")

    def _send_ndr(self, entry: QueueEntry, failures: list[_Failure], policy: str) -> str | None:
        from postroom.mta import ndr

        failed = [ndr.FailedRecipient(recipient=f.recipient, address=f.address,
                                      status=f.status, diagnostic=f.diagnostic)
                  for f in failures]
        return ndr.bounce(self.store, entry, failed, service=SERVICE, policy=policy)

    # -- logs and tracking -----------------------------------------------------------------

    def _note(self, state: _EntryState, outcome: Outcome) -> None:
        if outcome.event not in ("redirected", "bounced", "failed"):
            # redirected: recorded when the copies were sent; bounced/failed: by the NDR
            self._track(state, outcome.event,
                        outcome.address or self._address_used(state.entry, outcome.recipient),
                        outcome.detail)
        if self.logs is not None:
            if self.logs.activity.enabled:
                self.logs.activity.write(connection_id="-", remote_ip="", command="DELIVER",
                                         parameters=outcome.recipient,
                                         response=f"{outcome.event} {outcome.detail}",
                                         message_id=state.entry.tracking_id,
                                         direction=Direction.OUT)
            if self.logs.debug.enabled:
                self._debug(state.entry,
                            f"{outcome.recipient}: {outcome.event} ({outcome.detail})")

    def _track(self, state: _EntryState, event: str, recipient: str, detail: str) -> None:
        try:
            self.store.tracking.record(TrackingEvent(
                tracking_id=state.entry.tracking_id, service=SERVICE, event=event,
                sender=state.sender, recipient=plain(recipient), detail=detail[:500],
                at=time.time()))
        except Exception:
            log.exception("SF: tracking event not recorded")

    def _debug(self, entry: QueueEntry, text: str) -> None:
        if self.logs is not None and self.logs.debug.enabled:
            self.logs.debug.write(text, connection_id=entry.tracking_id)
