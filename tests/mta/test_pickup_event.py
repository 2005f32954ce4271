"""The pickup event with real programs (manual 6.1.2: ``program messagefilename
connectortype``): arguments, failures, timeouts, and a program that edits the message."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from postroom.mta.pickup_event import run_pickup_event
from postroom.mta.service import MtaService
from postroom.store import Store
from tests.mta.mta_setup import MESSAGE, enqueue, outgoing, populate, run_agent


@pytest.fixture
def world(store: Store) -> Store:
    return populate(store)


def script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(0o755)
    return path


def enable(store: Store, program: Path | str) -> None:
    store.settings.set("mta.general.pickup_event_enabled", True)
    store.settings.set("mta.general.pickup_event_program", str(program))


def test_program_gets_the_message_file_and_connector_type(world: Store, tmp_path: Path) -> None:
    record = tmp_path / "args.txt"
    copy = tmp_path / "seen.eml"
    enable(world, script(tmp_path, "event.sh", f'echo "$1 $2" >> {record}\ncp "$1" {copy}\n'))
    enqueue(world, ["[SMTP:bob@example.com]"])
    enqueue(world, ["[SMTP:carol@example.com]"], connector="LS")
    run_agent(world)
    lines = record.read_text().splitlines()
    assert [line.split()[1] for line in lines] == ["SMTP", "LS"]
    message_file = Path(lines[0].split()[0])
    assert message_file.parent == world.home.tmp and message_file.suffix == ".eml"
    assert not message_file.exists()                       # removed afterwards
    assert copy.read_bytes() == MESSAGE
    assert len(outgoing(world, "SF.outgoing")) == 2
    assert list(world.home.tmp.glob("mta-*")) == []


def test_disabled_event_does_not_run(world: Store, tmp_path: Path) -> None:
    record = tmp_path / "args.txt"
    world.settings.set("mta.general.pickup_event_program",
                       str(script(tmp_path, "e.sh", f"echo x > {record}\n")))
    enqueue(world, ["[SMTP:bob@example.com]"])
    run_agent(world)
    assert not record.exists()
    assert len(outgoing(world, "SF.outgoing")) == 1


@pytest.mark.parametrize("program", ["fail", "missing", "not-executable"])
def test_failing_or_missing_program_does_not_stop_the_message(world: Store, tmp_path: Path,
                                                               program: str) -> None:
    path = {"fail": script(tmp_path, "fail.sh", "echo broken >&2\nexit 3\n"),
            "missing": tmp_path / "no-such-program",
            "not-executable": tmp_path / "plain.txt"}[program]
    if program == "not-executable":
        path.write_text("hello")
    enable(world, path)
    enqueue(world, ["[SMTP:bob@example.com]"])
    run_agent(world)
    (sf,) = outgoing(world, "SF.outgoing")
    assert world.queue.read_body(sf) == MESSAGE


def test_result_of_a_failing_program(tmp_path: Path) -> None:
    message = tmp_path / "m.eml"
    message.write_bytes(b"x")
    result = run_pickup_event(str(script(tmp_path, "f.sh", "echo oops\nexit 2\n")), message,
                              "SF")
    assert not result.ok and result.returncode == 2 and result.output == "oops"


def test_slow_program_is_killed_with_its_children(tmp_path: Path) -> None:
    message = tmp_path / "m.eml"
    message.write_bytes(b"x")
    pids = tmp_path / "pids"
    slow = script(tmp_path, "slow.sh", f"sleep 60 &\necho $! > {pids}\nwait\n")
    started = time.monotonic()
    result = run_pickup_event(str(slow), message, "SMTP", timeout=1)
    assert time.monotonic() - started < 10
    assert result.timed_out and not result.ok
    child = int(pids.read_text())
    wait_for(lambda: not running(child), 5)


def running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan may wait for init to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_program_that_edits_the_message_changes_what_is_delivered(world: Store,
                                                                 tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    enable(world, script(tmp_path, "footer.sh",
                         f'echo run >> {calls}\nprintf "Footer added.\\r\\n" >> "$1"\n'))
    entry = enqueue(world, ["[SMTP:bob@example.com]"])
    run_agent(world)                   # the changed copy goes back into MTA.inbound ...
    (again,) = world.queue.list("MTA.inbound")
    assert again.tracking_id == f"{entry.tracking_id}-e"
    run_agent(world)                   # ... and is routed without running the event twice
    (sf,) = outgoing(world, "SF.outgoing")
    assert world.queue.read_body(sf) == MESSAGE + b"Footer added.\r\n"
    assert calls.read_text().splitlines() == ["run"]
    world.tracking.flush()
    assert any(e.event == "routed" for e in world.tracking.find(entry.tracking_id))


def wait_for(predicate, timeout: float) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_slow_program_does_not_block_other_messages(world: Store, tmp_path: Path) -> None:
    slow = script(tmp_path, "maybe-slow.sh",
                  'if grep -q "^Subject: slow" "$1"; then sleep 60; fi\n')
    enable(world, slow)
    world.settings.set("mta.general.max_threads", 4)
    service = MtaService(world, pickup_event_timeout=3)
    asyncio.run(service.start())
    try:
        enqueue(world, ["[SMTP:bob@example.com]"],
                body=MESSAGE.replace(b"Subject: hello", b"Subject: slow"))
        time.sleep(0.2)                                    # the slow one is running
        enqueue(world, ["[SMTP:alice@example.com]"])
        fast = wait_for(lambda: len(outgoing(world, "SF.outgoing")) == 1, 2.5)
        (first,) = outgoing(world, "SF.outgoing")
        assert first.envelope.recipients == ["[SF:example/alice]"]
        assert fast < 2.5
        # The slow one is killed at its timeout and its message goes on.
        wait_for(lambda: len(outgoing(world, "SF.outgoing")) == 2, 10)
    finally:
        asyncio.run(service.stop())
