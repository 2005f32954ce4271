"""POP retrieval entries (manual 5.5.8): remote POP3 accounts collected into a mailbox.

The entry's host, port, user name, SSL and "leave a copy" settings are options of the
POP_RETRIEVAL set; the remote password is untrusted text, checked (no line breaks or
NUL, which would inject POP3 commands) and stored only encrypted under the server key,
bound to its row (``pop_retrieval:ID``). It is decrypted only for the POP retrieval
connector (:meth:`PopRetrievals.pop_retrieval_password`), never into records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from postroom.settings import objects
from postroom.store.backends.sqlite.directory.options import option_changes
from postroom.store.backends.sqlite.directory.rows import (
    POP_SELECT,
    DirectoryRows,
    mailbox_row,
    postoffice_row,
)
from postroom.store.directory import DirectoryError, PopRetrieval


class PopRetrievals(DirectoryRows):
    def add_pop_retrieval(self, postoffice: str, mailbox: str, options: Mapping[str, Any],
                          password: str) -> PopRetrieval:
        changes = option_changes(objects.POP_RETRIEVAL, options)
        values = objects.effective(objects.POP_RETRIEVAL,
                                   objects.merge(objects.POP_RETRIEVAL, {}, changes))
        for required in ("host", "username"):
            if not values[required]:
                raise DirectoryError(required, "is required for a POP retrieval entry")
        if not isinstance(password, str) or not password:
            raise DirectoryError("password", "is required for a POP retrieval entry")
        if any(ch in password for ch in "\r\n\x00"):
            raise DirectoryError("password", "must not contain line breaks or NUL characters")
        stored = objects.merge(objects.POP_RETRIEVAL, {}, changes)
        with self._store.transaction() as conn:
            po = postoffice_row(conn, postoffice)
            box = mailbox_row(conn, po, mailbox)
            cursor = conn.execute("INSERT INTO pop_retrieval (mailbox_id) VALUES (?)",
                                  (box["id"],))
            entry_id = int(cursor.lastrowid or 0)
            self._write_options(conn, "pop_retrieval", entry_id, stored)
            conn.execute("UPDATE pop_retrieval SET password_secret = ? WHERE id = ?",
                         (self._store.secrets.encrypt(password, f"pop_retrieval:{entry_id}"),
                          entry_id))
            return self._pop_entry(conn.execute(POP_SELECT + " WHERE r.id = ?",
                                                (entry_id,)).fetchone())

    def list_pop_retrieval(self, postoffice: str, mailbox: str) -> list[PopRetrieval]:
        conn = self._conn
        box = mailbox_row(conn, postoffice_row(conn, postoffice), mailbox)
        rows = conn.execute(POP_SELECT + " WHERE r.mailbox_id = ? ORDER BY r.id",
                            (box["id"],)).fetchall()
        return [self._pop_entry(r) for r in rows]

    def all_pop_retrieval(self) -> list[PopRetrieval]:
        """Every POP retrieval entry of every mailbox (for the POP retrieval connector)."""
        rows = self._conn.execute(POP_SELECT + " ORDER BY r.id").fetchall()
        return [self._pop_entry(r) for r in rows]

    def pop_retrieval_password(self, entry_id: int) -> str:
        """The remote password of an entry (decrypted for the POP retrieval connector)."""
        row = self._conn.execute("SELECT password_secret FROM pop_retrieval WHERE id = ?",
                                 (entry_id,)).fetchone()
        if row is None:
            raise DirectoryError("entry_id", f"no POP retrieval entry {entry_id}")
        return self._store.secrets.decrypt(row["password_secret"], f"pop_retrieval:{entry_id}")

    def delete_pop_retrieval(self, entry_id: int) -> None:
        if isinstance(entry_id, bool) or not isinstance(entry_id, int):
            raise DirectoryError("entry_id", f"expected an entry number, got {entry_id!r}")
        with self._store.transaction() as conn:
            if conn.execute("DELETE FROM pop_retrieval WHERE id = ?", (entry_id,)).rowcount == 0:
                raise DirectoryError("entry_id", f"no POP retrieval entry {entry_id}")
