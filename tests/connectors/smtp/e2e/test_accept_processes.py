"""Several accept processes share the SMTP ports (smtp.inbound.accept_processes)."""

from __future__ import annotations

import signal
import smtplib
import subprocess
import time
from pathlib import Path

from postroom.store import Store
from tests.conftest import postroom_executable
from tests.connectors.smtp.e2e.conftest import _prepare
from tests.connectors.smtp.e2e.test_subprocess import _wait_for_port
from tests.dnsserver import DnsTestServer
from tests.servers import children, listeners


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_two_processes_accept_on_one_port_and_stop_together(tmp_path: Path) -> None:
    home = tmp_path / "data"
    with DnsTestServer() as dns:
        store = _prepare(home, dns)
        store.settings.set("smtp.inbound.accept_processes", 2)
        port = store.settings.get("smtp.port")
        store.close()
        proc = subprocess.Popen([*postroom_executable(), "--home", str(home), "serve", "smtp"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            _wait_for_port(port, proc)
            secondaries: list[int] = []
            for _ in range(200):
                secondaries = children(proc.pid)
                if secondaries and listeners(port) == 2:
                    break
                time.sleep(0.1)
            assert len(secondaries) == 1, "one secondary accept process"
            tracking = []
            for n in range(30):           # a connection each: the kernel spreads them
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                    client.ehlo("processes.test")
                    client.mail("someone@remote.test")
                    client.rcpt("bob@example.com")
                    code, text = client.data(f"Subject: {n}\r\n\r\nbody {n}\r\n".encode())
                    assert code == 250
                    tracking.append(text.decode().split()[-1])
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
            assert not any(_alive(child) for child in secondaries)
        finally:
            if proc.poll() is None:
                proc.kill()
    with Store.open(home) as reopened:
        assert {reopened.queue.get(tid).tracking_id for tid in tracking} == set(tracking)
    activity = "".join(p.read_text() for p in (home / "logs").rglob("*") if p.is_file()
                       and "ctivity" in p.as_posix())
    connection_ids = {line.split("\t")[3] for line in activity.splitlines()
                      if line.count("\t") >= 9 and "DATA" in line}
    assert len(connection_ids) == 30, "connection ids stay unique across processes"
    served_by = {int(i) % 2 for i in connection_ids}    # primary: odd ids, secondary: even
    assert served_by == {0, 1}, "both processes accepted connections"
