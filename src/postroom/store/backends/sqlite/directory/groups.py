"""Groups (manual 5.6): one address, many recipients.

A group is addressed inside the system as ``[SF:postoffice/group]``, the namespace it
shares with mailboxes (the post office connector expands either), so a group may not
take a mailbox's name and vice versa. It gets its e-mail addresses the way the
manual's "Add email" does (5.6.2): ordinary address map entries
``[SMTP:staff@example.com] -> [SF:po/group]``.

Members are connector addresses (untrusted, normalised by
:mod:`postroom.store.addresses`): a remote ``[SMTP:..]`` address is taken as given, a
local ``[SF:..]`` or ``[LS:..]`` target must exist. A group cannot contain itself;
deeper loops are the expanding connector's business.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from postroom.settings import objects
from postroom.store.addresses import (
    ConnectorAddress,
    check_group_name,
    parse_connector,
    sf_address,
)
from postroom.store.backends.sqlite.directory.address_map import forget_target, resolve_target
from postroom.store.backends.sqlite.directory.options import option_changes
from postroom.store.backends.sqlite.directory.rows import (
    DirectoryRows,
    group_row,
    postoffice_row,
    sf_name_taken,
)
from postroom.store.directory import DirectoryError, Group


def member_address(conn: sqlite3.Connection, member: str) -> str:
    """A member as a canonical connector address; local targets must exist."""
    parsed: ConnectorAddress = parse_connector(member, "member")
    if parsed.connector == "SMTP":
        return str(parsed)
    return resolve_target(conn, str(parsed), "member")[0]


class Groups(DirectoryRows):
    def create_group(self, postoffice: str, name: str,
                     options: Mapping[str, Any] | None = None) -> Group:
        name = check_group_name(name, "name")
        stored = objects.merge(objects.GROUP, {}, option_changes(objects.GROUP, options))
        with self._store.transaction() as conn:
            po = postoffice_row(conn, postoffice)
            taken = sf_name_taken(conn, po["id"], name)
            if taken:
                raise DirectoryError("name", f"a {taken} named {name} already exists in post "
                                             f"office {po['name']}")
            cursor = conn.execute("INSERT INTO mail_group (postoffice_id, name) VALUES (?, ?)",
                                  (po["id"], name))
            self._write_options(conn, "group", int(cursor.lastrowid or 0), stored)
            return self._group(conn, group_row(conn, po, name), po["name"])

    def get_group(self, postoffice: str, name: str) -> Group:
        conn = self._conn
        po = postoffice_row(conn, postoffice)
        return self._group(conn, group_row(conn, po, name), po["name"])

    def list_groups(self, postoffice: str) -> list[Group]:
        conn = self._conn
        po = postoffice_row(conn, postoffice)
        rows = conn.execute("SELECT * FROM mail_group WHERE postoffice_id = ? "
                            "ORDER BY name COLLATE NOCASE", (po["id"],)).fetchall()
        return [self._group(conn, r, po["name"]) for r in rows]

    def update_group(self, postoffice: str, name: str, options: Mapping[str, Any]) -> Group:
        """Change a group's options (``disabled``). Added to the Protocol's methods."""
        changes = option_changes(objects.GROUP, options)
        with self._store.transaction() as conn:
            po = postoffice_row(conn, postoffice)
            row = group_row(conn, po, name)
            stored = objects.merge(objects.GROUP, self._stored_options("group", row), changes)
            self._write_options(conn, "group", row["id"], stored)
            return self._group(conn, group_row(conn, po, name), po["name"])

    def add_group_member(self, postoffice: str, name: str, member: str) -> Group:
        with self._store.transaction() as conn:
            po = postoffice_row(conn, postoffice)
            row = group_row(conn, po, name)
            address = member_address(conn, member)
            if address.lower() == sf_address(po["name"], row["name"]).lower():
                raise DirectoryError("member", "a group cannot be a member of itself")
            if conn.execute("SELECT 1 FROM group_member WHERE group_id = ? AND member = ?",
                            (row["id"], address)).fetchone():
                raise DirectoryError("member", f"{address} is already a member of {row['name']}")
            conn.execute("INSERT INTO group_member (group_id, member) VALUES (?, ?)",
                         (row["id"], address))
            return self._group(conn, row, po["name"])

    def remove_group_member(self, postoffice: str, name: str, member: str) -> Group:
        with self._store.transaction() as conn:
            po = postoffice_row(conn, postoffice)
            row = group_row(conn, po, name)
            parsed = parse_connector(member, "member")
            address = str(parsed)
            if conn.execute("DELETE FROM group_member WHERE group_id = ? AND member = ?",
                            (row["id"], address)).rowcount == 0:
                raise DirectoryError("member", f"{address} is not a member of {row['name']}")
            return self._group(conn, row, po["name"])

    def delete_group(self, postoffice: str, name: str) -> None:
        with self._store.transaction() as conn:
            po = postoffice_row(conn, postoffice)
            row = group_row(conn, po, name)
            forget_target(conn, sf_address(po["name"], row["name"]))
            conn.execute("DELETE FROM mail_group WHERE id = ?", (row["id"],))
