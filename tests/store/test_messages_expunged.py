"""What the store remembers of removed messages (RFC 7162 3.2, for IMAP QRESYNC):
every removal bumps HIGHESTMODSEQ and records the UIDs with it, in one transaction."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from postroom.store import Store
from postroom.store.messages import MessageStoreError, intersect_ranges, merge_ranges
from tests.store.helpers import make_mailbox, message


@pytest.fixture
def box(store: Store) -> Store:
    make_mailbox(store)
    return store


def highest(store: Store, folder: str = "Inbox") -> int:
    return next(f.highestmodseq for f in store.messages.list_folders("example", "bob")
                if f.name == folder)


def fill(store: Store, count: int, folder: str = "Inbox") -> None:
    for n in range(count):
        store.messages.append("example", "bob", folder, message(n, 400))


def test_expunge_records_uids_with_its_modseq(box: Store) -> None:
    msgs = box.messages
    fill(box, 6)
    start = highest(box)
    assert msgs.expunged_since("example", "bob", "Inbox", 0) == []
    msgs.expunge("example", "bob", "Inbox", [2, 3])
    after_first = highest(box)
    assert after_first == start + 1
    msgs.expunge("example", "bob", "Inbox", [5])
    assert highest(box) == after_first + 1
    assert msgs.expunged_since("example", "bob", "INBOX", 0) == [(2, 3), (5, 5)]
    assert msgs.expunged_since("example", "bob", "Inbox", start) == [(2, 3), (5, 5)]
    assert msgs.expunged_since("example", "bob", "Inbox", after_first) == [(5, 5)]
    assert msgs.expunged_since("example", "bob", "Inbox", highest(box)) == []
    # Restricted to a UID set.
    assert msgs.expunged_since("example", "bob", "Inbox", 0, [(3, 4)]) == [(3, 3)]
    assert msgs.expunged_since("example", "bob", "Inbox", 0, [(1, 1), (5, 9)]) == [(5, 5)]
    # Expunging nothing already gone changes nothing.
    before = highest(box)
    assert msgs.expunge("example", "bob", "Inbox", [2]) == 0
    assert highest(box) == before


def test_move_out_and_age_deletion_record_tombstones(box: Store) -> None:
    msgs = box.messages
    fill(box, 3)
    start = highest(box)
    target_start = highest(box, "Drafts")
    assert msgs.move("example", "bob", "Inbox", [1, 3], "Drafts") == {1: 1, 3: 2}
    assert highest(box) == start + 1
    assert msgs.expunged_since("example", "bob", "Inbox", start) == [(1, 1), (3, 3)]
    # The target gained messages, it lost none.
    assert highest(box, "Drafts") > target_start
    assert msgs.expunged_since("example", "bob", "Drafts", 0) == []
    old = time.time() - 40 * 86400
    msgs.append("example", "bob", "Inbox", message(9, 400), internal_date=old)   # uid 4
    mark = highest(box)
    assert msgs.delete_older_than("example", 30) == 1
    assert highest(box) == mark + 1
    assert msgs.expunged_since("example", "bob", "Inbox", mark) == [(4, 4)]


def test_records_go_with_the_folder_and_survive_a_rename(box: Store) -> None:
    msgs = box.messages
    msgs.create_folder("example", "bob", "Work")
    fill(box, 2, "Work")
    msgs.expunge("example", "bob", "Work", [1])
    msgs.rename_folder("example", "bob", "Work", "Archive")
    assert msgs.expunged_since("example", "bob", "Archive", 0) == [(1, 1)]
    msgs.delete_folder("example", "bob", "Archive")
    assert box.conn.execute("SELECT COUNT(*) FROM expunged").fetchone()[0] == 0
    msgs.create_folder("example", "bob", "Archive")
    assert msgs.expunged_since("example", "bob", "Archive", 0) == []


def test_bad_input(box: Store) -> None:
    with pytest.raises(MessageStoreError, match="modseq"):
        box.messages.expunged_since("example", "bob", "Inbox", -1)
    with pytest.raises(MessageStoreError) as info:
        box.messages.expunged_since("example", "bob", "Nowhere", 0)
    assert info.value.field == "folder"


def test_removals_from_before_the_records_give_every_absent_uid(home: Path) -> None:
    """A folder upgraded from schema 6: expunges before the upgrade were not recorded,
    so asking about that time answers with every UID below UIDNEXT that is gone."""
    with Store.open(home) as store:
        make_mailbox(store)
        fill(store, 6)
        store.messages.expunge("example", "bob", "Inbox", [2, 3])
        early = highest(store)
        store.messages.expunge("example", "bob", "Inbox", [6])
        # As if the first expunge happened before migration 7 was applied.
        store.conn.execute("DELETE FROM expunged WHERE uid IN (2, 3)")
        store.conn.execute("UPDATE folder SET expunged_floor=? WHERE name='Inbox'", (early,))
        msgs = store.messages
        assert msgs.expunged_since("example", "bob", "Inbox", early) == [(6, 6)]
        assert msgs.expunged_since("example", "bob", "Inbox", 1) == [(2, 3), (6, 6)]
        assert msgs.expunged_since("example", "bob", "Inbox", 1, [(3, 10)]) == [(3, 3), (6, 6)]


def test_migration_sets_the_floor_of_existing_folders() -> None:
    from postroom.store.backends.sqlite import db
    conn = sqlite3.connect(":memory:", isolation_level=None)
    db.migrate(conn, target=6)
    conn.execute("INSERT INTO postoffice (name, created_at) VALUES ('p', 0)")
    conn.execute("INSERT INTO mailbox (postoffice_id, name, created_at) VALUES (1, 'm', 0)")
    conn.execute("INSERT INTO folder (mailbox_id, name, uidvalidity, highestmodseq) "
                 "VALUES (1, 'Inbox', 1, 42)")
    db.migrate(conn)
    assert conn.execute("SELECT expunged_floor FROM folder").fetchone()[0] == 42
    conn.execute("INSERT INTO folder (mailbox_id, name, uidvalidity) VALUES (1, 'New', 2)")
    assert conn.execute("SELECT expunged_floor FROM folder WHERE name='New'").fetchone()[0] == 0


def test_range_helpers() -> None:
    assert merge_ranges([(5, 6), (1, 2), (3, 3), (9, 9), (8, 8)]) == [(1, 3), (5, 6), (8, 9)]
    assert intersect_ranges([(1, 10), (20, 30)], [(5, 25)]) == [(5, 10), (20, 25)]
    assert intersect_ranges([(1, 2)], [(3, 4)]) == []


def test_old_records_are_pruned_and_older_resyncs_get_every_absent_uid(
        box: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from postroom.store.backends.sqlite import messages as sqlite_messages

    monkeypatch.setattr(sqlite_messages, "TOMBSTONE_WINDOW", 3)
    msgs = box.messages
    fill(box, 8)
    start = highest(box)
    for uid in (1, 2, 3, 4, 5):              # five removals, one mod-sequence each
        msgs.expunge("example", "bob", "Inbox", [uid])
    rows = box.conn.execute("SELECT uid FROM expunged ORDER BY uid").fetchall()
    assert [r[0] for r in rows] == [3, 4, 5]  # only the last three mod-sequences kept
    # Since the start: records are gone, so every absent UID is told (nothing missed).
    assert msgs.expunged_since("example", "bob", "Inbox", start) == [(1, 5)]
    # Within the window the answer is exact.
    assert msgs.expunged_since("example", "bob", "Inbox", highest(box) - 1) == [(5, 5)]


def test_flag_changes_removals_and_claims_sent_together_each_get_their_own_answer(
        store: Store) -> None:
    """IMAP sessions hand these to the message writer at once: in one batch each still
    sees the ones before it (one new mod-sequence each), a bad one fails alone, and
    a removal takes the message's recorded CRLF size with it."""
    make_mailbox(store)
    uids = [store.messages.append("example", "bob", "Inbox", message(n)).uid
            for n in range(1, 7)]
    paths = {m.uid: m.path for m in store.messages.list_messages("example", "bob", "Inbox")}
    store.messages.note_crlf_sizes([(paths[uids[0]], 5000, False)]).result()
    start = store.messages.list_folders("example", "bob")
    highest = next(f.highestmodseq for f in start if f.name == "Inbox")
    flags = [store.messages.set_flags_async("example", "bob", "Inbox", [uid], ["\\Seen"])
             for uid in uids[1:5]]
    missing = store.messages.set_flags_async("example", "bob", "Nowhere", [uids[1]],
                                             ["\\Seen"])
    removed = store.messages.expunge_async("example", "bob", "Inbox", [uids[0], 999])
    claim = store.messages.claim_recent_async("example", "bob", "Inbox", uids[-1])
    assert sorted(f.result() for f in flags) == [highest + n for n in range(1, 5)]
    with pytest.raises(MessageStoreError):
        missing.result()
    assert removed.result() == 1
    assert claim.result() == 0
    assert store.messages.claim_recent("example", "bob", "Inbox", uids[-1]) == uids[-1]
    seen = {m.uid: m.flags for m in store.messages.list_messages("example", "bob", "Inbox")}
    assert uids[0] not in seen and seen[uids[5]] == ()
    assert all(seen[uid] == ("\\Seen",) for uid in uids[1:5])
    recorded = {row[0] for row in store.conn.execute("SELECT path FROM message_crlf_size")}
    assert recorded == {paths[uid] for uid in uids[1:]}
    # The asynchronous removal's file goes in the background, soon after the commit.
    gone = store.home.messages / paths[uids[0]]
    deadline = time.monotonic() + 10
    while gone.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not gone.exists()
    assert (store.home.messages / paths[uids[1]]).exists()
