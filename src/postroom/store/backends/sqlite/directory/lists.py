"""Mailing lists (manual 5.7), addressed inside the system as ``[LS:postoffice/list]``.

A list's ``domain`` option (5.7.3 "Select domain for this list") maps
``[SMTP:list@domain] -> [LS:po/list]`` and is kept in step with the address map when
it changes; more addresses go through ``add_address``. The domain must belong to the
list's post office and the address must be free, else nothing changes.

``posting_password`` (5.7.4) is a secret option: sealed in the stored document
(:mod:`.options`) and decrypted only into records.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from postroom.settings import objects
from postroom.store.addresses import check_object_name, ls_address, smtp_address, unicode_domain
from postroom.store.backends.sqlite.directory.address_map import forget_target
from postroom.store.backends.sqlite.directory.options import option_changes
from postroom.store.backends.sqlite.directory.rows import (
    DirectoryRows,
    list_row,
    postoffice_row,
)
from postroom.store.directory import DirectoryError, MailList


def sync_list_domain(conn: sqlite3.Connection, po: sqlite3.Row, name: str,
                     old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """Keep ``[SMTP:list@domain] -> [LS:po/list]`` in step with the ``domain`` option."""
    before, after = old.get("domain", ""), new.get("domain", "")
    if before == after:
        return
    target = ls_address(po["name"], name)
    if before:
        conn.execute("DELETE FROM address WHERE address = ? AND target = ? COLLATE NOCASE",
                     (smtp_address(name, before), target))
    if not after:
        return
    domain = conn.execute("SELECT postoffice_id FROM domain WHERE name = ?",
                          (after,)).fetchone()
    if domain is None or domain["postoffice_id"] != po["id"]:
        raise DirectoryError("domain", f"{unicode_domain(after)} is not a domain of post "
                                       f"office {po['name']}")
    key = smtp_address(name, after)
    existing = conn.execute("SELECT target FROM address WHERE address = ?", (key,)).fetchone()
    if existing:
        raise DirectoryError("domain", f"{key} is already mapped to {existing['target']}")
    conn.execute("INSERT INTO address (address, target, postoffice_id) VALUES (?, ?, ?)",
                 (key, target, po["id"]))


class Lists(DirectoryRows):
    def create_list(self, postoffice: str, name: str,
                    options: Mapping[str, Any] | None = None) -> MailList:
        name = check_object_name(name, "name", "list name")
        stored = objects.merge(objects.LIST, {}, option_changes(objects.LIST, options))
        with self._store.transaction() as conn:
            po = postoffice_row(conn, postoffice)
            existing = conn.execute("SELECT name FROM mail_list WHERE postoffice_id = ? AND "
                                    "name = ?", (po["id"], name)).fetchone()
            if existing:
                raise DirectoryError("name", f"a list named {existing['name']} already exists "
                                             f"in post office {po['name']}")
            cursor = conn.execute("INSERT INTO mail_list (postoffice_id, name) VALUES (?, ?)",
                                  (po["id"], name))
            self._write_options(conn, "list", int(cursor.lastrowid or 0), stored)
            sync_list_domain(conn, po, name, {}, stored)
            return self._list(list_row(conn, po, name), po["name"])

    def get_list(self, postoffice: str, name: str) -> MailList:
        conn = self._conn
        po = postoffice_row(conn, postoffice)
        return self._list(list_row(conn, po, name), po["name"])

    def list_lists(self, postoffice: str) -> list[MailList]:
        conn = self._conn
        po = postoffice_row(conn, postoffice)
        rows = conn.execute("SELECT * FROM mail_list WHERE postoffice_id = ? "
                            "ORDER BY name COLLATE NOCASE", (po["id"],)).fetchall()
        return [self._list(r, po["name"]) for r in rows]

    def update_list(self, postoffice: str, name: str, options: Mapping[str, Any]) -> MailList:
        changes = option_changes(objects.LIST, options)
        with self._store.transaction() as conn:
            po = postoffice_row(conn, postoffice)
            row = list_row(conn, po, name)
            old = self._stored_options("list", row)
            stored = objects.merge(objects.LIST, old, changes)
            self._write_options(conn, "list", row["id"], stored)
            sync_list_domain(conn, po, row["name"], old, stored)
            return self._list(list_row(conn, po, name), po["name"])

    def delete_list(self, postoffice: str, name: str) -> None:
        with self._store.transaction() as conn:
            po = postoffice_row(conn, postoffice)
            row = list_row(conn, po, name)
            forget_target(conn, ls_address(po["name"], row["name"]))
            conn.execute("DELETE FROM mail_list WHERE id = ?", (row["id"],))
