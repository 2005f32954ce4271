"""Folder index snapshots (services/imap/index_file.py): a big folder's index kept on
disk answers the first SELECT after a restart with what changed since, never with
anything the store does not hold; a damaged snapshot is ignored."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postroom.services.imap.service import ImapService
from postroom.store import Store
from postroom.store.backends.sqlite import index_file
from postroom.store.backends.sqlite.folder_index import FolderIndexes
from postroom.store.backends.sqlite.index_file import Columns, decode, encode, path_list
from postroom.store.initialise import initialise
from tests.servers import prepare_client_service, running
from tests.services.imap.conftest import RawImap, message

BOX = ("example", "bob")


def _store(home: Path) -> Store:
    initialise(home, hostname="mail.test")
    store = Store.open(home)
    store.directory.create_postoffice("example")
    store.directory.create_mailbox("example", "bob", "Secret-Password-1!")
    store.messages.create_folder(*BOX, "Archive")
    return store


def _msg(n: int) -> bytes:
    return f"From: a@x.test\r\nSubject: message {n}\r\n\r\nbody {n}\r\n".encode()


def _snapshotting(folder: Path) -> FolderIndexes:
    indexes = FolderIndexes(snapshots=folder)
    assert indexes.snapshots is not None
    indexes.snapshots.min_messages = 1
    indexes.snapshots.every = 1
    return indexes


def _same_as_the_store(store: Store, indexes: FolderIndexes) -> None:
    index = indexes.get(store, *BOX, "Inbox")
    fresh = FolderIndexes().get(store, *BOX, "Inbox")
    assert index is not None and fresh is not None
    assert (index.state, index.uids, index.first_unseen()) == \
        (fresh.state, fresh.uids, fresh.first_unseen())
    listed = store.messages.list_messages(*BOX, "Inbox")
    assert index.info == fresh.info == {m.uid: m for m in listed}
    assert index.first_unseen() == next(
        (n for n, m in enumerate(listed, 1) if "\\Seen" not in m.flags), None)


def test_a_snapshot_reads_back_as_written_and_a_damaged_one_is_not_read() -> None:
    columns = Columns([10, 20, 30], [(), ("\\Seen",), ("$Work", "\\Seen")],
                      [1.5, 2.5, 3.25], [4, 9, 7], ["a/b/1.eml", "a/b/2.eml", "a/b/ü.eml"])
    data = b"".join(encode(42, (7, 12, 9), [1, 5, 11], columns))
    snapshot = decode(data)
    assert snapshot is not None
    assert (snapshot.folder_id, snapshot.state, snapshot.uids) == (42, (7, 12, 9), [1, 5, 11])
    assert [list(column) for column in snapshot.columns[:4]] == [list(c) for c in columns[:4]]
    assert path_list(snapshot.columns.paths) == columns.paths
    empty = decode(b"".join(encode(1, (1, 1, 1), [], Columns([], [], [], [], []))))
    assert empty is not None and empty.uids == []
    for damaged in (data[:-1], data[:len(data) // 2], data + b"x", b"garbage" + data,
                    data.replace(b'"count": 3', b'"count": 4'), b"", b"postroom folder"):
        assert decode(damaged) is None


OPERATIONS = st.lists(st.tuples(st.sampled_from(["append", "flag", "seen", "expunge",
                                                 "move", "look"]),
                                st.integers(0, 50)), min_size=1, max_size=30)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(OPERATIONS)
def test_an_index_read_from_a_snapshot_equals_a_fresh_listing(
        tmp_path_factory: pytest.TempPathFactory, operations: list[tuple[str, int]]) -> None:
    """Whatever happened to the folder after a snapshot was written (and whether the
    running service looked at it in between, writing newer ones), a service started
    afterwards gets from the snapshot and the changes since exactly what the store
    holds, without listing the folder."""
    work = tmp_path_factory.mktemp("snap")
    store = _store(work / "home")
    for n in range(6):
        store.messages.append(*BOX, "Inbox", _msg(n))
    running = _snapshotting(work / "index")
    assert running.get(store, *BOX, "Inbox") is not None
    for step, (operation, n) in enumerate(operations):
        live = [m.uid for m in store.messages.list_messages(*BOX, "Inbox")]
        pick = live[n % len(live)] if live else None
        if operation == "append":
            store.messages.append(*BOX, "Inbox", _msg(100 + step))
        elif operation == "flag" and pick is not None:
            store.messages.set_flags(*BOX, "Inbox", [pick], [f"$k{n % 3}"], "add")
        elif operation == "seen" and pick is not None:
            store.messages.set_flags(*BOX, "Inbox", [pick], ["\\Seen"], "add")
        elif operation == "expunge" and pick is not None:
            store.messages.expunge(*BOX, "Inbox", [pick])
        elif operation == "move" and pick is not None:
            store.messages.move(*BOX, "Inbox", [pick], "Archive")
        elif operation == "look":
            running.get(store, *BOX, "Inbox")
            running.close()          # the snapshot it wrote is on disk
    running.close()
    restarted = _snapshotting(work / "index")
    _same_as_the_store(store, restarted)
    assert restarted.full_listings == 0
    assert restarted.snapshots is not None and restarted.snapshots.loads == 1
    store.close()


def test_a_snapshot_older_than_the_expunge_records_still_drops_what_went(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from postroom.store.backends.sqlite import messages as sqlite_messages

    store = _store(tmp_path / "home")
    uids = [store.messages.append(*BOX, "Inbox", _msg(n)).uid for n in range(8)]
    first = _snapshotting(tmp_path / "index")
    first.get(store, *BOX, "Inbox")
    first.close()
    monkeypatch.setattr(sqlite_messages, "TOMBSTONE_WINDOW", 1)
    for uid in uids[:3]:                  # each removal prunes the one before
        store.messages.expunge(*BOX, "Inbox", [uid])
    store.messages.set_flags(*BOX, "Inbox", [uids[5]], ["\\Seen"], "add")
    _same_as_the_store(store, _snapshotting(tmp_path / "index"))
    store.close()


def test_a_snapshot_of_another_uidvalidity_or_a_damaged_one_is_listed_afresh(
        tmp_path: Path) -> None:
    store = _store(tmp_path / "home")
    for n in range(4):
        store.messages.append(*BOX, "Inbox", _msg(n))
    first = _snapshotting(tmp_path / "index")
    index = first.get(store, *BOX, "Inbox")
    first.close()
    assert index is not None
    path = tmp_path / "index" / f"{index.folder_id}.index"
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_bytes(path.read_bytes()[:-3])
    damaged = _snapshotting(tmp_path / "index")
    _same_as_the_store(store, damaged)
    assert damaged.full_listings == 1
    damaged.close()                       # ... and wrote a sound one again
    again = _snapshotting(tmp_path / "index")
    _same_as_the_store(store, again)
    assert again.full_listings == 0
    # The folder deleted and made again: same name, new UIDVALIDITY, maybe the same id.
    store.messages.delete_folder(*BOX, "Archive")
    store.messages.create_folder(*BOX, "Archive")
    store.messages.append(*BOX, "Archive", _msg(9))
    fresh = _snapshotting(tmp_path / "index").get(store, *BOX, "Archive")
    assert fresh is not None and len(fresh.uids) == 1
    store.close()


def test_after_a_restart_select_answers_from_the_snapshot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real service, stopped and started again with mail delivered, flagged and
    expunged while it was down: SELECT and FETCH say what the store holds, and the
    folder was not listed in full."""
    monkeypatch.setattr(index_file, "MIN_MESSAGES", 1)
    home = tmp_path / "data"
    store = prepare_client_service(home, "imap")
    service = ImapService(store, auth_failure_delay=0.0)
    with running(service, store, "imap-first"):
        uids = [store.messages.append(*BOX, "Inbox", message(n)).uid for n in range(1, 7)]
        client = RawImap("127.0.0.1", service.ports()["imap"])
        assert client.login()[-1].startswith(b"l OK")
        assert client.command("SELECT INBOX")[-1].startswith(b"a OK [READ-WRITE]")
        assert client.command("STORE 1:2 +FLAGS.SILENT (\\Seen)") == [b"a OK STORE completed"]
        client.command("LOGOUT")
        client.close()
    store = Store.open(home)
    store.messages.expunge(*BOX, "Inbox", [uids[0], uids[4]])
    store.messages.set_flags(*BOX, "Inbox", [uids[2]], ["\\Seen"], "add")
    new = store.messages.append(*BOX, "Inbox", message(7)).uid

    service = ImapService(store, auth_failure_delay=0.0)
    with running(service, store, "imap-restarted"):
        client = RawImap("127.0.0.1", service.ports()["imap"])
        assert client.login()[-1].startswith(b"l OK")
        lines = client.command("SELECT INBOX")
        assert b"* 5 EXISTS" in lines
        # uids[1] and uids[2] are seen: the first unseen is uids[3], message 3.
        assert any(b"[UNSEEN 3]" in line for line in lines)
        assert any(f"[UIDNEXT {new + 1}]".encode() in line for line in lines)
        assert client.command("FETCH 1:* (UID FLAGS)") == [
            f"* {n} FETCH (UID {uid} FLAGS ({flags}))".encode() for n, (uid, flags) in
            enumerate([(uids[1], "\\Seen"), (uids[2], "\\Seen"), (uids[3], ""),
                       (uids[5], ""), (new, "\\Recent")], 1)] + [b"a OK FETCH completed"]
        assert service.indexes is not None and service.indexes.full_listings == 0
        assert service.indexes.snapshots is not None
        assert service.indexes.snapshots.loads >= 1
        client.command("LOGOUT")
        client.close()


def test_mail_stored_while_no_imap_session_looks_keeps_the_snapshot_current(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Delivery (any process storing mail) brings a big folder's snapshot up to date
    every so many mod-sequences, so a folder filled while no IMAP session looked is
    not listed in full by the first SELECT, and is at most that far behind."""
    monkeypatch.setattr(index_file, "MIN_MESSAGES", 10)
    monkeypatch.setattr(index_file, "EVERY_MODSEQS", 8)
    store = _store(tmp_path / "home")
    for n in range(9):
        store.messages.append(*BOX, "Inbox", _msg(n))
    snapshots = store.messages.snapshots        # type: ignore[attr-defined]
    snapshots.close()
    assert snapshots.writes == 0                # below MIN_MESSAGES: nothing written
    for n in range(9, 40):
        store.messages.append(*BOX, "Inbox", _msg(n))
    snapshots.close()
    assert 1 <= snapshots.writes <= 4
    folder = tmp_path / "home" / "cache" / index_file.FOLDER
    reader = FolderIndexes(snapshots=folder)
    _same_as_the_store(store, reader)
    assert reader.full_listings == 0 and reader.updates <= 1
    store.messages.expunge(*BOX, "Inbox", [3, 4])
    store.messages.set_flags(*BOX, "Inbox", [5], ["\\Seen"], "add")
    _same_as_the_store(store, FolderIndexes(snapshots=folder))
    store.close()


def test_a_bulk_flag_change_is_written_out_though_it_moves_one_mod_sequence(
        tmp_path: Path) -> None:
    """Marking a whole folder read takes one mod-sequence and changes every row: the
    snapshot is written again, so the next start does not read every row back."""
    store = _store(tmp_path / "home")
    uids = [store.messages.append(*BOX, "Inbox", _msg(n)).uid for n in range(12)]
    running = _snapshotting(tmp_path / "index")
    assert running.snapshots is not None
    running.snapshots.every = 5
    running.get(store, *BOX, "Inbox")
    running.close()
    store.messages.set_flags(*BOX, "Inbox", uids, ["\\Seen"], "add")
    running.get(store, *BOX, "Inbox")
    running.close()
    restarted = _snapshotting(tmp_path / "index")
    _same_as_the_store(store, restarted)
    assert (restarted.full_listings, restarted.updates) == (0, 0)
    store.close()
