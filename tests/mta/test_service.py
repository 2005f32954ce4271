"""The ``mta`` service for real: wakes at once on enqueue, follows settings, stops cleanly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from postroom.mta.service import MtaService
from postroom.store import Store
from tests.mta.mta_setup import enqueue, outgoing, populate


@pytest.fixture
def service(store: Store) -> Iterator[MtaService]:
    populate(store)
    svc = MtaService(store, poll_seconds=30)      # a slow fallback poll: wake-up must do it
    asyncio.run(svc.start())
    yield svc
    asyncio.run(svc.stop())


def wait_for_sf(store: Store, count: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if len(outgoing(store, "SF.outgoing")) >= count:
            return time.monotonic() - started
        time.sleep(0.01)
    raise AssertionError(f"{count} SF.outgoing entries not there after {timeout} s")


def test_wakes_within_a_second_of_an_enqueue(store: Store, service: MtaService) -> None:
    time.sleep(0.3)                     # idle: the dispatcher is asleep
    enqueue(store, ["[SMTP:bob@example.com]"])
    assert wait_for_sf(store, 1, 1.0) < 1.0
    enqueue(store, ["[SMTP:alice@example.com]"])
    assert wait_for_sf(store, 2, 1.0) < 1.0
    assert store.queue.list("MTA.inbound") == []


def test_many_messages_and_settings_changes(store: Store, service: MtaService) -> None:
    store.settings.set("mta.general.max_threads", 2)
    store.settings.set("mta.logging.debug_enabled", True)
    service.settings_changed()
    for n in range(40):
        enqueue(store, [f"[SMTP:u{n}@remote.test]", "[SMTP:staff@example.com]"])
    wait_for_sf(store, 40, 10)
    time.sleep(0.2)
    assert store.queue.list("MTA.inbound") == []
    assert len(outgoing(store, "SMTP.outgoing")) == 40
    debug = "".join(p.read_text() for p in (store.home.logs / "MTA").glob("MTA-Debug-*.log"))
    assert "routed" in debug
