"""Folders' header blocks on disk (store/header_file.py): after a restart a
header SEARCH answers from the folder's file instead of reading every message file,
with the same UIDs; expunged mail is never matched; a damaged or unwritable file
costs only speed."""

from __future__ import annotations

import imaplib
import logging
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postroom.services.imap.message_cache import HeaderCache, HeaderView, header_of
from postroom.services.imap.service import ImapService
from postroom.store import Store, header_file
from postroom.store.initialise import initialise
from postroom.store.messages import MessageInfo
from tests.servers import PASSWORD, prepare_client_service, running

BOX = ("example", "bob")
FEW = 8
"""Load and save thresholds of the unit tests' caches (40 messages pass them)."""


def _store(home: Path) -> Store:
    initialise(home, hostname="mail.test")
    store = Store.open(home)
    store.directory.create_postoffice("example")
    store.directory.create_mailbox("example", "bob", PASSWORD)
    return store


def _msg(n: int) -> bytes:
    """Every tenth message carries ``X-Tag: needle``; every subject is distinct."""
    tag = f"X-Tag: needle {n}\r\n" if n % 10 == 0 else ""
    return (f"From: a@x.test\r\nSubject: report\r\n number {n}\r\n{tag}\r\n"
            f"body {n} needle\r\n").encode()


def _fill(store: Store, count: int) -> None:
    for n in range(count):
        store.messages.append(*BOX, "Inbox", _msg(n))


def _folder(store: Store) -> tuple[tuple[object, ...], list[int], dict[int, MessageInfo]]:
    infos = store.messages.list_messages(*BOX, "Inbox")
    return (*BOX, "Inbox", 1), [m.uid for m in infos], {m.uid: m for m in infos}


def _cache(store: Store, directory: Path) -> HeaderCache:
    return HeaderCache(store.home.messages, directory=directory, load_min=FEW, save_min=FEW)


def _tagged(store: Store) -> list[int]:
    """The UIDs a header search for ``needle`` in X-Tag must answer, from the store."""
    return [m.uid for m in store.messages.list_messages(*BOX, "Inbox")
            if (m.uid - 1) % 10 == 0]


def _searched_once(tmp_path: Path, messages: int) -> tuple[Store, Path]:
    """A store with ``messages`` in the inbox, searched once by a cache that wrote the
    folder's file to the directory returned."""
    store = _store(tmp_path / "home")
    _fill(store, messages)
    directory = tmp_path / "headers"
    first = _cache(store, directory)
    first.search_uids(*_folder(store), "x-tag", "needle")
    first.close()
    return store, directory

def test_a_new_cache_answers_from_the_folders_file_without_reading_messages(
        tmp_path: Path) -> None:
    store = _store(tmp_path / "home")
    _fill(store, 40)
    folder, uids, info = _folder(store)
    directory = store.home.cache / "imap-headers"
    first = _cache(store, directory)
    assert first.search_uids(folder, uids, info, "x-tag", "needle") == _tagged(store)
    assert first.reads == 40
    first.close()                                 # the write is done in the background
    [written] = directory.iterdir()
    assert written.name == header_file.file_name(folder)
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700

    second = _cache(store, directory)
    # The event loop's quick attempt does not load a file: it hands the search on.
    assert second.search_uids(folder, uids, info, "x-tag", "needle", max_reads=4) is None
    assert second.loads == 0
    assert second.search_uids(folder, uids, info, "x-tag", "needle") == _tagged(store)
    assert (second.reads, second.loads) == (0, 1)
    # Another field, another needle: answered from the same load, as a full search.
    plain = HeaderCache(store.home.messages)
    for name, needle in (("subject", "report number 17"), ("from", "a@x.test"),
                         ("subject", "needle"), ("x-tag", "needle 3")):
        full = plain.search(map(info.__getitem__, uids), name, needle)
        assert full is not None
        assert second.search_uids(folder, uids, info, name, needle) == \
            [m.uid for _n, m in full]
    assert (second.reads, second.loads) == (0, 1)
    second.close()
    assert second.writes == 0                     # nothing was read: nothing to write

    gone = _tagged(store)[1]
    gone_path = info[gone].path
    store.messages.expunge(*BOX, "Inbox", [gone])
    assert not (store.home.messages / gone_path).exists()
    folder, uids, info = _folder(store)
    third = _cache(store, directory)
    answer = third.search_uids(folder, uids, info, "x-tag", "needle")
    assert answer == _tagged(store) and gone not in answer
    assert third.reads == 0
    assert third.reads == 0                       # its record is dead weight, never matched
    store.close()


def test_a_folder_made_again_gets_a_new_file(tmp_path: Path) -> None:
    store, directory = _searched_once(tmp_path, 20)
    folder, uids, info = _folder(store)
    again = (*folder[:3], 2)                      # same name, new UIDVALIDITY
    assert header_file.file_name(again) != header_file.file_name(folder)
    second = _cache(store, directory)
    assert second.search_uids(again, uids, info, "x-tag", "needle") == _tagged(store)
    assert (second.reads, second.loads) == (20, 0)
    store.close()


def _damaged(data: bytes, how: str) -> bytes:
    if how == "truncated":
        return data[:len(data) // 2]
    if how == "one octet short":
        return data[:-1]
    if how == "garbage":
        return os.urandom(len(data))
    if how == "another version":
        return b"PRHC9\n" + data[6:]
    if how == "count past the end":
        return data[:6] + (10 ** 9).to_bytes(4, "little") + data[10:]
    if how == "a length changed":
        at = 6 + 8                                 # the first block's length
        length = int.from_bytes(data[at:at + 4], "little")
        return data[:at] + (length + 1).to_bytes(4, "little") + data[at + 4:]
    return b""


@pytest.mark.parametrize("how", ["truncated", "one octet short", "garbage",
                                 "another version", "count past the end",
                                 "a length changed", "empty"])
def test_a_damaged_file_is_ignored_and_written_anew(tmp_path: Path, how: str) -> None:
    store, directory = _searched_once(tmp_path, 30)
    folder, uids, info = _folder(store)
    file = directory / header_file.file_name(folder)
    file.write_bytes(_damaged(file.read_bytes(), how))

    second = _cache(store, directory)
    assert second.search_uids(folder, uids, info, "x-tag", "needle") == _tagged(store)
    assert (second.reads, second.loads) == (30, 0)
    second.close()
    assert second.writes == 1
    assert header_file.decode(file.read_bytes(), {m.path for m in info.values()}) is not None
    third = _cache(store, directory)
    assert third.search_uids(folder, uids, info, "x-tag", "needle") == _tagged(store)
    assert (third.reads, third.loads) == (0, 1)
    store.close()


def test_a_file_that_cannot_be_written_costs_only_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = _store(tmp_path / "home")
    _fill(store, 20)
    folder, uids, info = _folder(store)
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache folder would be")
    cache = _cache(store, blocked / "imap-headers")
    with caplog.at_level(logging.WARNING):
        assert cache.search_uids(folder, uids, info, "x-tag", "needle") == _tagged(store)
        cache.close()
    assert cache.writes == 0
    assert any("could not write the IMAP header cache file" in r.getMessage()
               for r in caplog.records)
    assert blocked.read_text().startswith("a file")
    # Searched again: answered from memory all the same.
    assert cache.search_uids(folder, uids, info, "x-tag", "needle") == _tagged(store)
    store.close()


_VALUES = st.text(st.sampled_from("aAbBzZ 09=?_-:\r\u00e9\u00fc\u4e2d"), max_size=12)
_FIELDS = st.lists(st.tuples(st.sampled_from(["Subject", "From", "X-Tag"]), _VALUES,
                             st.booleans()), min_size=0, max_size=4)


def _header(fields: list[tuple[str, str, bool]]) -> bytes:
    lines = []
    for name, value, folded in fields:
        text = f"=?utf-8?q?{value.encode().hex()}?=" if value.startswith("=") else value
        lines.append(f"{name}: {text}" + ("\r\n folded" if folded else ""))
    return header_of(("\r\n".join(lines) + "\r\n\r\nbody\r\n").encode())


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_FIELDS, min_size=1, max_size=12), _VALUES)
def test_the_quick_test_over_a_loaded_file_rules_out_only_what_each_block_would(
        blocks: list[list[tuple[str, str, bool]]], needle: str) -> None:
    """A loaded file's quick test of all its blocks at once rules out no block that
    :meth:`HeaderView.may_contain` would keep, and cuts every block out intact."""
    raws = [_header(fields) for fields in blocks]
    paths = [f"p/{n}.eml" for n in range(len(raws))]
    needle = needle.casefold()
    for chunk in (1, 3, header_file.CHUNK):         # blocks per C-level pass
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(header_file, "CHUNK", chunk)
            data = b"".join(header_file.encode(paths, list(raws),
                                               *header_file.quick_facts(raws)))
            loaded = header_file.decode(data, set(paths))
            assert loaded is not None
            maybe = loaded.maybe(needle)
            # Written again from what was loaded (as after a restart): the same file.
            facts = [loaded.facts(number) for number in range(len(raws))]
            assert b"".join(header_file.encode(
                paths, [block for block, _flat, _unsure in facts],
                [flat for _block, flat, _unsure in facts],
                {number for number, (*_, unsure) in enumerate(facts) if unsure})) == data
        for number, (path, raw) in enumerate(zip(paths, raws, strict=True)):
            assert loaded.index[path] == number and loaded.block(number) == raw
            if HeaderView(raw).may_contain(needle):
                assert number in maybe, (raw, needle, chunk)


def test_after_a_restart_a_header_search_reads_no_message_file(tmp_path: Path) -> None:
    """The real service and imaplib: a header SEARCH on a folder of 300 messages (the
    files of those stored before the folder was big enough for the journal are read),
    the service stopped, mail expunged and delivered while it was down, the service
    started again: the same search answers what the store holds, and reads no file
    (the new message's block is in the journal)."""
    home = tmp_path / "data"
    store = prepare_client_service(home, "imap")
    _fill(store, 300)

    def search(port: int) -> list[int]:
        client = imaplib.IMAP4("127.0.0.1", port)
        assert client.login("bob@example", PASSWORD)[0] == "OK"
        assert client.select("INBOX")[0] == "OK"
        typ, data = client.uid("SEARCH", "HEADER", "X-Tag", "needle")
        assert typ == "OK"
        client.logout()
        return [int(uid) for uid in data[0].split()]

    service = ImapService(store, auth_failure_delay=0.0)
    with running(service, store, "imap-headers-first"):
        assert search(service.ports()["imap"]) == _tagged(store)
        assert service.headers is not None
        assert service.headers.reads == header_file.JOURNAL_MIN - 1
    # Stopping waited for the folder's file.
    assert len(list((home / "cache" / "imap-headers").iterdir())) == 1

    store = Store.open(home)
    tagged = _tagged(store)
    store.messages.expunge(*BOX, "Inbox", [tagged[2]])
    new = store.messages.append(*BOX, "Inbox", b"X-Tag: a needle\r\n\r\nnew\r\n").uid
    service = ImapService(store, auth_failure_delay=0.0)
    with running(service, store, "imap-headers-restarted"):
        answer = search(service.ports()["imap"])
        assert answer == [*tagged[:2], *tagged[3:], new]
        assert service.headers is not None
        assert (service.headers.loads, service.headers.reads) == (1, 0)


def test_a_file_of_mostly_expunged_mail_is_written_anew(tmp_path: Path) -> None:
    store, directory = _searched_once(tmp_path, 40)
    folder, uids, info = _folder(store)
    store.messages.expunge(*BOX, "Inbox", uids[:20])
    folder, uids, info = _folder(store)
    second = _cache(store, directory)
    assert second.search_uids(folder, uids, info, "x-tag", "needle") == _tagged(store)
    second.close()
    assert (second.reads, second.loads, second.writes) == (0, 1, 1)
    data = (directory / header_file.file_name(folder)).read_bytes()
    loaded = header_file.decode(data, set())
    assert loaded is not None and loaded.records == 20


def test_a_cache_too_small_for_a_file_reads_the_messages(tmp_path: Path) -> None:
    store, directory = _searched_once(tmp_path, 40)
    folder, uids, info = _folder(store)
    small = HeaderCache(store.home.messages, 4000, directory, load_min=FEW, save_min=FEW)
    assert small.search_uids(folder, uids, info, "x-tag", "needle") == _tagged(store)
    assert (small.reads, small.loads) == (40, 0)
    store.close()


def test_loaded_files_beyond_half_the_budget_make_way_and_load_again(tmp_path: Path) -> None:
    """Two folders' files that together take more than half of the cache: loading the
    second drops the first, which a later search loads again (no message read)."""
    store = _store(tmp_path / "home")
    store.messages.create_folder(*BOX, "Archive")
    for n in range(40):
        store.messages.append(*BOX, "Inbox", _msg(n))
        store.messages.append(*BOX, "Archive", _msg(n))
    folders = []
    for name in ("Inbox", "Archive"):
        infos = store.messages.list_messages(*BOX, name)
        folders.append(((*BOX, name, 1), [m.uid for m in infos], {m.uid: m for m in infos}))
    directory = tmp_path / "headers"
    first = _cache(store, directory)
    for folder in folders:
        first.search_uids(*folder, "x-tag", "needle")
    first.close()
    costs = []
    for folder, _uids, info in folders:
        loaded = header_file.decode(
            (directory / header_file.file_name(folder)).read_bytes(),
            {m.path for m in info.values()})
        assert loaded is not None
        costs.append(loaded.cost)
    cache = HeaderCache(store.home.messages, 2 * max(costs) + 2, directory,
                        load_min=FEW, save_min=FEW)
    for folder in folders:
        assert cache.search_uids(*folder, "x-tag", "needle") == [1, 11, 21, 31]
    inbox = folders[0]
    # The Inbox's file made way: of its messages only the views of the matches remain.
    assert cache.loads == 2
    assert [m.uid for m in inbox[2].values() if cache.has(m.path)] == [1, 11, 21, 31]
    assert cache.search_uids(*inbox, "subject", "report number 7") == [8]
    assert (cache.loads, cache.reads) == (3, 0)
    store.close()


def test_a_file_written_again_keeps_what_was_loaded_and_adds_what_was_read(
        tmp_path: Path) -> None:
    """Loaded records and blocks read since go into the next write, with what the quick
    test needs (an encoded word's block is still checked in full)."""
    store = _store(tmp_path / "home")
    _fill(store, 40)
    encoded = store.messages.append(
        *BOX, "Inbox", b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nhi\r\n").uid
    folder, uids, info = _folder(store)
    directory = tmp_path / "headers"
    first = _cache(store, directory)
    first.search_uids(folder, uids, info, "x-tag", "needle")
    first.close()
    for n in range(41, 61):
        store.messages.append(*BOX, "Inbox", _msg(n))
    folder, uids, info = _folder(store)
    tagged = [1, 11, 21, 31, encoded + 10, encoded + 20]      # messages 0, 10 ... 60
    second = _cache(store, directory)
    assert second.search_uids(folder, uids, info, "x-tag", "needle") == tagged
    second.close()
    assert (second.loads, second.reads, second.writes) == (1, 20, 1)
    third = _cache(store, directory)
    assert third.search_uids(folder, uids, info, "subject", "grüße".casefold()) == [encoded]
    assert third.search_uids(folder, uids, info, "x-tag", "needle") == tagged
    assert (third.loads, third.reads) == (1, 0)
    store.close()


def _as_imap_sees_it(store: Store) -> tuple[tuple[object, ...], list[int],
                                            dict[int, MessageInfo]]:
    """:func:`_folder` with the folder's real UIDVALIDITY, as an IMAP session keys it."""
    _, uids, info = _folder(store)
    inbox = store.messages.list_folders(*BOX, only="Inbox")[0]
    return (*BOX, "Inbox", inbox.uidvalidity), uids, info


def test_mail_stored_in_a_big_folder_is_searched_without_reading_its_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Delivery journals the header blocks of a big folder's new messages: the first
    search of the folder reads no message file, joins the journal to the folder's
    file, and the next process finds them there."""
    monkeypatch.setattr(header_file, "JOURNAL_MIN", 1)
    store = _store(tmp_path / "home")
    _fill(store, 40)
    store.messages.headers.close()             # type: ignore[attr-defined]
    directory = store.home.cache / "imap-headers"
    assert [p.suffix for p in directory.iterdir()] == [".journal"]
    folder, uids, info = _as_imap_sees_it(store)
    first = _cache(store, directory)
    assert first.search_uids(folder, uids, info, "x-tag", "needle") == _tagged(store)
    assert (first.reads, first.loads) == (0, 1)
    first.close()
    assert [p.suffix for p in directory.iterdir()] == [".headers"]
    second = _cache(store, directory)
    assert second.search_uids(folder, uids, info, "subject", "number 7") == [uids[7]]
    assert (second.reads, second.loads) == (0, 1)
    store.close()


def test_a_torn_journal_loses_only_its_last_frame(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(header_file, "JOURNAL_MIN", 1)
    store = _store(tmp_path / "home")
    _fill(store, 20)
    store.messages.headers.close()             # type: ignore[attr-defined]
    _fill(store, 20)                           # a second frame, at least
    store.messages.headers.close()             # type: ignore[attr-defined]
    directory = store.home.cache / "imap-headers"
    journal = next(directory.iterdir())
    data = journal.read_bytes()
    journal.write_bytes(data[:-3] + b"garbage")
    folder, uids, info = _as_imap_sees_it(store)
    cache = _cache(store, directory)
    assert cache.search_uids(folder, uids, info, "x-tag", "needle") == _tagged(store)
    assert 20 <= 40 - cache.reads < 40        # the first frame was read, the torn one not
    store.close()


def test_a_small_folder_is_not_journaled(tmp_path: Path) -> None:
    store = _store(tmp_path / "home")
    _fill(store, 30)
    store.messages.headers.close()             # type: ignore[attr-defined]
    assert not (store.home.cache / "imap-headers").exists()
    store.close()
