"""Wake-ups: a queue has one listener; a broadcast (``mailbox.changes``) reaches every
listener, also ones that appear after the producer's first notify and ones left above
a gap when others stop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from postroom.store.wake import MAILBOX_CHANGES, WakeListener, Waker


def test_one_notify_wakes_every_mailbox_changes_listener(tmp_path: Path) -> None:
    first = WakeListener(tmp_path, MAILBOX_CHANGES)
    second = WakeListener(tmp_path, MAILBOX_CHANGES)
    waker = Waker(tmp_path)
    try:
        assert first.bound and second.bound and (first.slot, second.slot) == (0, 1)
        waker.notify([MAILBOX_CHANGES])
        assert first.wait(1.0) and second.wait(1.0)
        assert not first.wait(0.05) and not second.wait(0.05)     # drained: one each
        # A listener that comes after the producer's first (full) scan is found too.
        third = WakeListener(tmp_path, MAILBOX_CHANGES)
        assert third.slot == 2
        waker.notify([MAILBOX_CHANGES])
        assert first.wait(1.0) and second.wait(1.0) and third.wait(1.0)
        # The lowest slot leaves; a newcomer takes it; the one above the gap still hears.
        first.close()
        waker.notify([MAILBOX_CHANGES])
        assert second.wait(1.0) and third.wait(1.0)
        fourth = WakeListener(tmp_path, MAILBOX_CHANGES)
        assert fourth.slot == 0
        waker.notify([MAILBOX_CHANGES])
        assert second.wait(1.0) and third.wait(1.0) and fourth.wait(1.0)
        fourth.close()
        third.close()
    finally:
        second.close()
        waker.close()


def test_broadcast_from_another_process_and_other_data_directories(tmp_path: Path) -> None:
    listeners = [WakeListener(tmp_path, MAILBOX_CHANGES) for _ in range(3)]
    elsewhere = WakeListener(tmp_path / "other", MAILBOX_CHANGES)
    try:
        assert elsewhere.slot == 0           # names belong to one data directory
        script = ("import sys; from pathlib import Path; from postroom.store.wake import "
                  "Waker, MAILBOX_CHANGES; Waker(Path(sys.argv[1])).notify([MAILBOX_CHANGES])")
        subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=60)
        assert all(listener.wait(2.0) for listener in listeners)
        assert not elsewhere.wait(0.05)
    finally:
        for listener in [*listeners, elsewhere]:
            listener.close()


def test_queues_keep_one_listener(tmp_path: Path) -> None:
    first = WakeListener(tmp_path, "MTA.inbound")
    second = WakeListener(tmp_path, "MTA.inbound")
    waker = Waker(tmp_path)
    try:
        assert first.bound and not second.bound and first.slot is None
        waker.notify(["MTA.inbound"])
        assert first.wait(1.0)
    finally:
        first.close()
        second.close()
        waker.close()


def test_notify_cost_stays_small(tmp_path: Path) -> None:
    """A producer notifies after every append batch: with two listeners, after the first
    full scan, a notify tries only the bound slots and the next one or two."""
    listeners = [WakeListener(tmp_path, MAILBOX_CHANGES) for _ in range(2)]
    waker = Waker(tmp_path)
    sent: list[bytes] = []
    real = waker._send

    def counting(name: bytes) -> bool:
        sent.append(name)
        return real(name)

    waker._send = counting  # type: ignore[method-assign]
    try:
        waker.notify([MAILBOX_CHANGES])
        assert len(sent) == 128                   # the first notify tries every slot
        sent.clear()
        waker.notify([MAILBOX_CHANGES])
        assert len(sent) == 3                     # slots 0, 1 and the free slot 2
    finally:
        for listener in listeners:
            listener.close()
        waker.close()
