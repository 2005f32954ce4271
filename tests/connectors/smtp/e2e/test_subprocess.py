"""`postroom serve smtp` as a real process: a 250 survives SIGKILL right after it."""

from __future__ import annotations

import signal
import smtplib
import socket
import subprocess
import time
from pathlib import Path

from postroom.store import Store
from tests.conftest import postroom_executable
from tests.connectors.smtp.e2e.conftest import _prepare
from tests.dnsserver import DnsTestServer


def _wait_for_port(port: int, proc: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"port {port} never opened")


def test_accepted_messages_survive_sigkill(tmp_path: Path) -> None:
    home = tmp_path / "data"
    with DnsTestServer() as dns:
        store = _prepare(home, dns)
        port = store.settings.get("smtp.port")
        store.close()
        proc = subprocess.Popen([*postroom_executable(), "--home", str(home), "serve", "smtp"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            _wait_for_port(port, proc)
            tracking = []
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.ehlo("crash.test")
                for n in range(5):
                    client.mail("someone@remote.test")
                    client.rcpt("bob@example.com")
                    code, text = client.data(f"Subject: {n}\r\n\r\nbody {n}\r\n".encode())
                    assert code == 250
                    tracking.append(text.decode().split()[-1])
                proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
    with Store.open(home) as reopened:
        for n, tid in enumerate(tracking):
            entry = reopened.queue.get(tid)
            assert reopened.queue.read_body(entry).endswith(f"body {n}\r\n".encode())
