"""Domains of a post office (manual 5.4), stored in their ASCII (punycode) form.

A domain name is untrusted and goes through :func:`postroom.store.addresses.ascii_domain`
(IDNA), so ``bücher.example`` and ``xn--bcher-kva.example`` are the same domain;
records carry the Unicode form for display. A domain belongs to one post office.

Decisions:

* New domains add no addresses to existing mailboxes (5.5.1); only new mailboxes get
  ``name@domain`` for every domain (see :mod:`.mailboxes`).
* The domain option ``catch_all`` names an address; it is kept in the address map as
  ``[SMTP:*@domain]`` pointing at that address's target (or at a remote address, which
  the manual allows but warns against, 5.4.2).
* Deleting a domain removes its addresses from the map and clears the ``domain``
  option of lists that used it.
* ``dkim.private_key`` is a secret option: sealed in the stored document (:mod:`.options`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from postroom.settings import objects
from postroom.store.addresses import ascii_domain, parse_email, smtp_address, unicode_domain
from postroom.store.backends.sqlite.directory.options import dump_json, load_json, option_changes
from postroom.store.backends.sqlite.directory.rows import (
    DirectoryRows,
    domain_row,
    postoffice_row,
)
from postroom.store.directory import DirectoryError, Domain


def sync_catch_all(conn: sqlite3.Connection, domain: sqlite3.Row, value: str) -> None:
    """Make ``[SMTP:*@domain]`` point where the ``catch_all`` option says (or nowhere)."""
    key = smtp_address("*", domain["name"])
    conn.execute("DELETE FROM address WHERE address = ?", (key,))
    if not value:
        return
    local, dom = parse_email(value, "catch_all")
    found = conn.execute("SELECT * FROM address WHERE address = ?",
                         (smtp_address(local, dom),)).fetchone()
    if found is not None:
        if found["postoffice_id"] != domain["postoffice_id"]:
            raise DirectoryError("catch_all", f"{value} belongs to another post office")
        target = found["target"]
    elif conn.execute("SELECT 1 FROM domain WHERE name = ?", (dom,)).fetchone():
        raise DirectoryError("catch_all", f"no mailbox or group has the address {value}")
    else:
        target = smtp_address(local, dom)   # remote catch-all (discouraged, 5.4.2)
    conn.execute("INSERT INTO address (address, target, postoffice_id) VALUES (?, ?, ?)",
                 (key, target, domain["postoffice_id"]))


class Domains(DirectoryRows):
    def create_domain(self, name: str, postoffice: str,
                      options: Mapping[str, Any] | None = None) -> Domain:
        ascii_name = ascii_domain(name, "domain")
        changes = option_changes(objects.DOMAIN, options)
        with self._store.transaction() as conn:
            po = postoffice_row(conn, postoffice)
            existing = conn.execute(
                "SELECT p.name FROM domain d JOIN postoffice p ON p.id = d.postoffice_id "
                "WHERE d.name = ?", (ascii_name,)).fetchone()
            if existing:
                raise DirectoryError("domain", f"domain {unicode_domain(ascii_name)} already "
                                     f"belongs to post office {existing['name']}")
            stored = objects.merge(objects.DOMAIN, {}, changes)
            cursor = conn.execute("INSERT INTO domain (name, postoffice_id) VALUES (?, ?)",
                                  (ascii_name, po["id"]))
            self._write_options(conn, "domain", int(cursor.lastrowid or 0), stored)
            row = domain_row(conn, ascii_name)
            if "catch_all" in changes:
                sync_catch_all(conn, row, stored.get("catch_all", ""))
            return self._domain(row, po["name"])

    def get_domain(self, name: str) -> Domain:
        # One query with the post office's name (SMTP asks this for every recipient).
        row = self._conn.execute(
            "SELECT d.*, p.name AS po_name FROM domain d JOIN postoffice p "
            "ON p.id = d.postoffice_id WHERE d.name = ?",
            (ascii_domain(name, "domain"),)).fetchone()
        if row is None:
            raise DirectoryError("domain", f"no domain named {name!r}")   # as domain_row
        return self._domain(row, row["po_name"])

    def list_domains(self, postoffice: str | None = None) -> list[Domain]:
        conn = self._conn
        sql = ("SELECT d.*, p.name AS po_name FROM domain d "
               "JOIN postoffice p ON p.id = d.postoffice_id")
        args: tuple[Any, ...] = ()
        if postoffice is not None:
            sql += " WHERE d.postoffice_id = ?"
            args = (postoffice_row(conn, postoffice)["id"],)
        rows = conn.execute(sql + " ORDER BY d.name", args).fetchall()
        return [self._domain(r, r["po_name"]) for r in rows]

    def update_domain(self, name: str, options: Mapping[str, Any]) -> Domain:
        changes = option_changes(objects.DOMAIN, options)
        with self._store.transaction() as conn:
            row = domain_row(conn, name)
            stored = objects.merge(objects.DOMAIN, self._stored_options("domain", row), changes)
            self._write_options(conn, "domain", row["id"], stored)
            if "catch_all" in changes:
                sync_catch_all(conn, row, stored.get("catch_all", ""))
            return self._domain(domain_row(conn, name))

    def delete_domain(self, name: str) -> None:
        with self._store.transaction() as conn:
            row = domain_row(conn, name)
            suffix = f"@{row['name']}]"
            conn.execute("DELETE FROM address WHERE postoffice_id = ? AND "
                         "substr(address, -?) = ? COLLATE NOCASE",
                         (row["postoffice_id"], len(suffix), suffix))
            # Lists' documents are edited as stored: their sealed secrets stay sealed.
            for entry in conn.execute("SELECT id, options FROM mail_list WHERE postoffice_id = ?",
                                      (row["postoffice_id"],)).fetchall():
                stored = load_json(entry["options"])
                if stored.get("domain") == row["name"]:
                    del stored["domain"]
                    conn.execute("UPDATE mail_list SET options = ? WHERE id = ?",
                                 (dump_json(stored), entry["id"]))
            conn.execute("DELETE FROM domain WHERE id = ?", (row["id"],))
