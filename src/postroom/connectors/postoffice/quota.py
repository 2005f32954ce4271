"""Mailbox quotas and usage notifications (manual 5.5.3, 5.3.5, 6.2.4.2).

* **Quota enumeration** (``postoffice_connector.quota_enumeration``): the store
  checks a mailbox's size limit against all its folders; with ``inbox`` only the
  Inbox counts, so the connector checks the Inbox itself and appends with
  ``ignore_quota`` when it fits.
* **Over quota** (``postoffice_connector.quota_exceeded_action``) is decided in
  :mod:`.delivery`; this module sends the notices that go with it
  (``postoffice_connector.quota_notifications``): the mailbox (and the post office's
  administrator) learn that it is full **once per crossing** — the mark is cleared
  when a later delivery finds the mailbox under its limit again; a sender learns
  that his message was not returned but handled otherwise, per message.
* **Post office usage** (5.3.5, ``usage_notifications.enabled``/``threshold_mb``/
  ``notify_mailbox`` of the post office): when the sum of its mailboxes' sizes
  reaches the threshold, the named mailbox gets one notice; again once per crossing.
  The sum is recomputed at most every ``usage_check_seconds`` per post office.

No loops: notices are appended directly to local mailboxes or sent with the null
sender (:mod:`.notifications`); neither passes through these checks again.
"""

from __future__ import annotations

import threading
import time

from postroom.connectors.postoffice import notifications
from postroom.connectors.postoffice.sent_marks import SentMarks
from postroom.store import Store
from postroom.store.directory import Directory, DirectoryError, Mailbox

MB = 1024 * 1024


def inbox_fits(store: Store, box: Mailbox, size: int) -> bool | None:
    """Under ``quota_enumeration = inbox``: does the message fit the Inbox allowance?

    None when the store's own all-folders check applies (no limit, or all folders)."""
    if box.quota_bytes is None:
        return None
    if store.settings.get("postoffice_connector.quota_enumeration") != "inbox":
        return None
    inbox = next((f for f in store.messages.list_folders(box.postoffice, box.name)
                  if f.name.lower() == "inbox"), None)
    used = inbox.size if inbox is not None else 0
    return used + size <= box.quota_bytes


def admin_mailbox(store: Store, postoffice: str) -> str | None:
    """Who administers a post office for notices: ``usage_notifications.notify_mailbox``,
    else its ``postmaster`` mailbox, else nobody."""
    try:
        po = store.directory.get_postoffice(postoffice)
    except DirectoryError:
        return None
    for name in (str(po.options.get("usage_notifications.notify_mailbox") or ""), "postmaster"):
        if not name:
            continue
        try:
            return store.directory.get_mailbox(postoffice, name).name
        except DirectoryError:
            continue
    return None


class QuotaNotices:
    def __init__(self, store: Store, marks: SentMarks, *,
                 usage_check_seconds: float = 10.0,
                 directory: Directory | None = None) -> None:
        self.store = store
        self.marks = marks
        # For post office lookups (the connector passes its cache); mailbox usage is
        # always read from the store itself.
        self.directory = directory if directory is not None else store.directory
        self.usage_check_seconds = usage_check_seconds
        self._last_usage_check: dict[str, float] = {}
        self._lock = threading.Lock()

    # -- a mailbox is full -----------------------------------------------------------------

    def mailbox_full(self, box: Mailbox, sender: str, action: str, size: int,
                     sender_may_be_told: bool) -> None:
        """Send the notices ``quota_notifications`` asks for after a refused message."""
        mode = self.store.settings.get("postoffice_connector.quota_notifications")
        if mode == "none":
            return
        what = {"return_to_sender": "returned to its sender",
                "postmaster": "passed to the post office's postmaster",
                "notify_only": "stored over the limit"}.get(action, "not delivered")
        if mode == "sender_and_mailbox" and self.marks.first(self._full_key(box)):
            limit = (box.quota_bytes or 0) / MB
            text = (f"Your mailbox {box.login} has reached its size limit of {limit:.1f} MB.\n"
                    f"A message of {size} bytes from {sender or 'the mail system'} was "
                    f"{what}.\nDelete or archive messages to receive mail again.\n"
                    "You will not be told again until the mailbox is under its limit.\n")
            subject = "Your mailbox is full"
            notifications.deliver_to_mailbox(self.store, box.postoffice, box.name, subject,
                                             text, f"quota-full:{box.postoffice}/{box.name}:"
                                                   f"{time.time_ns()}")
            admin = admin_mailbox(self.store, box.postoffice)
            if admin is not None and admin.lower() != box.name.lower():
                notifications.deliver_to_mailbox(
                    self.store, box.postoffice, admin, f"Mailbox {box.login} is full", text,
                    f"quota-full-admin:{box.postoffice}/{box.name}:{time.time_ns()}")
        # The sender is told here only when the message was not returned (an NDR is
        # the sender's notice for return_to_sender).
        if action != "return_to_sender" and sender and sender_may_be_told:
            notifications.send_to_remote(
                self.store, sender, f"Delivery to {box.login}: mailbox full",
                f"Your message to {box.login} arrived while the mailbox was over its size "
                f"limit.\nIt was {what}.\n", "quota")

    def _full_key(self, box: Mailbox) -> str:
        return f"quota-full:{box.postoffice}/{box.name}"

    # -- after every delivery --------------------------------------------------------------

    def after_delivery(self, box: Mailbox) -> None:
        """Clear the "full" mark of a mailbox back under its limit; check the post
        office's usage threshold."""
        if box.quota_bytes is not None:
            used, _count = self.store.messages.usage(box.postoffice, box.name)
            if used < box.quota_bytes:
                self.marks.forget(self._full_key(box))
        self.check_postoffice(box.postoffice)

    def check_postoffice(self, postoffice: str, *, force: bool = False) -> bool:
        """Manual 5.3.5; True when a notice was sent now."""
        try:
            po = self.directory.get_postoffice(postoffice)
        except DirectoryError:
            return False
        threshold = int(po.options.get("usage_notifications.threshold_mb") or 0) * MB
        if not po.options.get("usage_notifications.enabled") or threshold <= 0:
            return False
        now = time.monotonic()
        with self._lock:
            last = self._last_usage_check.get(po.name)
            if not force and last is not None and now - last < self.usage_check_seconds:
                return False
            self._last_usage_check[po.name] = now
        used = sum(b.used_bytes for b in self.store.directory.list_mailboxes(po.name))
        key = f"po-usage:{po.name}"
        if used < threshold:
            self.marks.forget(key)
            return False
        target = str(po.options.get("usage_notifications.notify_mailbox") or "")
        if not target or not self.marks.first(key):
            return False
        text = (f"Post office {po.name} uses {used / MB:.1f} MB of disk space, which has "
                f"reached its threshold of {threshold / MB:.0f} MB (manual 5.3.5).\n"
                "You will not be told again until usage falls below the threshold.\n")
        return notifications.deliver_to_mailbox(
            self.store, po.name, target, f"Post office {po.name} reached its usage threshold",
            text, f"po-usage:{po.name}:{time.time_ns()}")
