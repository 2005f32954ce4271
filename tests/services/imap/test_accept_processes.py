"""Two IMAP accept processes share the ports; a change made through one is seen by a
session of the other."""

from __future__ import annotations

import contextlib
import imaplib
import os
import signal
import socket
import time
from pathlib import Path

from tests.conftest import postroom_executable
from tests.servers import children, connection_ids_by_parity, serving_two_processes
from tests.services.imap.conftest import PASSWORD, RawImap, _prepare, message


def test_two_processes_serve_one_port_and_see_each_others_changes(tmp_path: Path) -> None:
    home = tmp_path / "data"
    store = _prepare(home)
    store.settings.set("imap.general.accept_processes", 2)
    port = store.settings.get("imap.port")
    store.messages.append("example", "bob", "Inbox", message(1))
    store.close()
    command = [*postroom_executable(), "--home", str(home), "serve", "imap"]
    with serving_two_processes(command, port) as proc:
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
    assert connection_ids_by_parity(home, "IMAP") == {0, 1}, \
        "both processes served connections"


def _serving_pid(client: socket.socket, port: int, pids: list[int]) -> int | None:
    """Which accept process holds the server end of ``client`` (by socket inode)."""
    local = client.getsockname()[1]
    inode = next((row.split()[9] for row in Path("/proc/net/tcp").read_text().splitlines()[1:]
                  if row.split()[1].endswith(f":{port:04X}")
                  and row.split()[2].endswith(f":{local:04X}")), None)
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == f"socket:[{inode}]":
                        return pid
    return None


def test_idle_on_every_process_is_woken_by_an_append(tmp_path: Path) -> None:
    """The store's mailbox.changes wake-up reaches every accept process: with the
    fallback poll set to a minute, an IDLE session on each sees an APPEND at once."""
    home = tmp_path / "data"
    store = _prepare(home)
    store.settings.set("imap.general.accept_processes", 2)
    store.settings.set("imap.general.idle_poll_interval", 60_000)
    port = store.settings.get("imap.port")
    store.close()
    command = [*postroom_executable(), "--home", str(home), "serve", "imap"]
    clients: list[RawImap] = []
    with serving_two_processes(command, port) as proc, contextlib.ExitStack() as cleanup:
        cleanup.callback(lambda: [client.close() for client in clients])
        pids = [proc.pid, *children(proc.pid)]
        idlers: dict[int, RawImap] = {}
        for _ in range(60):                       # one IDLE session on each process
            client = RawImap("127.0.0.1", port)
            clients.append(client)
            pid = _serving_pid(client.sock, port, pids)
            if pid is not None and pid not in idlers:
                idlers[pid] = client
            if len(idlers) == 2:
                break
        assert len(idlers) == 2, "the kernel never chose the second process"
        for client in idlers.values():
            assert client.login()[-1].startswith(b"l OK")
            assert client.command("SELECT INBOX")[-1].startswith(b"a OK")
            client.send(b"i IDLE\r\n")
            assert client.line() == b"+ idling"
        time.sleep(0.2)                           # both watches past their first poll
        writer = RawImap("127.0.0.1", port)
        clients.append(writer)
        writer.login()
        data = message(1)
        writer.send(b"w APPEND INBOX {%d+}\r\n%s\r\n" % (len(data), data))
        assert writer.until("w")[-1].startswith(b"w OK [APPENDUID ")
        for client in idlers.values():
            # Within the client's 10 s timeout: the poll, set to a minute, cannot explain it.
            assert client.line() == b"* 1 EXISTS"
        for client in idlers.values():
            assert client.line() in (b"* 0 RECENT", b"* 1 RECENT")
            client.send(b"DONE\r\n")
            assert client.line() == b"i OK IDLE terminated"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
