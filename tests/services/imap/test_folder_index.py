"""The shared folder index (services/imap/folder_index.py): after appends, flag changes,
expunges and moves, the incrementally updated index equals a fresh listing of the store,
and the header cache answers header searches like the full message view."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postroom.services.imap.message import MessageView
from postroom.services.imap.message_cache import HeaderCache
from postroom.services.imap.selected import SelectedFolder
from postroom.store import Store
from postroom.store.backends.sqlite.folder_index import FolderIndexes
from postroom.store.initialise import initialise


def _store(tmp_path: Path) -> Store:
    initialise(tmp_path / "home", hostname="mail.test")
    store = Store.open(tmp_path / "home")
    store.directory.create_postoffice("example")
    store.directory.create_mailbox("example", "bob", "Secret-Password-1!")
    return store


def _msg(n: int) -> bytes:
    return f"From: a@x.test\r\nSubject: message {n}\r\n\r\nbody {n}\r\n".encode()


def test_incremental_index_matches_a_fresh_listing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    box = ("example", "bob")
    indexes = FolderIndexes()

    def check() -> None:
        index = indexes.get(store, *box, "Inbox")
        assert index is not None
        listed = store.messages.list_messages(*box, "Inbox")
        assert index.uids == [m.uid for m in listed]
        assert index.info == {m.uid: m for m in listed}
        inbox = next(f for f in store.messages.list_folders(*box) if f.name == "Inbox")
        assert index.state == (inbox.uidvalidity, inbox.uidnext, inbox.highestmodseq)

    check()
    uids = [store.messages.append(*box, "Inbox", _msg(n)).uid for n in range(10)]
    check()
    store.messages.set_flags(*box, "Inbox", uids[2:5], ["\\Seen"], "add")
    check()
    store.messages.expunge(*box, "Inbox", [uids[3], uids[7]])
    check()
    store.messages.append(*box, "Inbox", _msg(11))
    store.messages.set_flags(*box, "Inbox", [uids[0]], ["\\Flagged"], "add")
    store.messages.expunge(*box, "Inbox", [uids[9]])
    check()
    store.messages.create_folder(*box, "Archive")
    store.messages.move(*box, "Inbox", [uids[1]], "Archive")
    check()
    assert indexes.full_listings == 1
    first = indexes.get(store, *box, "Inbox")
    assert indexes.get(store, *box, "Inbox") is first     # same state: same snapshot
    assert indexes.get(store, *box, "No such folder") is None
    store.close()


def test_index_older_than_the_expunge_records_still_drops_what_went(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Updates read the store's records of removed UIDs; when those were pruned past the
    index's state (the floor rose), the update counts the folder instead."""
    from postroom.store.backends.sqlite import messages as sqlite_messages

    store = _store(tmp_path)
    box = ("example", "bob")
    indexes = FolderIndexes()
    uids = [store.messages.append(*box, "Inbox", _msg(n)).uid for n in range(8)]
    before = indexes.get(store, *box, "Inbox")
    assert before is not None
    monkeypatch.setattr(sqlite_messages, "TOMBSTONE_WINDOW", 1)
    for uid in uids[:4]:                  # each removal prunes the one before
        store.messages.expunge(*box, "Inbox", [uid])
    after = indexes.get(store, *box, "Inbox")
    assert after is not None and after.uids == uids[4:]
    assert set(after.info) == set(uids[4:]) and indexes.full_listings == 1
    store.close()


def test_header_cache_answers_like_the_message_view(tmp_path: Path) -> None:
    messages = tmp_path / "m"
    messages.mkdir()
    data = (b"From: =?utf-8?q?J=C3=BCrgen?= <j@x.test>\r\nSubject: long\r\n folded subject\r\n"
            b"X-Tag: Needle\r\n\r\nbody with Needle\r\n")
    (messages / "a.eml").write_bytes(data)
    header = HeaderCache(messages).get("a.eml")
    view = MessageView.parse(data)
    for name in ("from", "Subject", "x-tag", "to"):
        assert header.header_values(name) == view.header_values(name)
        assert header.has_header(name) == view.has_header(name)
    assert header.may_contain("jürgen")            # encoded words: always checked in full
    (messages / "b.eml").write_bytes(b"Subject: plain\r\n\r\nneedle\r\n")
    plain = HeaderCache(messages).get("b.eml")
    assert not plain.may_contain("needle")         # only in the body
    assert plain.may_contain("plain")


OPERATIONS = st.lists(st.tuples(st.sampled_from(["append", "flag", "expunge", "move",
                                                 "sync", "sync-held"]),
                                st.integers(0, 50)), min_size=1, max_size=40)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(OPERATIONS)
def test_a_view_synchronised_from_the_log_matches_one_compared_in_full(
        tmp_path_factory: pytest.TempPathFactory, operations: list[tuple[str, int]]) -> None:
    """Two views of one folder, one told through the index's log of touched UIDs, the
    other by comparing every message: after any mix of appends, flag changes, expunges,
    moves and held-back expunges they say the same and end up the same."""
    store = _store(tmp_path_factory.mktemp("log"))
    box = ("example", "bob")
    store.messages.create_folder(*box, "Archive")
    indexes = FolderIndexes()
    for n in range(5):
        store.messages.append(*box, "Inbox", _msg(n))
    start = indexes.get(store, *box, "Inbox")
    assert start is not None
    views = []
    for _ in range(2):
        view = SelectedFolder("Inbox", False, *start.state)
        view.load(start)
        views.append(view)
    logged, full = views
    for step, (operation, n) in enumerate(operations):
        live = [m.uid for m in store.messages.list_messages(*box, "Inbox")]
        pick = live[n % len(live)] if live else None
        if operation == "append":
            store.messages.append(*box, "Inbox", _msg(100 + step))
        elif operation == "flag" and pick is not None:
            store.messages.set_flags(*box, "Inbox", [pick], [f"$k{n % 3}"], "add")
        elif operation == "expunge" and pick is not None:
            store.messages.expunge(*box, "Inbox", [pick])
        elif operation == "move" and pick is not None:
            store.messages.move(*box, "Inbox", [pick], "Archive")
        elif operation.startswith("sync"):
            index = indexes.get(store, *box, "Inbox")
            assert index is not None
            expunge = operation == "sync"
            told = logged.sync(index.info, expunge=expunge, condstore=True, state=index.state,
                               touched=index.touched_since(logged.highestmodseq))
            assert told == full.sync(index.info, expunge=expunge, condstore=True,
                                     state=index.state)
            assert (logged.uids, logged.info) == (full.uids, full.info)
    store.close()


SEARCH_STEPS = st.lists(st.tuples(st.sampled_from(["append", "expunge", "search"]),
                                  st.integers(0, 30), st.sampled_from(["alpha", "beta", "a"])),
                        min_size=1, max_size=30)


class _CountingHeaders(HeaderCache):
    """Records the messages each search looks at."""

    looked: list[int]

    def search(self, messages, name, needle, max_reads=None):  # type: ignore[no-untyped-def]
        messages = list(messages)
        self.looked.extend(m.uid for m in messages)
        return super().search(messages, name, needle, max_reads)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(SEARCH_STEPS)
def test_remembered_header_searches_answer_as_a_full_search(
        tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, int, str]]) -> None:
    """A header search kept per folder (the UIDs looked at, those that matched) gives,
    after any mix of new mail and expunges, what a search of every message gives; and
    asked again with nothing new it looks at no message."""
    store = _store(tmp_path_factory.mktemp("search"))
    box = ("example", "bob")
    headers = _CountingHeaders(store.home.messages)
    folder = ("example", "bob", "Inbox", 1)
    for n in range(3):
        store.messages.append(*box, "Inbox", f"Subject: alpha {n}\r\n\r\nx\r\n".encode())
    for step, n, needle in steps:
        if step == "append":
            subject = ("alpha", "beta", "gamma")[n % 3]
            store.messages.append(*box, "Inbox", f"Subject: {subject} {n}\r\n\r\nx\r\n".encode())
        elif step == "expunge":
            present = [m.uid for m in store.messages.list_messages(*box, "Inbox")]
            if present:
                store.messages.expunge(*box, "Inbox", [present[n % len(present)]])
        infos = store.messages.list_messages(*box, "Inbox")
        uids, info = [m.uid for m in infos], {m.uid: m for m in infos}
        full = HeaderCache(store.home.messages).search(infos, "subject", needle)
        assert full is not None
        headers.looked = []
        kept = headers.search_uids(folder, uids, info, "subject", needle)
        assert kept == [message.uid for _position, message in full]
        assert set(headers.looked) <= set(uids)
        headers.looked = []
        assert headers.search_uids(folder, uids, info, "subject", needle) == kept
        assert headers.looked == []
    store.close()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 60), unique=True), st.integers(0, 70),
       st.lists(st.tuples(st.booleans(), st.integers(1, 90))))
def test_recent_kept_as_a_range_answers_as_a_set(
        uids: list[int], mark: int, changes: list[tuple[bool, int]]) -> None:
    """A session's \\Recent messages (the view's UIDs above the recent mark at SELECT,
    then new ones added and expunged ones dropped) as a range and two small sets say
    what the plain set of them says."""
    from postroom.services.imap.selected import Recent

    uids.sort()
    recent, model = Recent(uids, mark), {u for u in uids if u > mark}
    top = uids[-1] if uids else 0
    for add, uid in changes:
        if add and uid > top:           # new mail comes above every UID of the view
            recent.add(uid)
            model.add(uid)
        elif not add and (uid in uids or uid > top):
            recent.discard(uid)
            model.discard(uid)
        assert len(recent) == len(model)
        assert all((u in recent) == (u in model) for u in [*uids, *range(top + 1, 91)])
