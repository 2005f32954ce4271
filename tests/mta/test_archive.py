"""Archive copies (manual 6.1.3): a dated folder of the archive mailbox, exactly once."""

from __future__ import annotations

import time

import pytest

from postroom.mta.agent import MtaAgent
from postroom.mta.archive import archive_copy, dated_folder
from postroom.store import Store
from tests.mta.mta_setup import MESSAGE, PASSWORD, enqueue, outgoing, populate, run_agent


@pytest.fixture
def world(store: Store) -> Store:
    populate(store)
    store.directory.create_mailbox("example", "archive", PASSWORD, quota_bytes=1)
    for key, value in (("enabled", True), ("postoffice", "example"), ("mailbox", "archive"),
                       ("folder", "Records")):
        store.settings.set(f"mta.archiving.{key}", value)
    return store


def archived(store: Store) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for folder in store.messages.list_folders("example", "archive"):
        for info in store.messages.list_messages("example", "archive", folder.name):
            found.setdefault(folder.name, []).append(
                store.messages.read("example", "archive", folder.name, info.uid))
    return found


def test_picked_up_messages_are_archived_by_date_over_quota(world: Store) -> None:
    enqueue(world, ["[SMTP:bob@example.com]"])
    enqueue(world, ["[SMTP:nobody@example.com]"])        # bounced, but picked up: archived
    run_agent(world)
    today = time.strftime("%Y-%m-%d")
    assert archived(world) == {f"Records/{today}": [MESSAGE, MESSAGE]}
    assert len(outgoing(world, "SF.outgoing")) == 1
    world.tracking.flush()
    assert any(e.event == "archived" for e in world.tracking.find())


def test_a_retried_entry_is_archived_once(world: Store) -> None:
    entry = enqueue(world, ["[SMTP:bob@example.com]"])
    first = archive_copy(world, entry)
    second = archive_copy(world, entry)
    assert not first.duplicate and second.duplicate
    assert sum(len(v) for v in archived(world).values()) == 1


def test_delivery_direction_archives_only_routed_messages(world: Store) -> None:
    world.settings.set("mta.archiving.direction", "delivery")
    enqueue(world, ["[SMTP:nobody@example.com]"])
    run_agent(world)
    assert archived(world) == {}
    enqueue(world, ["[SMTP:bob@example.com]"])
    run_agent(world)
    assert [len(v) for v in archived(world).values()] == [1]


def test_misconfigured_archive_does_not_stop_mail(world: Store) -> None:
    world.settings.set("mta.archiving.mailbox", "no-such-box")
    enqueue(world, ["[SMTP:bob@example.com]"])
    run_agent(world, MtaAgent(world, worker="test"))
    assert len(outgoing(world, "SF.outgoing")) == 1


def test_disabled_archiving_keeps_nothing(world: Store) -> None:
    world.settings.set("mta.archiving.enabled", False)
    enqueue(world, ["[SMTP:bob@example.com]"])
    run_agent(world)
    assert archived(world) == {}


def test_dated_folder_names() -> None:
    when = time.mktime((2026, 1, 25, 12, 0, 0, 0, 0, -1))
    assert dated_folder("Archive", when) == "Archive/2026-01-25"
    assert dated_folder("/Mail/Old/", when) == "Mail/Old/2026-01-25"
    assert dated_folder("", when) == "Archive/2026-01-25"
