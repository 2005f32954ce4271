"""`postroom serve` runs in the foreground and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from postroom.store import Store
from tests.conftest import postroom_executable
from tests.servers import children, free_port


def _loopback_only(home: Path) -> int:
    """Keep the SMTP service off the public ports 25/587/465: one free loopback port."""
    with Store.open(home) as store:
        port = free_port()
        store.settings.set("smtp.bind", ["127.0.0.1"])
        store.settings.set("smtp.port", port)
        store.settings.set("smtp.submission_port", 0)
        store.settings.set("smtp.smtps_port", 0)
        store.settings.set("pop3.bind", ["127.0.0.1"])
        store.settings.set("pop3.port", 0)
        store.settings.set("pop3.pop3s_port", 0)
        store.settings.set("imap.bind", ["127.0.0.1"])
        store.settings.set("imap.port", 0)
        store.settings.set("imap.imaps_port", 0)
    return port


def test_serve_starts_and_stops_on_sigterm(home: Path) -> None:
    port = _loopback_only(home)
    proc = subprocess.Popen([*postroom_executable(), "--home", str(home), "serve"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30      # each service starts in its own process
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                client = socket.create_connection(("127.0.0.1", port), 5)
                break
            except OSError:
                assert time.monotonic() < deadline, "the smtp service never listened"
                time.sleep(0.1)
        with client:
            assert client.recv(100).startswith(b"220 ")   # the smtp service answers
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stopped" in out


def test_serve_unknown_service_is_refused(cli_subprocess) -> None:
    result = cli_subprocess("serve", "nosuchservice", expect=2)
    assert "nosuchservice" in result.stderr


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def _wait_for_banner(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 2) as client:
                if client.recv(100).startswith(b"220 "):
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"no banner on port {port}")


def test_a_killed_service_is_restarted_and_services_die_with_serve(home: Path) -> None:
    port = _loopback_only(home)
    proc = subprocess.Popen([*postroom_executable(), "--home", str(home), "serve"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_banner(port)
        first = children(proc.pid)
        assert first, "services run in child processes"
        for child in first:
            os.kill(child, signal.SIGKILL)
        assert all(_gone(child, 10) for child in first)
        _wait_for_banner(port)                     # restarted by `postroom serve`
        second = children(proc.pid)
        assert second and not set(second) & set(first)
        proc.kill()                                # no clean-up by the parent at all
        proc.wait(10)
        assert all(_gone(child, 20) for child in second), "children die with serve"
    finally:
        if proc.poll() is None:
            proc.kill()
