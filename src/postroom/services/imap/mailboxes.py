"""Mailbox names between IMAP and the store, LIST patterns and subscriptions
(RFC 3501 §5.1, §6.3.8-9; RFC 9051 §5.1; RFC 5258 LIST-EXTENDED; RFC 6154 SPECIAL-USE).

The store names the inbox ``Inbox`` and separates levels with ``/``; IMAP calls it
``INBOX`` (any case) and its children ``INBOX/...``. On the wire a name is modified
UTF-7 unless the client enabled UTF8=ACCEPT (RFC 6855); both directions go through
:mod:`postroom.services.imap.mailbox_names`. A name that does not decode is refused
with ``NO [CANNOT]`` by the caller, naming the mailbox.

Subscriptions are the folder's ``subscribed`` column, set with one UPDATE here (the
store contract has no method for it yet).

Untrusted input: names and patterns from the client; a pattern becomes a regular
expression only after every other character is escaped.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

from postroom.services.imap.mailbox_names import decode_mailbox, encode_mailbox
from postroom.store.messages import FOLDER_SEPARATOR, MessageStoreError

if TYPE_CHECKING:
    from postroom.store import Store

SEPARATOR = FOLDER_SEPARATOR
INBOX = "Inbox"


class MailboxNameError(ValueError):
    """The client's mailbox name is not valid modified UTF-7 / UTF-8."""


def decode(name: bytes, utf8: bool) -> str:
    """Wire bytes -> store folder name."""
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError:
        raise MailboxNameError("mailbox name is not valid UTF-8") from None
    try:
        text = decode_mailbox(text, utf8)
    except ValueError as exc:
        raise MailboxNameError(f"mailbox name is not valid: {exc}") from None
    return to_store(text)


def encode(folder: str, utf8: bool) -> str:
    """Store folder name -> wire text."""
    return encode_mailbox(to_imap(folder), utf8)


def to_store(text: str) -> str:
    text = text.rstrip(SEPARATOR) or text
    head, sep, rest = text.partition(SEPARATOR)
    if head.upper() == "INBOX":
        return INBOX + sep + rest
    return text


def to_imap(folder: str) -> str:
    head, sep, rest = folder.partition(SEPARATOR)
    return "INBOX" + sep + rest if head == INBOX else folder


@lru_cache(maxsize=256)
def pattern_regex(pattern: str) -> re.Pattern[str]:
    """``*`` matches anything, ``%`` anything but the separator (RFC 3501 §6.3.8)."""
    parts = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "%":
            parts.append(f"[^{re.escape(SEPARATOR)}]*")
        else:
            parts.append(re.escape(ch))
    body = "".join(parts)
    if pattern[:5].upper() == "INBOX" and (len(pattern) == 5 or pattern[5] in (SEPARATOR,)):
        body = "(?i:INBOX)" + "".join(parts[5:])
    return re.compile(body + r"\Z", re.DOTALL)


def matches(imap_name: str, reference: str, pattern: str) -> bool:
    full = reference + pattern if reference and not pattern.startswith(SEPARATOR) else pattern
    return bool(pattern_regex(full).match(imap_name))


def set_subscribed(store: Store, postoffice: str, mailbox: str, folder: str,
                   subscribed: bool) -> None:
    with store.transaction() as conn:
        cursor = conn.execute(
            "UPDATE folder SET subscribed=? WHERE name=? AND mailbox_id=(SELECT mb.id FROM "
            "mailbox mb JOIN postoffice p ON mb.postoffice_id=p.id WHERE p.name=? AND "
            "mb.name=?)", (int(subscribed), folder, postoffice, mailbox))
        if cursor.rowcount == 0:
            raise MessageStoreError("folder", f"no folder {folder!r}")


def folder_state_by_id(store: Store, folder_id: int) -> tuple[int, int, int] | None:
    """:func:`folder_state` of a folder known by its row (the selected folder, checked
    at every command): a primary-key read touches a third of the pages the lookup by
    names does, and under load each page read again costs, since every commit of a
    writer makes the readers' page caches stale."""
    row = store.conn.execute(
        "SELECT uidvalidity, uidnext, highestmodseq FROM folder WHERE id=?",
        (folder_id,)).fetchone()
    return None if row is None else (int(row[0]), int(row[1]), int(row[2]))


def folder_state(store: Store, postoffice: str, mailbox: str,
                 folder: str) -> tuple[int, int, int] | None:
    """(uidvalidity, uidnext, highestmodseq) with one indexed query; None if gone."""
    row = store.conn.execute(
        "SELECT f.uidvalidity, f.uidnext, f.highestmodseq FROM folder f JOIN mailbox mb ON "
        "f.mailbox_id=mb.id JOIN postoffice p ON mb.postoffice_id=p.id WHERE p.name=? AND "
        "mb.name=? AND f.name=?", (postoffice, mailbox, folder)).fetchone()
    return None if row is None else (int(row[0]), int(row[1]), int(row[2]))
