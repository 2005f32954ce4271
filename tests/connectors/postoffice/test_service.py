"""The post office connector running as a service, as `postroom serve` runs it."""

from __future__ import annotations

import asyncio
import time

import pytest

from postroom.connectors.postoffice.connector import PostOfficeService
from postroom.store import Store
from tests.connectors.postoffice.sf_setup import MESSAGE, folder, submit


@pytest.mark.asyncio
async def test_service_delivers_an_enqueued_entry_within_a_second(world: Store) -> None:
    world.settings.set("postoffice_connector.logging.debug_enabled", True)
    service = PostOfficeService(world, poll_seconds=30.0)   # no help from polling
    await service.start()
    try:
        await asyncio.sleep(0.2)
        started = time.monotonic()
        entry = submit(world, ["[SF:example/bob]", "[SF:acme/carol]"])
        while time.monotonic() - started < 1.0:
            if folder(world, "example", "bob") and folder(world, "acme", "carol") \
                    and not world.queue.list("SF.outgoing"):
                break
            await asyncio.sleep(0.02)
        assert folder(world, "example", "bob") == [MESSAGE]
        assert folder(world, "acme", "carol") == [MESSAGE]
        assert world.queue.list("SF.outgoing") == []
    finally:
        await service.stop()
    logs = world.home.logs / "SF"
    activity = "".join(p.read_text() for p in logs.glob("SF-Activity-*.log"))
    assert f"{entry.tracking_id}\t" in activity and "[SF:example/bob]" in activity
    assert any(logs.glob("SF-Debug-*.log"))
