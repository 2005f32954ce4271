"""A 50 MB message costs the server a bounded amount of memory (docs/smtp.md, STYLE
"What we leave behind": never a whole message held in memory).

``postroom serve smtp`` runs as a real process; its resident set (``VmRSS`` in
``/proc/PID/status``) is sampled every 10 ms while a 50 MB message arrives over a
real socket, and its peak (``VmHWM``, reset through ``/proc/PID/clear_refs`` where
the kernel allows it) is read afterwards. The growth over the level before the
message, measured after a warm-up message took the same code path (a body large
enough to go to a spool file), must stay under 10 MB. The message must also arrive
whole in the queue.
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from postroom.store import Store
from tests.conftest import postroom_executable
from tests.connectors.smtp.e2e.conftest import _prepare
from tests.connectors.smtp.e2e.test_subprocess import _wait_for_port
from tests.dnsserver import DnsTestServer

MB = 1_000_000
LIMIT = 10 * MB
LINE = b"x" * 76 + b"\r\n"


def vm_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid``, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, vm_status(self.pid)["VmRSS"])
            time.sleep(0.01)


def send(port: int, body: bytes) -> bytes:
    """One transaction over a raw socket; returns the final reply line."""
    with socket.create_connection(("127.0.0.1", port), 10) as sock:
        sock.settimeout(60)
        reader = sock.makefile("rb")

        def reply() -> bytes:
            while True:
                line = reader.readline()
                if not line:
                    raise ConnectionError("server closed the connection")
                if line[3:4] != b"-":
                    return line.rstrip()

        assert reply().startswith(b"220")
        sock.sendall(b"EHLO big.remote.test\r\n")
        assert reply().startswith(b"250")
        sock.sendall(b"MAIL FROM:<sender@remote.test>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
        assert [reply()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
        view = memoryview(body)
        for start in range(0, len(body), 1 << 20):
            sock.sendall(view[start:start + (1 << 20)])
        sock.sendall(b".\r\n")
        final = reply()
        sock.sendall(b"QUIT\r\n")
        return final


@pytest.mark.slow
def test_fifty_megabyte_message_keeps_server_memory_flat(tmp_path: Path) -> None:
    home = tmp_path / "data"
    log = tmp_path / "server.log"
    header = b"Subject: fifty megabytes\r\n\r\n"
    body = header + LINE * ((50 * MB - len(header)) // len(LINE))
    with DnsTestServer() as dns:
        store = _prepare(home, dns)
        port = int(store.settings.get("smtp.port"))
        store.close()
        with log.open("w") as handle:
            proc = subprocess.Popen(
                [*postroom_executable(), "--home", str(home), "serve", "smtp"],
                stdout=handle, stderr=subprocess.STDOUT)
        try:
            _wait_for_port(port, proc)
            warm_up = send(port, b"Subject: warm-up\r\n\r\n" + LINE * 20_000)   # 1.5 MB
            assert warm_up.startswith(b"250 ")
            time.sleep(0.3)
            before = vm_status(proc.pid)
            try:
                Path(f"/proc/{proc.pid}/clear_refs").write_text("5")   # VmHWM := VmRSS
                hwm_reset = True
            except OSError:
                hwm_reset = False
            sampler = Sampler(proc.pid)
            sampler.start()
            try:
                final = send(port, body)
            finally:
                sampler.done.set()
                sampler.join()
            after = vm_status(proc.pid)
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert final.startswith(b"250 2.0.0 OK queued as "), final
    peak = max(sampler.peak, after["VmRSS"], after["VmHWM"] if hwm_reset else 0)
    growth = peak - before["VmRSS"]
    assert growth < LIMIT, (f"RSS grew by {growth / MB:.1f} MB (before {before['VmRSS'] / MB:.1f}"
                            f" MB, peak {peak / MB:.1f} MB, after {after['VmRSS'] / MB:.1f} MB)")
    with Store.open(home) as reopened:
        entry = reopened.queue.get(final.split()[-1].decode())
        digest = hashlib.sha256()
        size = 0
        with reopened.queue.open_body(entry) as stored:
            head = stored.read(4096)
            assert head.startswith(b"Received: ")
            offset = head.index(header)
            digest.update(head[offset:])
            size += len(head) - offset
            while chunk := stored.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    assert size == len(body)
    assert digest.digest() == hashlib.sha256(body).digest()
