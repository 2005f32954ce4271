"""Post offices (manual 5.3): the top of the directory; everything else belongs to one.

A post office name is untrusted (CLI, CSV import, web admin) and is checked by
:func:`postroom.store.addresses.check_postoffice_name` before anything is written.
Deleting a post office with mailboxes needs ``force`` because it deletes their mail;
the rows go in one transaction (foreign keys cascade to domains, mailboxes, the
address map, groups and lists), the message files afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from postroom.settings import objects
from postroom.store.addresses import check_postoffice_name
from postroom.store.backends.sqlite.directory.options import option_changes
from postroom.store.backends.sqlite.directory.rows import DirectoryRows, postoffice_row
from postroom.store.directory import PUBLIC_ROOT, DirectoryError, PostOffice


class PostOffices(DirectoryRows):
    def create_postoffice(self, name: str,
                          options: Mapping[str, Any] | None = None) -> PostOffice:
        name = check_postoffice_name(name.strip() if isinstance(name, str) else name, "name")
        changes = option_changes(objects.POSTOFFICE, options)
        stored = objects.merge(objects.POSTOFFICE, {}, changes)
        with self._store.transaction() as conn:
            existing = conn.execute("SELECT name FROM postoffice WHERE name = ?",
                                    (name,)).fetchone()
            if existing:
                raise DirectoryError("name", f"post office {existing['name']} already exists")
            cursor = conn.execute("INSERT INTO postoffice (name, created_at) VALUES (?, ?)",
                                  (name, time.time()))
            self._write_options(conn, "postoffice", int(cursor.lastrowid or 0), stored)
            return self._postoffice(postoffice_row(conn, name))

    def get_postoffice(self, name: str) -> PostOffice:
        return self._postoffice(postoffice_row(self._conn, name))

    def list_postoffices(self) -> list[PostOffice]:
        rows = self._conn.execute("SELECT * FROM postoffice ORDER BY name COLLATE NOCASE")
        return [self._postoffice(r) for r in rows]

    def update_postoffice(self, name: str, options: Mapping[str, Any]) -> PostOffice:
        changes = option_changes(objects.POSTOFFICE, options)
        with self._store.transaction() as conn:
            row = postoffice_row(conn, name)
            stored = objects.merge(objects.POSTOFFICE,
                                   self._stored_options("postoffice", row), changes)
            self._write_options(conn, "postoffice", row["id"], stored)
            return self._postoffice(postoffice_row(conn, name))

    def delete_postoffice(self, name: str, *, force: bool = False) -> None:
        with self._store.transaction() as conn:
            row = postoffice_row(conn, name)
            boxes = [r["name"] for r in conn.execute(
                "SELECT name FROM mailbox WHERE postoffice_id = ?", (row["id"],))]
            users = [b for b in boxes if b != PUBLIC_ROOT]   # public folders go along
            if users and not force:
                raise DirectoryError("postoffice", f"post office {row['name']} still has "
                                     f"{len(users)} mailbox(es); delete them first or use "
                                     "--force")
            # Members of other post offices' groups that point into this one go too.
            prefix = f"[SF:{row['name']}/"
            conn.execute("DELETE FROM group_member WHERE substr(member, 1, ?) = ? COLLATE NOCASE",
                         (len(prefix), prefix))
            conn.execute("DELETE FROM postoffice WHERE id = ?", (row["id"],))
        for box in boxes:
            self._remove_files(row["name"], box)
