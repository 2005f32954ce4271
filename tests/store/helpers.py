"""Test helpers for the message store and queues: post offices and mailboxes by SQL.

The directory API is written concurrently by another engineer; these helpers insert
the rows directly so the message-store tests depend only on the schema.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from postroom.store import Store


def make_mailbox(store: Store, postoffice: str = "example", mailbox: str = "bob",
                 quota_bytes: int | None = None) -> int:
    """Create (if missing) a post office and a mailbox with its default folders."""
    with store.transaction() as conn:
        row = conn.execute("SELECT id FROM postoffice WHERE name=?", (postoffice,)).fetchone()
        if row is None:
            po_id = conn.execute("INSERT INTO postoffice (name, created_at) VALUES (?, ?)",
                                 (postoffice, time.time())).lastrowid
        else:
            po_id = row[0]
        mb_id = conn.execute(
            "INSERT INTO mailbox (postoffice_id, name, quota_bytes, created_at) "
            "VALUES (?, ?, ?, ?)", (po_id, mailbox, quota_bytes, time.time())).lastrowid
        store.messages.create_folders(conn, mb_id)
    assert mb_id is not None
    return mb_id


def message(n: int, size: int = 5000) -> bytes:
    """A well-formed message of exactly ``size`` bytes whose body names ``n``."""
    head = (f"From: a@example.com\r\nTo: bob@example.com\r\nSubject: message {n}\r\n"
            f"Message-ID: <{n}@test>\r\n\r\n").encode()
    body = f"body of message {n}\r\n".encode()
    filler = size - len(head) - len(body)
    assert filler >= 0
    return head + body + b"x" * filler


def append_in_process(home: str, count: int, size: int, tag: int, barrier: Any,
                      results: Any) -> None:
    """Run in a child process: append ``count`` messages at once after all processes
    are ready; put the sizes accepted on ``results``."""
    from postroom.store.messages import QuotaExceeded

    accepted = []
    with Store.open(Path(home)) as store:
        store.messages  # noqa: B018 - open (and start the writer) before the race
        barrier.wait()
        futures = [store.messages.append_async("example", "bob", "Inbox",
                                               message(tag * 1000 + i, size))
                   for i in range(count)]
        for future in futures:
            with contextlib.suppress(QuotaExceeded):
                accepted.append(future.result().size)
    results.put((tag, accepted))
