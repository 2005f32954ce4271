"""SIGKILL under load: ``postroom serve smtp`` dies while 20 clients are sending.

docs/smtp.md "What 250 means": a message is answered 250 only once it is committed
in ``MTA.inbound`` (group commit), and a client that never got its 250 may or may
not find its message queued, but never half of it. So after a kill at any moment:

* every message that got a 250 is in the queue exactly once, under the tracking id
  of the reply, with its complete body;
* nothing in the queue is partial or duplicated (each body is recognisable by a
  unique marker, has a known length and ends with a known trailer);
* the server starts again on the same data directory, removes the spool files the
  killed processes left in ``DIR/tmp``, and accepts mail.

Three rounds kill the server at different points (after the first few, some tens
and over a hundred 250s), with one client in five sending bodies larger than the
in-memory spool limit so a kill may also land while a body streams to ``DIR/tmp``.
"""

from __future__ import annotations

import collections
import re
import signal
import smtplib
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from postroom.store import Store
from tests.conftest import postroom_executable
from tests.connectors.smtp.e2e.conftest import _prepare
from tests.connectors.smtp.e2e.test_subprocess import _wait_for_port
from tests.dnsserver import DnsTestServer

CLIENTS = 20
MARKER = re.compile(rb"Message-ID: <(crash-\d+-\d+-\d+)@crash\.test>")
LINE = b"The quick brown fox jumps over the lazy dog 0123456789.\r\n"


def message(marker: str, big: bool) -> bytes:
    """A message recognisable from its marker alone: same marker, same bytes."""
    lines = 6000 if big else 20   # 6000 lines: about 340 KB, past the 256 KiB spool
    return (f"Message-ID: <{marker}@crash.test>\r\n"
            f"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            f"Subject: {marker}\r\n\r\n").encode() + LINE * lines + \
        f"END {marker} {lines}\r\n".encode()


@dataclass
class Load:
    """What the clients saw: marker -> tracking id for each 250; markers in doubt."""

    acked: dict[str, str] = field(default_factory=dict)
    in_doubt: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


def client(port: int, round_no: int, n: int, load: Load) -> None:
    big = n % 5 == 0
    i = 0
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.ehlo(f"client{n}.crash.test")
            while not load.stop.is_set():
                marker = f"crash-{round_no}-{n}-{i}"
                i += 1
                with load.lock:
                    load.in_doubt.add(marker)
                smtp.mail("sender@remote.test")
                smtp.rcpt("bob@example.com")
                code, text = smtp.data(message(marker, big))
                if code != 250:
                    with load.lock:
                        load.errors.append(f"{marker}: {code} {text!r}")
                    return
                with load.lock:
                    load.in_doubt.discard(marker)
                    load.acked[marker] = text.decode().split()[-1]
    except (OSError, smtplib.SMTPException):
        pass   # the server died under us: the last marker stays in doubt


def start_server(home: Path, log: Path) -> subprocess.Popen[str]:
    handle = log.open("a")
    try:
        return subprocess.Popen([*postroom_executable(), "--home", str(home), "serve", "smtp"],
                                stdout=handle, stderr=subprocess.STDOUT, text=True)
    finally:
        handle.close()


def run_round(home: Path, port: int, log: Path, round_no: int, kill_after_acks: int,
              extra_delay: float) -> Load:
    proc = start_server(home, log)
    load = Load()
    try:
        _wait_for_port(port, proc)
        threads = [threading.Thread(target=client, args=(port, round_no, n, load), daemon=True)
                   for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(load.acked) < kill_after_acks and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(extra_delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        load.stop.set()
        for thread in threads:
            thread.join(15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert load.errors == []
    assert len(load.acked) >= kill_after_acks, f"only {len(load.acked)} 250s before the kill"
    return load


def check_queue(home: Path, loads: dict[int, Load]) -> int:
    """The queue holds each acknowledged message exactly once, and only whole messages."""
    with Store.open(home) as store:
        entries = store.queue.list("MTA.inbound")
        by_marker: collections.Counter[str] = collections.Counter()
        tracking_of: dict[str, str] = {}
        for entry in entries:
            body = store.queue.read_body(entry)
            found = MARKER.findall(body)
            assert len(found) == 1, f"{entry.tracking_id}: markers {found!r}"
            marker = found[0].decode()
            expected = message(marker, int(marker.split("-")[2]) % 5 == 0)
            assert body.endswith(expected), f"{marker} is not complete ({len(body)} bytes)"
            prefix = body[:-len(expected)]
            assert prefix.startswith(b"Received: ") and prefix.endswith(b"\r\n")
            assert f"id {entry.tracking_id}".encode() in prefix
            assert entry.envelope.recipients == ["[SF:example/bob]"]
            by_marker[marker] += 1
            tracking_of[marker] = entry.tracking_id
    duplicates = {m: c for m, c in by_marker.items() if c > 1}
    assert duplicates == {}
    for round_no, load in loads.items():
        missing = {m: t for m, t in load.acked.items() if tracking_of.get(m) != t}
        assert missing == {}, f"acknowledged but not queued: {missing}"
        unexplained = {m for m in by_marker if m.startswith(f"crash-{round_no}-")
                       and m not in load.acked and m not in load.in_doubt}
        assert unexplained == set()
    assert set(by_marker) <= {m for load in loads.values() for m in [*load.acked, *load.in_doubt]}
    return len(entries)


@pytest.mark.slow
def test_sigkill_under_concurrent_load_loses_no_acknowledged_message(tmp_path: Path) -> None:
    home = tmp_path / "data"
    log = tmp_path / "server.log"
    with DnsTestServer() as dns:
        store = _prepare(home, dns)
        port = int(store.settings.get("smtp.port"))
        store.close()
        loads: dict[int, Load] = {}
        for round_no, (acks, delay) in enumerate([(1, 0.0), (40, 0.013), (150, 0.031)]):
            loads[round_no] = run_round(home, port, log, round_no, acks, delay)
            queued = check_queue(home, loads)
            print(f"round {round_no}: {len(loads[round_no].acked)} acknowledged, "
                  f"{len(loads[round_no].in_doubt)} in doubt, {queued} queued in all")
        total = sum(len(load.acked) for load in loads.values())
        assert total >= 191

        # The same data directory serves again after the last kill.
        proc = start_server(home, log)
        try:
            _wait_for_port(port, proc)
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                smtp.ehlo("after.crash.test")
                smtp.mail("sender@remote.test")
                smtp.rcpt("bob@example.com")
                code, text = smtp.data(message("crash-9-0-0", True))
            assert code == 250
            # The killed servers' half-received bodies are gone from DIR/tmp.
            assert sorted(p.name for p in (home / "tmp").glob("smtp-*")) == []
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        loads[9] = Load(acked={"crash-9-0-0": text.decode().split()[-1]})
        queued = check_queue(home, loads)
        assert queued >= total + 1
