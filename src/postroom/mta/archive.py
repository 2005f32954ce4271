"""Message archiving (manual 6.1.3, "MTA - Archiving").

"MailEnable has the ability to automatically collect and archive by date all
messages that are processed ... saved to a folder named by date within a pre
selected MailEnable internal mailbox. The administrator can control which messages
are archived (according to whether they are being picked up by the Mail Transfer
Agent or delivered by the Mail Transfer Agent)."

Settings (``mta.archiving.*``): ``enabled``; ``postoffice`` and ``mailbox`` of the
archive mailbox; ``folder`` (default ``Archive``) under which one sub-folder per day
is created, ``Archive/2026-01-25`` (ISO dates sort by name in every client; local
time, the day the MTA handled the message); ``direction``: ``pickup`` archives every
message the MTA takes in (bounced ones too), ``delivery`` only messages it routes to
at least one connector. ``before_filters`` has no effect yet: the MTA runs no content
filters or antivirus of its own so far, so every copy is taken before them.

Each copy is appended with ``ignore_quota=True`` (an archive must not bounce mail or
lose copies because it is full: usage still counts, and the administrator sees it)
and ``delivery_id = "<tracking id>/archive"``, so an entry retried after a crash or
an error is not archived twice. Folders are created on first use. The body is
streamed from the queue into a temporary file (or the pickup event's file is
reused): a large message is never held in memory.

A misconfigured archive (no such post office, mailbox) is the administrator's
problem, not the sender's: :func:`archive_copy` raises :class:`ArchiveError`, which
the agent logs; the message goes on.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime
from pathlib import Path

from postroom.mta.pickup_event import spool_message
from postroom.store import Store
from postroom.store.messages import AppendResult, MessageStoreError
from postroom.store.queue import QueueEntry

DIRECTIONS = ("pickup", "delivery")


class ArchiveError(RuntimeError):
    """The archive copy could not be stored (named setting or store error)."""


def archive_direction(store: Store) -> str | None:
    """``pickup`` / ``delivery`` when archiving is enabled and configured, else None."""
    settings = store.settings
    if not settings.get("mta.archiving.enabled"):
        return None
    direction = str(settings.get("mta.archiving.direction") or "pickup")
    return direction if direction in DIRECTIONS else "pickup"


def dated_folder(base: str, when: float | None = None) -> str:
    """``Archive`` -> ``Archive/2026-01-25`` (local date of ``when``)."""
    base = (base or "Archive").strip().strip("/") or "Archive"
    day = datetime.fromtimestamp(time.time() if when is None else when).strftime("%Y-%m-%d")
    return f"{base}/{day}"


def archive_copy(store: Store, entry: QueueEntry, *, message_file: Path | None = None,
                 when: float | None = None) -> AppendResult:
    """Append a copy of ``entry``'s message to today's archive folder."""
    settings = store.settings
    postoffice = str(settings.get("mta.archiving.postoffice") or "")
    mailbox = str(settings.get("mta.archiving.mailbox") or "")
    if not postoffice or not mailbox:
        raise ArchiveError("mta.archiving.postoffice / mta.archiving.mailbox: not set")
    folder = dated_folder(str(settings.get("mta.archiving.folder") or ""), when)
    try:
        _ensure_folder(store, postoffice, mailbox, folder)
    except MessageStoreError as exc:
        raise ArchiveError(f"mta.archiving: cannot use {mailbox}@{postoffice}: {exc}") from None
    spooled: Path | None = None
    try:
        if message_file is None:
            with store.queue.open_body(entry) as body:
                spooled, _ = spool_message(body, store.home.tmp, "mta-archive-")
            message_file = spooled
        return store.messages.append(postoffice, mailbox, folder, message_file,
                                     delivery_id=f"{entry.tracking_id}/archive",
                                     ignore_quota=True)
    except MessageStoreError as exc:
        raise ArchiveError(f"mta.archiving: {exc}") from None
    finally:
        if spooled is not None:
            with contextlib.suppress(OSError):
                spooled.unlink()


def _ensure_folder(store: Store, postoffice: str, mailbox: str, folder: str) -> None:
    existing = {f.name.lower() for f in store.messages.list_folders(postoffice, mailbox)}
    parts = folder.split("/")
    for n in range(1, len(parts) + 1):
        name = "/".join(parts[:n])
        if name.lower() in existing:
            continue
        try:
            store.messages.create_folder(postoffice, mailbox, name)
        except MessageStoreError:
            # Created meanwhile by another thread (or refused: the append will say).
            if name.lower() not in {f.name.lower() for f in
                                    store.messages.list_folders(postoffice, mailbox)}:
                raise
