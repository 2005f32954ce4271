"""SIGKILL the delivery agent in the middle of a run: nothing is lost, and only the
transactions in flight at the kill may arrive twice (the at-least-once boundary of
docs/smtp-outbound.md)."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from postroom.store.queue import Envelope
from tests.connectors.smtp.outbound.conftest import MESSAGE, prepare
from tests.connectors.smtp.outbound.peer import Peer
from tests.dnsserver import DnsTestServer

LAUNCHER = """
import asyncio, sys
from postroom.store import Store
from postroom.connectors.smtp.outbound.service import SmtpOutService
async def main():
    service = SmtpOutService(Store.open(sys.argv[1]), poll_seconds=0.3)
    await service.start()
    await asyncio.Event().wait()
asyncio.run(main())
"""


def _agent(home: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", LAUNCHER, str(home)])


def test_sigkill_during_a_run_loses_nothing(tmp_path: Path) -> None:
    with DnsTestServer() as dns:
        home = tmp_path / "data"
        store = prepare(home, dns)
        try:
            peer = Peer("127.0.0.20", delay=0.002).start()
        except OSError as exc:
            pytest.skip(f"cannot bind 127.0.0.20:25 ({exc}); this test needs root")
        dns.add("crash.test", "MX", "10 mx.crash.test")
        dns.add("mx.crash.test", "A", "127.0.0.20")
        try:
            for n in range(200):
                store.queue.enqueue("SMTP.outgoing", Envelope(
                    "[SMTP:bob@example.com]", [f"[SMTP:r{n}@crash.test]"],
                    auth_user="bob@example.com"), MESSAGE)
            agent = _agent(home)
            deadline = time.monotonic() + 30
            while len(peer.received) < 60 and time.monotonic() < deadline:
                time.sleep(0.005)
            os.kill(agent.pid, signal.SIGKILL)
            agent.wait()
            at_kill = len(peer.received)
            assert 0 < at_kill < 200, "the kill should land in the middle of the run"
            agent = _agent(home)
            try:
                deadline = time.monotonic() + 60
                while store.queue.list("SMTP.outgoing") and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert store.queue.list("SMTP.outgoing") == []
            finally:
                agent.terminate()
                agent.wait(10)
            counts = collections.Counter(r.recipients[0] for r in peer.received)
            assert set(counts) == {f"r{n}@crash.test" for n in range(200)}
            duplicates = sum(c - 1 for c in counts.values())
            # at most one transaction per open connection was in flight at the kill
            assert duplicates <= 5, counts.most_common(10)
        finally:
            peer.stop()
            store.close()
