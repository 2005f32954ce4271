"""The message store: mailbox folders, messages, flags, UIDs and quotas (the contract).

Manual 5.5 (mailboxes, quotas, "Mailbox size limit"), 3.x (the post office
connector "SF" delivers into mailboxes), and the IMAP model the services rely on:
RFC 3501 2.3.1.1 (UID and UIDVALIDITY: UIDs strictly increase inside a folder and are
never reused; UIDVALIDITY changes whenever a folder name is recreated), RFC 7162
(CONDSTORE: every flag change bumps the folder's HIGHESTMODSEQ and stamps the message
with it; QRESYNC, 3.2: every removal bumps it too and is remembered with it, so a
client can ask which UIDs vanished since a mod-sequence it knows).

This module is the contract; ``backends/sqlite/messages.py`` is the embedded
implementation. Promises every implementation keeps:

* ``append`` returns only once the message file and its index row are durable; a
  crash at any point leaves either the whole message visible or nothing visible.
* The quota check and the mailbox usage update happen in the same transaction as the
  row insert, so usage is exact under any number of concurrent appenders, in one
  process or several.
* Every removal of messages from a folder (expunge, move out, age-based deletion)
  bumps the folder's HIGHESTMODSEQ once and records each removed UID with that
  mod-sequence, in the same transaction; :meth:`MessageStore.expunged_since` reads
  them back. The records go with their folder.
* Bad input (unknown post office / mailbox / folder, bad flag, bad folder name)
  raises :class:`MessageStoreError` naming the field and changes nothing.

Untrusted input: folder names (from IMAP clients) and message bytes. Folder names are
checked here; the implementation never uses them as raw paths.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, NamedTuple, Protocol

DEFAULT_FOLDERS: tuple[str, ...] = ("Inbox", "Sent Items", "Drafts", "Deleted Items",
                                    "Junk E-mail")
# RFC 6154 special-use attributes of the default folders, for IMAP LIST.
SPECIAL_USE: dict[str, str] = {"Sent Items": "\\Sent", "Drafts": "\\Drafts",
                               "Deleted Items": "\\Trash", "Junk E-mail": "\\Junk"}
FOLDER_SEPARATOR = "/"
MAX_FOLDER_NAME = 255
SYSTEM_FLAGS = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})

FlagMode = Literal["add", "remove", "replace"]
MessageData = bytes | Path


class MessageStoreError(ValueError):
    """Refused message-store operation; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class QuotaExceeded(MessageStoreError):
    """The message would take the mailbox over its size limit (manual 5.5 quota)."""

    def __init__(self, mailbox: str, size: int, used: int, quota: int) -> None:
        super().__init__("quota", f"mailbox {mailbox} is full: {used} of {quota} bytes used, "
                                  f"message of {size} bytes refused")
        self.size = size
        self.used = used
        self.quota = quota


class Removal(int):
    """What :meth:`MessageStore.expunge` returns: how many messages went (an ``int``),
    with the UIDs that went and the mod-sequence the removal gave the folder (0 when
    nothing went), for an IMAP session to update its folder index without a query."""

    modseq: int
    uids: tuple[int, ...]

    def __new__(cls, uids: Sequence[int] = (), modseq: int = 0) -> Removal:
        removal = super().__new__(cls, len(uids))
        removal.modseq, removal.uids = modseq, tuple(uids)
        return removal


CLAIM_ALL = 1 << 32
"""``claim_recent(..., upto=CLAIM_ALL)``: whatever the folder holds when the claim is
applied (above every IMAP UID, which has 32 bits)."""


@dataclass(frozen=True)
class AppendResult:
    uid: int
    uidvalidity: int
    modseq: int
    size: int
    duplicate: bool = False    # delivery_id was seen before: nothing was stored again
    path: str = ""             # the message file, relative to DIR/messages ("" if duplicate)


@dataclass(frozen=True)
class FolderInfo:
    name: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    messages: int
    size: int
    subscribed: bool
    special_use: str | None
    recent: int = 0      # messages no IMAP session has claimed as \Recent yet


class MessageInfo(NamedTuple):
    """One message of a folder as listings give it.

    A named tuple rather than a frozen dataclass: IMAP lists a whole folder at once (the
    first SELECT of 100,000 messages), and a frozen dataclass took about 3 µs an object
    to make (its ``__init__`` sets each field through ``object.__setattr__``), a named
    tuple about 1.2 µs. Immutable all the same; change one with ``_replace``."""

    uid: int
    size: int
    flags: tuple[str, ...]
    internal_date: float
    modseq: int
    path: str          # relative to DIR/messages


UidRanges = list[tuple[int, int]]


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> UidRanges:
    """Sorted, merged inclusive ranges (adjacent ones joined)."""
    out: UidRanges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def intersect_ranges(a: Sequence[tuple[int, int]], b: Sequence[tuple[int, int]]) -> UidRanges:
    """The intersection of two sorted, merged range lists."""
    out: UidRanges = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def check_folder_name(name: str) -> str:
    """Validate a folder name from an administrator or IMAP client; return it."""
    if not isinstance(name, str) or not name.strip():
        raise MessageStoreError("folder", "folder name is empty")
    if len(name) > MAX_FOLDER_NAME:
        raise MessageStoreError("folder", f"folder name longer than {MAX_FOLDER_NAME}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise MessageStoreError("folder", "folder name contains control characters")
    parts = name.split(FOLDER_SEPARATOR)
    if any(not part.strip() or part in (".", "..") for part in parts):
        raise MessageStoreError("folder", f"folder name {name!r} has an empty or dot component")
    return name


def check_flags(flags: Iterable[str]) -> tuple[str, ...]:
    """Validate IMAP flags (system flags or keywords, RFC 3501 9 flag-keyword)."""
    result = set()
    for flag in flags:
        if not isinstance(flag, str) or not flag:
            raise MessageStoreError("flags", "empty flag")
        if flag.startswith("\\"):
            canonical = next((f for f in SYSTEM_FLAGS if f.lower() == flag.lower()), None)
            if canonical is None:
                raise MessageStoreError("flags", f"unknown system flag {flag!r}")
            flag = canonical
        elif any(ch in flag for ch in ' (){%*"]\\') or any(ord(c) < 33 or ord(c) > 126
                                                          for c in flag):
            raise MessageStoreError("flags", f"invalid keyword {flag!r}")
        result.add(flag)
    return tuple(sorted(result))


def changed_flags(current: set[str], wanted: set[str], mode: FlagMode) -> set[str]:
    """A message's flags after a change of ``mode`` (IMAP STORE ``+FLAGS``, ``-FLAGS``,
    ``FLAGS``): what the store writes, and what a session that made the change can
    tell without reading it back."""
    if mode == "add":
        return current | wanted
    if mode == "remove":
        return current - wanted
    return set(wanted)


class MessageStore(Protocol):
    """Mailbox folders and messages. Names are post office / mailbox names."""

    def create_folders(self, conn: sqlite3.Connection, mailbox_id: int,
                       names: Sequence[str] = DEFAULT_FOLDERS) -> None:
        """Create folders for a new mailbox inside the caller's open transaction."""

    def create_folder(self, postoffice: str, mailbox: str, name: str) -> FolderInfo: ...

    def list_folders(self, postoffice: str, mailbox: str,
                     only: str | None = None) -> list[FolderInfo]:
        """Every folder of the mailbox with its counts (``only``: just that folder, or
        nothing if it does not exist; counts only its messages)."""
        ...

    def delete_folder(self, postoffice: str, mailbox: str, name: str) -> int:
        """Delete a folder and its messages; return how many messages went."""

    def rename_folder(self, postoffice: str, mailbox: str, name: str, new_name: str) -> None:
        """Rename a folder (and its sub-folders); UIDVALIDITY of the new name changes."""

    def append(self, postoffice: str, mailbox: str, folder: str, data: MessageData,
               flags: Iterable[str] = (), internal_date: float | None = None,
               delivery_id: str | None = None, ignore_quota: bool = False) -> AppendResult:
        """Store a message durably; raises :class:`QuotaExceeded` when it does not fit
        (unless ``ignore_quota``: accepted over quota by setting, usage still counts).

        ``delivery_id`` (e.g. ``tracking-id/[SF:po/mb]``) makes delivery exactly-once:
        it is recorded in the same transaction as the message row, and an append with
        an id already recorded stores nothing and returns the first result with
        ``duplicate=True``. Ids are kept for 14 days."""

    def append_async(self, postoffice: str, mailbox: str, folder: str, data: MessageData,
                     flags: Iterable[str] = (), internal_date: float | None = None,
                     delivery_id: str | None = None, ignore_quota: bool = False,
                     ) -> Future[AppendResult]:
        """As :meth:`append`, returning at once (``asyncio.wrap_future`` for asyncio)."""

    def list_messages(self, postoffice: str, mailbox: str, folder: str) -> list[MessageInfo]: ...

    def read(self, postoffice: str, mailbox: str, folder: str, uid: int) -> bytes: ...

    def open(self, postoffice: str, mailbox: str, folder: str, uid: int) -> BinaryIO: ...

    def set_flags(self, postoffice: str, mailbox: str, folder: str, uids: Iterable[int],
                  flags: Iterable[str], mode: FlagMode = "add") -> int:
        """Change flags; return the folder's new HIGHESTMODSEQ. Not from inside a
        ``store.transaction()``: the change is committed by the group-commit writer."""

    def set_flags_async(self, postoffice: str, mailbox: str, folder: str,
                        uids: Iterable[int], flags: Iterable[str], mode: FlagMode = "add",
                        ) -> Future[int]:
        """As :meth:`set_flags`, returning at once: the change shares the next group
        commit with the other sessions' changes. Bad input is raised at once."""

    def copy(self, postoffice: str, mailbox: str, folder: str, uids: Iterable[int],
             target: str, target_mailbox: str | None = None) -> dict[int, int]:
        """Copy messages to ``target``; return {old uid: new uid}. Counts against the
        quota of the target's mailbox: ``target_mailbox`` of the same post office (a
        public folder, manual 6.3.6.4), else the source's own."""

    def move(self, postoffice: str, mailbox: str, folder: str, uids: Iterable[int],
             target: str, target_mailbox: str | None = None) -> dict[int, int]:
        """Move messages to ``target`` (of ``target_mailbox`` as for :meth:`copy`);
        return {old uid: new uid}; one transaction, so a message is never in both."""

    def expunge(self, postoffice: str, mailbox: str, folder: str,
                uids: Iterable[int]) -> Removal:
        """Remove messages; return how many were removed (a :class:`Removal`). Not from
        inside a ``store.transaction()``: the removal is committed by the group-commit
        writer."""

    def expunge_async(self, postoffice: str, mailbox: str, folder: str,
                      uids: Iterable[int]) -> Future[Removal]:
        """As :meth:`expunge`, returning at once (group commit, as :meth:`set_flags_async`)."""

    def note_crlf_sizes(self, sizes: list[tuple[str, int, bool | None]]) -> Future[None]:
        """Record the CRLF sizes readers computed (``message_crlf_size``: path, octets,
        whether a line starts with "." or None) with the next group commit; callers need
        not wait: it is a cache."""

    def claim_recent(self, postoffice: str, mailbox: str, folder: str, upto: int) -> int:
        """Claim the folder's messages up to UID ``upto`` as \\Recent for the caller
        (RFC 3501 §2.3.2: recent to exactly one session); return the folder's previous
        recent mark. The caller's recent messages are the UIDs above the returned mark up
        to ``upto``: the mark only rises, in one transaction, so concurrent claimers, in
        one process or several, get disjoint ranges. An ``upto`` beyond the folder's
        last UID (:data:`CLAIM_ALL`) claims up to that UID as the claim is applied (an
        APPEND's claim handed over with it, before its UID is known)."""

    def claim_recent_async(self, postoffice: str, mailbox: str, folder: str,
                           upto: int) -> Future[int]:
        """As :meth:`claim_recent`, returning at once (group commit, as
        :meth:`set_flags_async`)."""

    def recent_mark(self, postoffice: str, mailbox: str, folder: str) -> int:
        """The highest UID already claimed as \\Recent (a read-only session shows the
        messages above it as \\Recent without claiming them)."""

    def delete_older_than(self, postoffice: str, days: float, folder: str | None = None) -> int:
        """Remove a post office's messages older than ``days`` (optionally one folder)."""

    def expunged_since(self, postoffice: str, mailbox: str, folder: str, modseq: int,
                       uids: Sequence[tuple[int, int]] | None = None) -> UidRanges:
        """UIDs removed from the folder with a mod-sequence above ``modseq``, as sorted,
        merged inclusive ranges, optionally only those within the ``uids`` ranges.

        For IMAP QRESYNC (RFC 7162 3.2.5, 3.2.6: ``VANISHED (EARLIER)``). Where the
        store cannot know (removals made before it kept records, in a data directory
        from an older Postroom), the answer is every UID below UIDNEXT that is absent
        now: a superset, which RFC 7162 allows and clients ignore the unknown part of."""

    def remove_mailbox_files(self, postoffice: str, mailbox: str) -> None:
        """Remove the files of a mailbox whose rows were already deleted."""

    def usage(self, postoffice: str, mailbox: str) -> tuple[int, int]:
        """(used_bytes, message_count) of a mailbox."""

    def close(self) -> None: ...
