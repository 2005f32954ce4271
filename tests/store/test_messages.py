"""Mailbox folders and messages: what IMAP, POP3 and the administrator will rely on."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from postroom.store import Store
from postroom.store.messages import DEFAULT_FOLDERS, MessageStoreError
from tests.store.helpers import make_mailbox, message


@pytest.fixture
def box(store: Store) -> Store:
    make_mailbox(store)
    return store


def test_new_mailbox_has_default_folders_with_distinct_uidvalidity(box: Store) -> None:
    folders = box.messages.list_folders("example", "bob")
    assert {f.name for f in folders} == set(DEFAULT_FOLDERS)
    assert folders[0].name == "Inbox"
    assert len({f.uidvalidity for f in folders}) == len(folders)
    assert all(f.uidnext == 1 and f.messages == 0 for f in folders)


def test_one_folder_listed_alone_has_the_same_counts(box: Store) -> None:
    for n in range(3):
        box.messages.append("example", "bob", "Inbox", message(n))
    box.messages.append("example", "bob", "Drafts", message(9))
    everything = {f.name: f for f in box.messages.list_folders("example", "bob")}
    assert box.messages.list_folders("example", "bob", only="INBOX") == [everything["Inbox"]]
    assert box.messages.list_folders("example", "bob", only="Drafts") == [everything["Drafts"]]
    assert everything["Inbox"].messages == 3
    assert box.messages.list_folders("example", "bob", only="No such folder") == []


def test_create_folders_requires_the_callers_transaction(box: Store) -> None:
    with pytest.raises(MessageStoreError, match="transaction"):
        box.messages.create_folders(box.conn, 1, ("Other",))


def test_create_folders_rolls_back_with_the_caller(box: Store) -> None:
    with pytest.raises(RuntimeError), box.transaction() as conn:
        box.messages.create_folders(conn, 1, ("Archive",))
        raise RuntimeError("directory failed later")
    assert "Archive" not in {f.name for f in box.messages.list_folders("example", "bob")}


def test_append_is_readable_as_a_plain_eml_file(box: Store, home: Path) -> None:
    data = message(1)
    result = box.messages.append("example", "bob", "Inbox", data, flags=["\\Seen"])
    assert (result.uid, result.size) == (1, len(data))
    [info] = box.messages.list_messages("example", "bob", "INBOX")
    assert info.flags == ("\\Seen",)
    assert info.path.startswith("example/bob/Inbox/") and info.path.endswith(".eml")
    assert (home / "messages" / info.path).read_bytes() == data
    assert box.messages.read("example", "bob", "Inbox", 1) == data
    with box.messages.open("example", "bob", "Inbox", 1) as handle:
        assert handle.read(4) == b"From"
    assert box.messages.usage("example", "bob") == (len(data), 1)
    assert not list((home / "tmp").iterdir())


def test_append_from_a_spool_file(box: Store, tmp_path: Path) -> None:
    spool = tmp_path / "spool.eml"
    spool.write_bytes(message(7, 20000))
    result = box.messages.append("example", "bob", "Inbox", spool)
    assert result.size == 20000
    assert box.messages.read("example", "bob", "Inbox", result.uid) == spool.read_bytes()
    assert spool.exists()


def test_append_async_from_asyncio(box: Store) -> None:
    async def deliver() -> list[int]:
        futures = [asyncio.wrap_future(box.messages.append_async(
            "example", "bob", "Inbox", message(n))) for n in range(10)]
        return [r.uid for r in await asyncio.gather(*futures)]

    assert sorted(asyncio.run(deliver())) == list(range(1, 11))


def test_bad_input_names_the_field_and_changes_nothing(box: Store, home: Path) -> None:
    cases = [
        (("nowhere", "bob", "Inbox"), "postoffice"),
        (("example", "alice", "Inbox"), "mailbox"),
        (("example", "bob", "Nope"), "folder"),
    ]
    for args, field in cases:
        with pytest.raises(MessageStoreError) as info:
            box.messages.append(*args, message(1))
        assert info.value.field == field
    with pytest.raises(MessageStoreError) as info:
        box.messages.append("example", "bob", "Inbox", message(1), flags=["\\Bogus"])
    assert info.value.field == "flags"
    with pytest.raises(MessageStoreError) as info:
        box.messages.create_folder("example", "bob", "a/../b")
    assert info.value.field == "folder"
    assert box.messages.usage("example", "bob") == (0, 0)
    assert not [p for p in (home / "messages").rglob("*") if p.is_file()]


def test_uids_strictly_increase_and_are_never_reused(box: Store) -> None:
    uids = [box.messages.append("example", "bob", "Inbox", message(n)).uid for n in range(3)]
    assert uids == [1, 2, 3]
    assert box.messages.expunge("example", "bob", "Inbox", [3]) == 1
    assert box.messages.append("example", "bob", "Inbox", message(9)).uid == 4
    assert [m.uid for m in box.messages.list_messages("example", "bob", "Inbox")] == [1, 2, 4]


def test_flags_and_modseq(box: Store) -> None:
    for n in range(3):
        box.messages.append("example", "bob", "Inbox", message(n))
    before = {m.uid: m.modseq for m in box.messages.list_messages("example", "bob", "Inbox")}
    high = box.messages.set_flags("example", "bob", "Inbox", [1, 2], ["\\Seen", "$Work"])
    after = {m.uid: m for m in box.messages.list_messages("example", "bob", "Inbox")}
    assert after[1].flags == ("$Work", "\\Seen")
    assert after[1].modseq == after[2].modseq == high > max(before.values())
    assert after[3].modseq == before[3]
    # No change: no new modseq.
    assert box.messages.set_flags("example", "bob", "Inbox", [1], ["\\Seen"]) == high
    high2 = box.messages.set_flags("example", "bob", "Inbox", [1], ["\\Seen"], mode="remove")
    assert high2 == high + 1
    box.messages.set_flags("example", "bob", "Inbox", [2], ["\\Flagged"], mode="replace")
    flags = {m.uid: m.flags for m in box.messages.list_messages("example", "bob", "Inbox")}
    assert flags == {1: ("$Work",), 2: ("\\Flagged",), 3: ()}
    [inbox] = [f for f in box.messages.list_folders("example", "bob") if f.name == "Inbox"]
    assert inbox.highestmodseq == high2 + 1


def test_copy_and_move_get_new_uids_and_keep_content(box: Store) -> None:
    msgs = box.messages
    for n in range(3):
        msgs.append("example", "bob", "Inbox", message(n), flags=["\\Seen"])
    msgs.append("example", "bob", "Drafts", message(99))
    assert msgs.copy("example", "bob", "Inbox", [1, 2], "Drafts") == {1: 2, 2: 3}
    assert msgs.read("example", "bob", "Drafts", 3) == message(1)
    assert msgs.usage("example", "bob") == (6 * 5000, 6)
    assert msgs.move("example", "bob", "Inbox", [3], "Deleted Items") == {3: 1}
    assert [m.uid for m in msgs.list_messages("example", "bob", "Inbox")] == [1, 2]
    moved = msgs.list_messages("example", "bob", "Deleted Items")
    assert [(m.uid, m.flags) for m in moved] == [(1, ("\\Seen",))]
    assert msgs.read("example", "bob", "Deleted Items", 1) == message(2)
    assert msgs.usage("example", "bob") == (6 * 5000, 6)
    # Expunging the original leaves the copy intact (files are hard links).
    msgs.expunge("example", "bob", "Inbox", [1, 2])
    assert msgs.read("example", "bob", "Drafts", 2) == message(0)
    assert msgs.usage("example", "bob") == (4 * 5000, 4)


def test_copy_refused_over_quota(store: Store) -> None:
    make_mailbox(store, quota_bytes=12000)
    store.messages.append("example", "bob", "Inbox", message(1))
    store.messages.append("example", "bob", "Inbox", message(2))
    with pytest.raises(MessageStoreError) as info:
        store.messages.copy("example", "bob", "Inbox", [1], "Drafts")
    assert info.value.field == "quota"
    assert store.messages.list_messages("example", "bob", "Drafts") == []
    assert store.messages.usage("example", "bob") == (10000, 2)


def test_folder_create_rename_delete(box: Store, home: Path) -> None:
    msgs = box.messages
    created = msgs.create_folder("example", "bob", "Projects")
    msgs.create_folder("example", "bob", "Projects/2026")
    with pytest.raises(MessageStoreError, match="already exists"):
        msgs.create_folder("example", "bob", "Projects")
    msgs.append("example", "bob", "Projects/2026", message(1))
    msgs.rename_folder("example", "bob", "Projects", "Archive")
    names = {f.name for f in msgs.list_folders("example", "bob")}
    assert {"Archive", "Archive/2026"} <= names and "Projects" not in names
    assert msgs.read("example", "bob", "Archive/2026", 1) == message(1)
    # Recreating the old name gives a new UIDVALIDITY.
    again = msgs.create_folder("example", "bob", "Projects")
    assert again.uidvalidity != created.uidvalidity
    assert msgs.delete_folder("example", "bob", "Archive/2026") == 1
    assert msgs.usage("example", "bob") == (0, 0)
    assert not [p for p in (home / "messages").rglob("*.eml")]
    with pytest.raises(MessageStoreError, match="Inbox"):
        msgs.delete_folder("example", "bob", "INBOX")


def test_delete_older_than(box: Store) -> None:
    old = time.time() - 40 * 86400
    box.messages.append("example", "bob", "Inbox", message(1), internal_date=old)
    box.messages.append("example", "bob", "Sent Items", message(2), internal_date=old)
    box.messages.append("example", "bob", "Inbox", message(3))
    assert box.messages.delete_older_than("example", 30, folder="Sent Items") == 1
    assert box.messages.delete_older_than("example", 30) == 1
    assert [m.uid for m in box.messages.list_messages("example", "bob", "Inbox")] == [2]
    assert box.messages.usage("example", "bob") == (5000, 1)


def test_remove_mailbox_files_after_rows_are_gone(box: Store, home: Path) -> None:
    make_mailbox(box, mailbox="carol")
    box.messages.append("example", "bob", "Inbox", message(1))
    box.messages.append("example", "carol", "Inbox", message(2))
    with box.transaction() as conn:
        conn.execute("DELETE FROM mailbox WHERE name='bob'")
    box.messages.remove_mailbox_files("example", "bob")
    assert not (home / "messages" / "example" / "bob").exists()
    assert box.messages.read("example", "carol", "Inbox", 1) == message(2)


def test_orphan_files_are_found_and_removed(box: Store, home: Path) -> None:
    box.messages.append("example", "bob", "Inbox", message(1))
    orphan = home / "messages" / "example" / "bob" / "Inbox" / "left-by-crash.eml"
    orphan.write_bytes(b"partial")
    assert box.messages.orphans(min_age=0) == ["example/bob/Inbox/left-by-crash.eml"]
    box.messages.orphans(remove=True, min_age=0)
    assert not orphan.exists()
    assert box.messages.read("example", "bob", "Inbox", 1) == message(1)
