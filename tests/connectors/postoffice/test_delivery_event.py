"""Mailbox delivery events (manual 5.5.6): a real program, never blocking delivery."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from postroom.connectors.postoffice.delivery import Delivery
from postroom.connectors.postoffice.delivery_event import DeliveryEvents
from postroom.store import Store
from tests.connectors.postoffice.sf_setup import MESSAGE, folder, handle_next, submit


def script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(0o755)
    return path


def wait_for(check, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def events() -> Iterator[DeliveryEvents]:
    runner = DeliveryEvents(timeout=1.0)
    yield runner
    runner.close()


def with_event(world: Store, program: Path) -> None:
    world.directory.update_mailbox("example", "bob", options={
        "delivery_event.enabled": True, "delivery_event.program": str(program)})


def test_program_gets_message_file_connector_type_and_envelope(
        world: Store, events: DeliveryEvents, tmp_path: Path) -> None:
    out = tmp_path / "args.txt"
    program = script(tmp_path, "event.sh",
                     f'{{ echo "$1"; echo "$2"; cat "$1"; echo "--"; '
                     f'echo "$POSTROOM_SENDER"; echo "$POSTROOM_MAILBOX"; '
                     f'echo "$POSTROOM_FOLDER"; echo "$POSTROOM_TRACKING_ID"; }} > {out}.tmp\n'
                     f'mv {out}.tmp {out}\n')
    with_event(world, program)
    entry = submit(world, ["[SF:example/bob]"])
    handle_next(world, Delivery(world, events=events))
    assert wait_for(out.exists)
    lines = out.read_bytes().split(b"\n")
    message_path = Path(lines[0].decode())
    assert message_path.is_absolute() and message_path.parent == world.home.tmp
    assert lines[1] == b"SMTP"
    assert MESSAGE.replace(b"\r\n", b"\n").strip() in out.read_bytes().replace(b"\r\n", b"\n")
    tail = out.read_text().split("--\n")[1].splitlines()
    assert tail == ["zed@remote.test", "bob@example", "Inbox", entry.tracking_id]
    assert wait_for(lambda: not message_path.exists())     # private copy removed


def test_failing_and_slow_programs_never_block_delivery(
        world: Store, events: DeliveryEvents, tmp_path: Path) -> None:
    marker = tmp_path / "slow-started"
    slow = script(tmp_path, "slow.sh", f"touch {marker}\nsleep 60\n")
    with_event(world, slow)
    delivery = Delivery(world, events=events)
    started = time.monotonic()
    submit(world, ["[SF:example/bob]"])
    [outcome] = handle_next(world, delivery)
    assert outcome.event == "delivered"
    assert time.monotonic() - started < 1.0
    assert wait_for(marker.exists)
    # killed after the timeout (1 s here, 30 s by default): its copy is removed
    assert wait_for(lambda: not any(p.name.startswith("sf-event")
                                    for p in world.home.tmp.iterdir()), timeout=5)
    failing = script(tmp_path, "fail.sh", "echo oops >&2\nexit 3\n")
    with_event(world, failing)
    submit(world, ["[SF:example/bob]"])
    assert handle_next(world, delivery)[0].event == "delivered"
    with_event(world, tmp_path / "does-not-exist")
    submit(world, ["[SF:example/bob]"])
    assert handle_next(world, delivery)[0].event == "delivered"
    assert len(folder(world, "example", "bob")) == 3


def test_slow_program_is_killed_with_its_children(world: Store, events: DeliveryEvents,
                                                  tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    program = script(tmp_path, "spawn.sh", f"sleep 60 &\necho $! > {pidfile}\nwait\n")
    with_event(world, program)
    submit(world, ["[SF:example/bob]"])
    handle_next(world, Delivery(world, events=events))
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() != "")
    child = int(pidfile.read_text())

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        # a zombie until reaped by init counts as gone
        stat = Path(f"/proc/{child}/stat")
        return stat.exists() and stat.read_text().split()[2] == "Z"
    assert wait_for(gone, timeout=5)


def test_bulk_messages_skip_the_event_unless_configured(
        world: Store, events: DeliveryEvents, tmp_path: Path) -> None:
    out = tmp_path / "ran"
    with_event(world, script(tmp_path, "event.sh", f"echo ran >> {out}\n"))
    delivery = Delivery(world, events=events)
    submit(world, ["[SF:example/bob]"], body=b"Precedence: bulk\r\n" + MESSAGE)
    handle_next(world, delivery)
    submit(world, ["[SF:example/bob]"], sender="")
    handle_next(world, delivery)
    time.sleep(0.3)
    assert not out.exists()
    world.settings.set("postoffice_connector.delivery_event_on_bulk", True)
    submit(world, ["[SF:example/bob]"], sender="")
    handle_next(world, delivery)
    assert wait_for(out.exists)
