"""The address map: ``[SMTP:local@domain]`` -> a mailbox, group or list (manual 5.5.4).

Keys are connector addresses ``[SMTP:local@domain]`` of a domain of the target's post
office; targets are ``[SF:postoffice/name]`` (a mailbox or a group, which the post
office connector expands) or ``[LS:postoffice/list]``. Addresses and targets are
untrusted and are normalised by :mod:`postroom.store.addresses` first; a target must
exist, and an address may be mapped only once.

A domain's catch-all is the entry ``[SMTP:*@domain]``, kept in step with the domain
option ``catch_all`` (see :mod:`.domains`). ``resolve`` tries the exact address, then
the catch-all. Whether the target is disabled is the delivering connector's business.

The functions below are also used when mailboxes, groups and lists are deleted:
their mappings, group memberships and a catch-all pointing at them go with them.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from postroom.store.addresses import (
    ls_address,
    normalise_smtp,
    parse_connector,
    sf_address,
    smtp_address,
    unicode_domain,
)
from postroom.store.backends.sqlite.directory.options import dump_json, load_json
from postroom.store.backends.sqlite.directory.rows import (
    DirectoryRows,
    list_row,
    postoffice_by_id,
    postoffice_row,
)
from postroom.store.directory import Address, DirectoryError


def resolve_target(conn: sqlite3.Connection, target: str,
                   field: str = "target") -> tuple[str, int]:
    """Canonical target address and its post office id; the target must exist."""
    parsed = parse_connector(target, field)
    if parsed.connector == "SMTP":
        raise DirectoryError(field, "a target must be a mailbox or group [SF:po/name] or a "
                                    "list [LS:po/list]")
    po = postoffice_row(conn, parsed.postoffice, field)
    if parsed.connector == "SF":
        for table in ("mailbox", "mail_group"):
            row = conn.execute(f"SELECT name FROM {table} WHERE postoffice_id = ? "
                               "AND name = ?", (po["id"], parsed.name)).fetchone()
            if row is not None:
                return sf_address(po["name"], row["name"]), po["id"]
        raise DirectoryError(field, f"no mailbox or group {parsed.name!r} in post office "
                                    f"{po['name']}")
    row = list_row(conn, po, parsed.name, field)
    return ls_address(po["name"], row["name"]), po["id"]


def forget_target(conn: sqlite3.Connection, target: str) -> None:
    """Remove the address mappings and group memberships of a target being deleted."""
    for entry in conn.execute("SELECT address FROM address WHERE target = ? COLLATE NOCASE",
                              (target,)).fetchall():
        parsed = parse_connector(entry["address"], allow_catch_all=True)
        if parsed.local == "*":     # the domain's catch-all pointed here: clear it
            clear_catch_all_option(conn, parsed.domain)
    conn.execute("DELETE FROM address WHERE target = ? COLLATE NOCASE", (target,))
    conn.execute("DELETE FROM group_member WHERE member = ?", (target,))


def clear_catch_all_option(conn: sqlite3.Connection, domain: str) -> None:
    """Unset the domain's ``catch_all`` option once its map entry is gone.

    The document is edited as stored: other options, sealed secrets included, are
    written back untouched (no decryption needed).
    """
    row = conn.execute("SELECT id, options FROM domain WHERE name = ?", (domain,)).fetchone()
    if row is None:
        return
    stored = load_json(row["options"])
    if stored.pop("catch_all", None) is not None:
        conn.execute("UPDATE domain SET options = ? WHERE id = ?",
                     (dump_json(stored), row["id"]))


class AddressMap(DirectoryRows):
    def add_address(self, address: str, target: str) -> Address:
        key = normalise_smtp(address, "address", allow_catch_all=True)
        parsed = parse_connector(key, allow_catch_all=True)
        with self._store.transaction() as conn:
            canonical, po_id = resolve_target(conn, target)
            domain = conn.execute("SELECT * FROM domain WHERE name = ?",
                                  (parsed.domain,)).fetchone()
            po = postoffice_by_id(conn, po_id)
            if domain is None or domain["postoffice_id"] != po_id:
                raise DirectoryError("address", f"{unicode_domain(parsed.domain)} is not a "
                                     f"domain of post office {po['name']}")
            existing = conn.execute("SELECT target FROM address WHERE address = ?",
                                    (key,)).fetchone()
            if existing:
                raise DirectoryError("address", f"{key} is already mapped to "
                                                f"{existing['target']}")
            conn.execute("INSERT INTO address (address, target, postoffice_id) VALUES (?, ?, ?)",
                         (key, canonical, po_id))
            return Address(address=key, target=canonical, postoffice=po["name"])

    def delete_address(self, address: str) -> None:
        key = normalise_smtp(address, "address", allow_catch_all=True)
        with self._store.transaction() as conn:
            if conn.execute("SELECT 1 FROM address WHERE address = ?", (key,)).fetchone() is None:
                raise DirectoryError("address", f"{key} is not mapped")
            conn.execute("DELETE FROM address WHERE address = ?", (key,))
            parsed = parse_connector(key, allow_catch_all=True)
            if parsed.local == "*":
                clear_catch_all_option(conn, parsed.domain)

    def list_addresses(self, *, postoffice: str | None = None,
                       target: str | None = None) -> list[Address]:
        conn = self._conn
        sql = ("SELECT a.address, a.target, p.name AS po_name FROM address a "
               "JOIN postoffice p ON p.id = a.postoffice_id WHERE 1 = 1")
        args: list[Any] = []
        if postoffice is not None:
            sql += " AND a.postoffice_id = ?"
            args.append(postoffice_row(conn, postoffice)["id"])
        if target is not None:
            sql += " AND a.target = ? COLLATE NOCASE"
            args.append(target.strip())
        rows = conn.execute(sql + " ORDER BY a.id", args).fetchall()
        return [Address(r["address"], r["target"], r["po_name"]) for r in rows]

    def resolve(self, address: str) -> Address | None:
        """The mapping for ``address``: the exact entry, else the domain's catch-all."""
        key = normalise_smtp(address, "address", allow_catch_all=True)
        parsed = parse_connector(key, allow_catch_all=True)
        conn = self._conn
        for candidate in (key, smtp_address("*", parsed.domain)):
            row = conn.execute(
                "SELECT a.address, a.target, p.name AS po_name FROM address a "
                "JOIN postoffice p ON p.id = a.postoffice_id WHERE a.address = ?",
                (candidate,)).fetchone()
            if row is not None:
                return Address(row["address"], row["target"], row["po_name"])
        return None
