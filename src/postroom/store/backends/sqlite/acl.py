"""Folder ACLs and shared-folder subscriptions in the embedded store (implements
:mod:`postroom.store.acl`).

Tables ``folder_acl`` and ``folder_unsubscribed`` (migration 0009), keyed by the
folder's row id with ``ON DELETE CASCADE``: a deleted folder takes its ACL along, a
renamed one keeps it. A folder without rows has the default ACL of
:mod:`postroom.store.acl`; the first SETACL or DELETEACL writes the defaults out in the
same transaction as the change, and removing the last entry leaves an ``anyone``
entry with no rights, so the defaults never come back by accident.

A deleted mailbox's name is removed from the ACLs of its post office
(:func:`forget_identifier`, called by the directory inside its transaction).

Untrusted input: identifiers (checked against the post office's mailboxes) and rights
(checked by :func:`postroom.store.acl.parse_rights` before they reach here; only
canonical letters are stored). Names are only ever SQL parameters.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from postroom.store.acl import (
    ALL_RIGHTS,
    ANYONE,
    PUBLIC_DEFAULT,
    RIGHTS,
    AclError,
    canonical,
)
from postroom.store.directory import ADMIN_TYPES, PUBLIC_ROOT

if TYPE_CHECKING:
    from postroom.store.store import Store

_MAILBOX = ("SELECT mb.id, mb.name, mb.postoffice_id FROM mailbox mb JOIN postoffice p ON "
            "mb.postoffice_id=p.id WHERE p.name=? AND mb.name=?")


def forget_identifier(conn: sqlite3.Connection, postoffice_id: int, name: str) -> None:
    """Remove mailbox ``name`` from every ACL of its post office (it is being deleted)."""
    conn.execute("DELETE FROM folder_acl WHERE identifier=? AND folder_id IN (SELECT f.id "
                 "FROM folder f JOIN mailbox mb ON f.mailbox_id=mb.id WHERE "
                 "mb.postoffice_id=?)", (name, postoffice_id))


class SqliteFolderAcl:
    def __init__(self, store: Store) -> None:
        self._store = store

    # -- lookups -------------------------------------------------------------------------

    def _mailbox(self, conn: sqlite3.Connection, postoffice: str,
                 mailbox: str) -> sqlite3.Row:
        row = conn.execute(_MAILBOX, (postoffice, mailbox)).fetchone()
        if row is None:
            raise AclError("mailbox", f"no mailbox {mailbox!r} in post office {postoffice!r}")
        return row

    def _folder_id(self, conn: sqlite3.Connection, box: sqlite3.Row, folder: str) -> int:
        row = conn.execute("SELECT id FROM folder WHERE mailbox_id=? AND name=?",
                           (box["id"], folder)).fetchone()
        if row is None:
            raise AclError("folder", f"no folder {folder!r}")
        return int(row[0])

    def _defaults(self, conn: sqlite3.Connection, box: sqlite3.Row) -> dict[str, str]:
        if box["name"] != PUBLIC_ROOT:
            return {box["name"]: ALL_RIGHTS}
        marks = ",".join("?" * len(ADMIN_TYPES))
        admins = conn.execute(
            f"SELECT name FROM mailbox WHERE postoffice_id=? AND type IN ({marks}) "
            "AND name != ? ORDER BY name COLLATE NOCASE",
            (box["postoffice_id"], *ADMIN_TYPES, PUBLIC_ROOT)).fetchall()
        out = {ANYONE: PUBLIC_DEFAULT}
        out.update({r[0]: canonical(PUBLIC_DEFAULT + "a") for r in admins})
        return out

    def _entries(self, conn: sqlite3.Connection, folder_id: int) -> dict[str, str] | None:
        rows = conn.execute("SELECT identifier, rights FROM folder_acl WHERE folder_id=? "
                            "ORDER BY identifier != 'anyone', identifier COLLATE NOCASE",
                            (folder_id,)).fetchall()
        return {r[0]: r[1] for r in rows} if rows else None

    @staticmethod
    def _rights_in(entries: dict[str, str], box: sqlite3.Row, user: str) -> str:
        if box["name"] != PUBLIC_ROOT and user.lower() == box["name"].lower():
            return ALL_RIGHTS
        wanted = (ANYONE, user.lower())
        return canonical("".join(r for ident, r in entries.items()
                                 if ident.lower() in wanted))

    # -- the contract --------------------------------------------------------------------

    def acl(self, postoffice: str, mailbox: str, folder: str) -> dict[str, str]:
        conn = self._store.conn
        box = self._mailbox(conn, postoffice, mailbox)
        entries = self._entries(conn, self._folder_id(conn, box, folder)) \
            or self._defaults(conn, box)
        if box["name"] != PUBLIC_ROOT:
            entries = {k: v for k, v in entries.items() if k.lower() != box["name"].lower()}
            entries = {box["name"]: ALL_RIGHTS, **entries}
        return {k: v for k, v in entries.items() if v}

    def rights(self, postoffice: str, mailbox: str, folder: str, user: str) -> str:
        conn = self._store.conn
        box = self._mailbox(conn, postoffice, mailbox)
        entries = self._entries(conn, self._folder_id(conn, box, folder)) \
            or self._defaults(conn, box)
        return self._rights_in(entries, box, user)

    def rights_by_folder(self, postoffice: str, mailbox: str, user: str) -> dict[str, str]:
        conn = self._store.conn
        box = self._mailbox(conn, postoffice, mailbox)
        explicit: dict[int, dict[str, str]] = {}
        for folder_id, ident, rights in conn.execute(
                "SELECT a.folder_id, a.identifier, a.rights FROM folder_acl a JOIN folder f "
                "ON a.folder_id=f.id WHERE f.mailbox_id=?", (box["id"],)):
            explicit.setdefault(folder_id, {})[ident] = rights
        defaults: dict[str, str] | None = None
        out = {}
        for folder_id, name in conn.execute("SELECT id, name FROM folder WHERE mailbox_id=?",
                                            (box["id"],)):
            entries = explicit.get(folder_id)
            if entries is None:
                if defaults is None:
                    defaults = self._defaults(conn, box)
                entries = defaults
            out[name] = self._rights_in(entries, box, user)
        return out

    def shared_with(self, postoffice: str, user: str) -> dict[tuple[str, str], str]:
        rows = self._store.conn.execute(
            "SELECT mb.name, f.name, a.rights FROM folder_acl a JOIN folder f ON "
            "a.folder_id=f.id JOIN mailbox mb ON f.mailbox_id=mb.id JOIN postoffice p ON "
            "mb.postoffice_id=p.id WHERE p.name=? AND mb.name NOT IN (?, ?) AND "
            "a.identifier IN (?, ?) AND a.rights != ''",
            (postoffice, PUBLIC_ROOT, user, user, ANYONE)).fetchall()
        out: dict[tuple[str, str], str] = {}
        for mailbox, folder, rights in rows:
            key = (mailbox, folder)
            out[key] = canonical(out.get(key, "") + rights)
        return out

    def check_identifier(self, postoffice: str, identifier: str) -> str:
        if not isinstance(identifier, str) or not identifier:
            raise AclError("identifier", "identifier is empty")
        if identifier.lower() == ANYONE:
            return ANYONE
        if identifier.startswith("-"):
            raise AclError("identifier", "negative rights are not supported")
        row = self._store.conn.execute(_MAILBOX, (postoffice, identifier)).fetchone()
        if row is None or row["name"] == PUBLIC_ROOT:
            raise AclError("identifier", f"no mailbox {identifier!r} in this post office")
        return str(row["name"])

    def _change(self, postoffice: str, mailbox: str, folder: str, identifier: str,
                rights: str | None) -> None:
        """Set (``rights`` not None) or remove an entry, after writing out the defaults."""
        if rights is not None and any(ch not in RIGHTS for ch in rights):
            raise AclError("rights", f"rights must be letters of {RIGHTS}")
        identifier = self.check_identifier(postoffice, identifier)
        with self._store.transaction() as conn:
            box = self._mailbox(conn, postoffice, mailbox)
            folder_id = self._folder_id(conn, box, folder)
            if self._entries(conn, folder_id) is None:
                conn.executemany("INSERT INTO folder_acl (folder_id, identifier, rights) "
                                 "VALUES (?, ?, ?)",
                                 [(folder_id, k, v) for k, v in self._defaults(conn, box).items()
                                  if k.lower() != box["name"].lower()])
            if rights is None:
                conn.execute("DELETE FROM folder_acl WHERE folder_id=? AND identifier=?",
                             (folder_id, identifier))
            else:
                conn.execute("INSERT INTO folder_acl (folder_id, identifier, rights) VALUES "
                             "(?, ?, ?) ON CONFLICT (folder_id, identifier) DO UPDATE SET "
                             "rights=excluded.rights, identifier=excluded.identifier",
                             (folder_id, identifier, canonical(rights)))
            if self._entries(conn, folder_id) is None:
                conn.execute("INSERT INTO folder_acl (folder_id, identifier, rights) "
                             "VALUES (?, ?, '')", (folder_id, ANYONE))

    def set_rights(self, postoffice: str, mailbox: str, folder: str, identifier: str,
                   rights: str) -> None:
        self._change(postoffice, mailbox, folder, identifier, rights)

    def delete_rights(self, postoffice: str, mailbox: str, folder: str,
                      identifier: str) -> None:
        self._change(postoffice, mailbox, folder, identifier, None)

    def copy_entries(self, postoffice: str, mailbox: str, source: str, target: str) -> None:
        with self._store.transaction() as conn:
            box = self._mailbox(conn, postoffice, mailbox)
            src, dst = self._folder_id(conn, box, source), self._folder_id(conn, box, target)
            conn.execute("DELETE FROM folder_acl WHERE folder_id=?", (dst,))
            conn.execute("INSERT INTO folder_acl (folder_id, identifier, rights) SELECT ?, "
                         "identifier, rights FROM folder_acl WHERE folder_id=?", (dst, src))

    # -- subscriptions of another mailbox's folders ----------------------------------------

    def subscribed(self, postoffice: str, mailbox: str, user: str) -> set[str]:
        conn = self._store.conn
        box, who = self._mailbox(conn, postoffice, mailbox), self._mailbox(conn, postoffice, user)
        return {r[0] for r in conn.execute(
            "SELECT f.name FROM folder f WHERE f.mailbox_id=? AND NOT EXISTS (SELECT 1 FROM "
            "folder_unsubscribed u WHERE u.folder_id=f.id AND u.mailbox_id=?)",
            (box["id"], who["id"]))}

    def set_subscribed(self, postoffice: str, mailbox: str, folder: str, user: str,
                       subscribed: bool) -> None:
        with self._store.transaction() as conn:
            box, who = self._mailbox(conn, postoffice, mailbox), \
                self._mailbox(conn, postoffice, user)
            folder_id = self._folder_id(conn, box, folder)
            if subscribed:
                conn.execute("DELETE FROM folder_unsubscribed WHERE folder_id=? AND "
                             "mailbox_id=?", (folder_id, who["id"]))
            else:
                conn.execute("INSERT OR IGNORE INTO folder_unsubscribed (folder_id, "
                             "mailbox_id) VALUES (?, ?)", (folder_id, who["id"]))
