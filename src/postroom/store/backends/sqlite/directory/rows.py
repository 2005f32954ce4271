"""Rows of the directory tables: the shared lookups and the row -> record conversion.

Every part of :class:`~postroom.store.backends.sqlite.directory.SqliteDirectory`
finds its rows through these functions, so "no such post office / mailbox / group /
list" is worded once and always names the field the caller gave (``postoffice``,
``member``, ``target`` ...). Names come from untrusted input; they are only ever SQL
parameters, and the tables compare them case-insensitively (``COLLATE NOCASE``).

Records carry the effective options (defaults merged with the stored values, secrets
decrypted; see :mod:`.options`), never the stored document itself.

Known limits: a post office's or domain's records are re-read on every call (no cache);
fine for administration and logins, callers on hot paths should cache.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING, Any

from postroom.store.addresses import ascii_domain, unicode_domain
from postroom.store.backends.sqlite.directory.options import effective, seal, unseal
from postroom.store.directory import (
    DirectoryError,
    Domain,
    Group,
    Mailbox,
    MailList,
    PopRetrieval,
    PostOffice,
)

if TYPE_CHECKING:
    from postroom.store import Store

log = logging.getLogger("postroom.directory")

MB = 1024 * 1024
UNSET: Any = ...

# The table of each kind of object (the kinds of postroom.settings.objects.ALL).
TABLES = {"postoffice": "postoffice", "domain": "domain", "mailbox": "mailbox",
          "group": "mail_group", "list": "mail_list", "pop_retrieval": "pop_retrieval"}

POP_SELECT = ("SELECT r.*, m.name AS mb_name, p.name AS po_name FROM pop_retrieval r "
              "JOIN mailbox m ON m.id = r.mailbox_id "
              "JOIN postoffice p ON p.id = m.postoffice_id")


# -- lookups -----------------------------------------------------------------------------

def postoffice_row(conn: sqlite3.Connection, name: str,
                   field: str = "postoffice") -> sqlite3.Row:
    if not isinstance(name, str) or not name.strip():
        raise DirectoryError(field, "post office name is empty")
    row = conn.execute("SELECT * FROM postoffice WHERE name = ?", (name.strip(),)).fetchone()
    if row is None:
        raise DirectoryError(field, f"no post office named {name!r}")
    return row


def postoffice_by_id(conn: sqlite3.Connection, po_id: int) -> sqlite3.Row:
    return conn.execute("SELECT * FROM postoffice WHERE id = ?", (po_id,)).fetchone()


def domain_row(conn: sqlite3.Connection, name: str, field: str = "domain") -> sqlite3.Row:
    ascii_name = ascii_domain(name, field)
    row = conn.execute("SELECT * FROM domain WHERE name = ?", (ascii_name,)).fetchone()
    if row is None:
        raise DirectoryError(field, f"no domain named {name!r}")
    return row


def _member_row(conn: sqlite3.Connection, table: str, kind: str, po: sqlite3.Row,
                name: str, field: str) -> sqlite3.Row:
    """A mailbox, group or list of a post office by name (tables are fixed names)."""
    row = conn.execute(f"SELECT * FROM {table} WHERE postoffice_id = ? AND name = ?",
                       (po["id"], name)).fetchone()
    if row is None:
        raise DirectoryError(field, f"no {kind} {name!r} in post office {po['name']}")
    return row


def mailbox_row(conn: sqlite3.Connection, po: sqlite3.Row, name: str,
                field: str = "mailbox") -> sqlite3.Row:
    return _member_row(conn, "mailbox", "mailbox", po, name, field)


def group_row(conn: sqlite3.Connection, po: sqlite3.Row, name: str,
              field: str = "group") -> sqlite3.Row:
    return _member_row(conn, "mail_group", "group", po, name, field)


def list_row(conn: sqlite3.Connection, po: sqlite3.Row, name: str,
             field: str = "list") -> sqlite3.Row:
    return _member_row(conn, "mail_list", "list", po, name, field)


def sf_name_taken(conn: sqlite3.Connection, po_id: int, name: str) -> str | None:
    """'mailbox' or 'group' when ``[SF:po/name]`` is already used, else None.

    Mailboxes and groups share the ``[SF:postoffice/name]`` namespace (the post office
    connector expands either), so a group may not take a mailbox's name and vice versa.
    """
    if conn.execute("SELECT 1 FROM mailbox WHERE postoffice_id = ? AND name = ?",
                    (po_id, name)).fetchone():
        return "mailbox"
    if conn.execute("SELECT 1 FROM mail_group WHERE postoffice_id = ? AND name = ?",
                    (po_id, name)).fetchone():
        return "group"
    return None


# -- records -----------------------------------------------------------------------------

class DirectoryRows:
    """What every part of the directory shares: the store, options and records."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._store.conn

    def _stored_options(self, kind: str, row: sqlite3.Row) -> dict[str, Any]:
        """The non-default option values of a row, secrets decrypted."""
        return unseal(self._store.secrets, kind, row["id"], row["options"])

    def _options(self, kind: str, row: sqlite3.Row) -> dict[str, Any]:
        """The effective options of a row (what records carry)."""
        return effective(kind, self._stored_options(kind, row))

    def _write_options(self, conn: sqlite3.Connection, kind: str, row_id: int,
                       values: dict[str, Any]) -> None:
        """Store a row's non-default option values, secret ones sealed to this row."""
        conn.execute(f"UPDATE {TABLES[kind]} SET options = ? WHERE id = ?",
                     (seal(self._store.secrets, kind, row_id, values), row_id))

    def _postoffice(self, row: sqlite3.Row) -> PostOffice:
        return PostOffice(id=row["id"], name=row["name"], created_at=row["created_at"],
                          options=self._options("postoffice", row))

    def _domain(self, row: sqlite3.Row, po_name: str | None = None) -> Domain:
        if po_name is None:
            po_name = postoffice_by_id(self._conn, row["postoffice_id"])["name"]
        return Domain(id=row["id"], name=row["name"], display_name=unicode_domain(row["name"]),
                      postoffice=po_name, options=self._options("domain", row))

    def _mailbox(self, row: sqlite3.Row, po_name: str) -> Mailbox:
        return Mailbox(
            id=row["id"], postoffice=po_name, name=row["name"], type=row["type"],
            quota_bytes=row["quota_bytes"], used_bytes=row["used_bytes"],
            message_count=row["message_count"], options=self._options("mailbox", row),
            created_at=row["created_at"],
            has_recoverable_secret=row["password_secret"] is not None)

    def _group(self, conn: sqlite3.Connection, row: sqlite3.Row, po_name: str) -> Group:
        members = [r["member"] for r in conn.execute(
            "SELECT member FROM group_member WHERE group_id = ? ORDER BY rowid", (row["id"],))]
        return Group(id=row["id"], postoffice=po_name, name=row["name"], members=members,
                     options=self._options("group", row))

    def _list(self, row: sqlite3.Row, po_name: str) -> MailList:
        return MailList(id=row["id"], postoffice=po_name, name=row["name"],
                        options=self._options("list", row))

    def _pop_entry(self, row: sqlite3.Row) -> PopRetrieval:
        """A row of :data:`POP_SELECT` (entry joined with its mailbox and post office)."""
        return PopRetrieval(id=row["id"], postoffice=row["po_name"], mailbox=row["mb_name"],
                            options=self._options("pop_retrieval", row))

    def _remove_files(self, postoffice: str, mailbox: str) -> None:
        """Delete a deleted mailbox's message files (after its rows are gone)."""
        try:
            self._store.messages.remove_mailbox_files(postoffice, mailbox)
        except OSError as exc:  # the rows are gone; leftovers are reported, not fatal
            log.warning("could not remove files of mailbox %s@%s: %s", mailbox, postoffice, exc)
