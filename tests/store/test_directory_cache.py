"""The process-wide directory cache: answers kept until the directory changes."""

from __future__ import annotations

import pytest

from postroom.store import Store
from postroom.store.directory import DirectoryError
from postroom.store.directory_cache import CachedDirectory


def test_answers_are_kept_until_a_change_and_a_refresh(store: Store) -> None:
    store.directory.create_postoffice("acme")
    store.directory.create_domain("acme.test", "acme")
    cached = CachedDirectory(store)
    with pytest.raises(DirectoryError):
        cached.get_domain("other.test")              # "not found" is remembered too
    assert cached.get_domain("acme.test").postoffice == "acme"
    store.directory.create_domain("other.test", "acme")
    with pytest.raises(DirectoryError):
        cached.get_domain("other.test")              # no refresh yet: the old answer
    cached.refresh()
    assert cached.get_domain("other.test").name == "other.test"
    assert cached.resolve("[SMTP:nobody@acme.test]") is None
    store.directory.create_mailbox("acme", "nobody", "Pass-word-12345!x")
    cached.refresh()
    assert cached.resolve("[SMTP:nobody@acme.test]").target == "[SF:acme/nobody]"


def test_a_refresh_without_a_change_keeps_the_answers(store: Store) -> None:
    store.directory.create_postoffice("acme")
    store.directory.create_domain("acme.test", "acme")
    cached = CachedDirectory(store)
    first = cached.get_domain("acme.test")
    cached.refresh()
    assert cached.get_domain("acme.test") is first
    assert cached.list_postoffices()[0].name == "acme"     # not cached: passes through


def test_another_process_s_change_applies_within_the_staleness_bound(store: Store) -> None:
    import time

    from postroom.store.directory_cache import MAX_STALENESS

    store.directory.create_postoffice("acme")
    cached = CachedDirectory(store)
    with pytest.raises(DirectoryError):
        cached.get_domain("late.test")
    other = Store.open(store.home.root)          # "another process": its own commits
    try:
        other.directory.create_domain("late.test", "acme")
    finally:
        other.close()
    cached.refresh()                             # within the bound: may still be old
    time.sleep(MAX_STALENESS + 0.05)
    cached.refresh()
    assert cached.get_domain("late.test").postoffice == "acme"


def test_the_addresses_of_a_mailbox_are_kept_until_a_change(store: Store) -> None:
    store.directory.create_postoffice("acme")
    store.directory.create_domain("acme.test", "acme")
    store.directory.create_mailbox("acme", "bob", "Pass-word-12345!x")
    cached = CachedDirectory(store)
    first = [a.address for a in cached.list_addresses(target="[SF:acme/bob]")]
    assert first == ["[SMTP:bob@acme.test]"]
    cached.list_addresses(target="[SF:acme/bob]").clear()    # a copy: the cache keeps its own
    store.directory.add_address("robert@acme.test", "[SF:acme/bob]")
    cached.refresh()
    assert sorted(a.address for a in cached.list_addresses(target="[SF:acme/bob]")) == [
        "[SMTP:bob@acme.test]", "[SMTP:robert@acme.test]"]
