"""The hidden mailbox of a post office's public folders (manual 6.3.6.4 "Pubroot").

Why a mailbox: public folders then are ordinary folders of the message store, so
messages, flags, UIDs, MODSEQ, IDLE wake-ups and the IMAP folder index work for them
unchanged, shared by every user of the post office. The row is made here, not by
``create_mailbox``, because its name (:data:`~postroom.store.directory.PUBLIC_ROOT`)
is one ``create_mailbox`` refuses: brackets are not allowed in mailbox names, logins
holding them are refused before any lookup, and no address can target it, so it can
never log in (no password hash either; and it carries ``prevent_authentication``)
nor receive mail. It has no quota and no folders until someone creates one.
"""

from __future__ import annotations

import time

from postroom.store.backends.sqlite.directory.rows import (
    DirectoryRows,
    mailbox_row,
    postoffice_row,
)
from postroom.store.directory import PUBLIC_ROOT, Mailbox


class PublicRoot(DirectoryRows):
    def public_root(self, postoffice: str) -> Mailbox:
        conn = self._conn
        po = postoffice_row(conn, postoffice)
        row = conn.execute("SELECT * FROM mailbox WHERE postoffice_id = ? AND name = ?",
                           (po["id"], PUBLIC_ROOT)).fetchone()
        if row is None:
            with self._store.transaction() as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO mailbox (postoffice_id, name, type, password_hash, "
                    "quota_bytes, options, created_at) VALUES (?, ?, 'USER', NULL, NULL, ?, ?)",
                    (po["id"], PUBLIC_ROOT, '{"prevent_authentication": true}', time.time()))
                row = mailbox_row(conn, po, PUBLIC_ROOT)
        return self._mailbox(row, po["name"])
