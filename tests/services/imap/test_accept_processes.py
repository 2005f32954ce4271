"""Two IMAP accept processes share the ports; a change made through one is seen by a
session of the other."""

from __future__ import annotations

import imaplib
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import postroom_executable
from tests.connectors.smtp.e2e.test_accept_processes import _children, _listeners
from tests.services.imap.conftest import PASSWORD, _prepare, message


def test_two_processes_serve_one_port_and_see_each_others_changes(tmp_path: Path) -> None:
    home = tmp_path / "data"
    store = _prepare(home)
    store.settings.set("imap.general.accept_processes", 2)
    port = store.settings.get("imap.port")
    store.messages.append("example", "bob", "Inbox", message(1))
    store.close()
    proc = subprocess.Popen([*postroom_executable(), "--home", str(home), "serve", "imap"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not (_children(proc.pid) and _listeners(port) == 2):
            assert proc.poll() is None and time.monotonic() < deadline, "no second process"
            time.sleep(0.1)
        clients = []
        for _ in range(16):                      # the kernel spreads them over both
            client = imaplib.IMAP4("127.0.0.1", port, timeout=10)
            client.login("bob@example", PASSWORD)
            assert client.select("INBOX")[1] == [b"1"]
            clients.append(client)
        clients[0].store("1", "+FLAGS", "\\Flagged")
        for other in clients[1:]:                # whichever process serves it
            typ, data = other.fetch("1", "(FLAGS)")
            assert typ == "OK" and b"\\Flagged" in b"".join(
                part if isinstance(part, bytes) else part[0] for part in data)
        for client in clients:
            client.logout()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    activity = "".join(p.read_text() for p in (home / "logs").rglob("*") if p.is_file()
                       and "IMAP" in p.as_posix() and "ctivity" in p.name)
    ids = {int(line.split("\t")[3]) for line in activity.splitlines()
           if line.count("\t") >= 9 and line.split("\t")[3].isdigit()}
    assert {n % 2 for n in ids} == {0, 1}, "both processes served connections"
