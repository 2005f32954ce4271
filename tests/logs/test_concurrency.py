"""Many threads and several processes share one day's file: no line is ever torn."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from postroom.logs import DebugLog, W3CEntry, W3CLog
from tests.logs.conftest import FakeClock

WRITER = """
import sys
from datetime import datetime, timezone
from pathlib import Path
from postroom.logs import DebugLog, W3CEntry, W3CLog

folder, name, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
clock = lambda: datetime(2026, 1, 25, 12, 0, 0, tzinfo=timezone.utc)
debug = DebugLog("SMTP", folder, clock=clock)
w3c = W3CLog("SMTP", folder, fields="cs-method cs-uri-query", clock=clock)
sys.stdout.write("ready\\n"); sys.stdout.flush(); sys.stdin.readline()
for i in range(count):
    debug.write(f"{name} {i} " + name * (i % 700 + 1000), connection_id=name)
    w3c.write(W3CEntry(cs_method=name, cs_uri_query=str(i)))
"""


def check_lines(text: str, writers: list[str], count: int) -> None:
    seen: dict[str, list[int]] = {name: [] for name in writers}
    for line in text.splitlines():
        _stamp, connection, message = line.split("\t")
        name, number, payload = message.split(" ")
        assert connection == name
        assert payload == name * (int(number) % 700 + 1000), "torn or interleaved line"
        seen[name].append(int(number))
    for name in writers:
        assert seen[name] == list(range(count)), f"lines of {name} lost or reordered"


def test_many_threads_one_log(tmp_path: Path, clock: FakeClock) -> None:
    log = DebugLog("SMTP", tmp_path, clock=clock)
    writers = [chr(ord("a") + n) for n in range(16)]
    count = 300
    start = threading.Barrier(len(writers))

    def work(name: str) -> None:
        start.wait()
        for i in range(count):
            log.write(f"{name} {i} " + name * (i % 700 + 1000), connection_id=name)

    threads = [threading.Thread(target=work, args=(name,)) for name in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    check_lines((tmp_path / "SMTP-Debug-260125.log").read_text(), writers, count)


def test_two_processes_one_log_and_one_w3c_header(tmp_path: Path) -> None:
    writers = ["p", "q"]
    count = 2000
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), name, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in writers
    ]
    for process in processes:  # both ready before either writes: the files do not exist yet
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
    assert list(tmp_path.iterdir()) == []
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in processes:
        assert process.wait(timeout=60) == 0

    check_lines((tmp_path / "SMTP-Debug-260125.log").read_text(), writers, count)

    w3c = (tmp_path / "ex260125.log").read_text().splitlines()
    assert w3c[:4] == [
        w3c[0],
        "#Version: 1.0",
        "#Date: 2026-01-25 12:00:00",
        "#Fields: cs-method cs-uri-query",
    ]
    assert sum(line.startswith("#") for line in w3c) == 4, "header written twice"
    for name in writers:
        assert [line.split(" ")[1] for line in w3c[4:] if line.startswith(name + " ")] == [
            str(i) for i in range(count)
        ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SMTP-Debug-260125.log", "ex260125.log"]


def test_w3c_log_shared_by_threads(tmp_path: Path, clock: FakeClock) -> None:
    log = W3CLog("IMAP", tmp_path, fields="cs-method cs-uri-query", clock=clock)
    threads = [
        threading.Thread(
            target=lambda n=n: [
                log.write(W3CEntry(cs_method=f"T{n}", cs_uri_query=str(i))) for i in range(500)
            ]
        )
        for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    lines = (tmp_path / "ex260125.log").read_text().splitlines()
    assert len(lines) == 4 + 8 * 500
    assert all(len(line.split(" ")) == 2 for line in lines[4:])
