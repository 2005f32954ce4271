"""`postroom serve` runs in the foreground and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

from postroom.store import Store
from tests.conftest import postroom_executable


def _loopback_only(home: Path) -> int:
    """Keep the SMTP service off the public ports 25/587/465: one free loopback port."""
    with Store.open(home) as store:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        store.settings.set("smtp.bind", ["127.0.0.1"])
        store.settings.set("smtp.port", port)
        store.settings.set("smtp.submission_port", 0)
        store.settings.set("smtp.smtps_port", 0)
    return port


def test_serve_starts_and_stops_on_sigterm(home: Path) -> None:
    port = _loopback_only(home)
    proc = subprocess.Popen([*postroom_executable(), "--home", str(home), "serve"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(2.5)
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        with socket.create_connection(("127.0.0.1", port), 5) as client:
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
