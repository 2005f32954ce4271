"""IMAP on a big folder: SELECT, UID FETCH 1:* (FLAGS) and SEARCH on a header in an
inbox of 100,000 messages (issue 8 benchmark).

Targets (issue 8): SELECT under 50 ms; SEARCH on a header under 500 ms. UID FETCH 1:*
(FLAGS) has no target; it is printed beside them.

What is measured: the wall time from writing a command to reading its tagged reply,
with one raw-socket client on loopback against ``postroom serve imap`` in its own
process (default logs on). Each command runs :data:`REPEATS` times; the first run is
printed apart ("cold": nothing of the folder is cached yet in the server) from the
median of the others ("warm"). The folder is filled before the server starts, with
``store.messages.append_async`` in bulk: small messages (about 400 octets), one in
every 1,000 carrying ``X-Bench-Tag: needle``, every ``Subject`` distinct.

The server is started twice. The first start finds what storing the mail left: the
folder index snapshot the store keeps current as mail is stored (``DIR/cache/
folder-index``) and the header journal of the folder's new messages
(``DIR/cache/imap-headers/*.journal``), but none of the header files IMAP searches
write (``*.headers``, removed first: a kept folder may have them from an earlier
run). The second start finds what the first left besides, as every start after the
first does. Targets are judged on both starts, cold and warm. The journal holds the
messages from UID 256 on (``header_file.JOURNAL_MIN``): the first search reads the
first 255 files.

Run: ``make bench-imap-bigbox`` or ``.venv/bin/python bench/imap_bigbox.py
[--messages 100000] [--keep DIR]``. No root needed; about a minute, most of it filling
the folder.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import tempfile
import time
from pathlib import Path

from common import free_port, rss, serving, wait_port
from postroom_home import PASSWORD, append_all, empty_mailbox, listen_plain, new_home

REPEATS = 5
TAG_EVERY = 1000


def make_message(n: int) -> bytes:
    tag = "X-Bench-Tag: needle\r\n" if n % TAG_EVERY == 0 else ""
    return (f"From: Sender {n % 97} <s{n % 97}@example.net>\r\nTo: big@bench.test\r\n"
            f"Subject: report number {n}\r\nMessage-ID: <{n}@bench.test>\r\n"
            f"Date: Mon, 6 May 2024 10:{n // 60 % 60:02d}:{n % 60:02d} +0000\r\n{tag}\r\n"
            "A short body line for the big mailbox benchmark.\r\n").encode()


def fill(home: Path, messages: int, port: int) -> None:
    with new_home(home) as store:
        empty_mailbox(store, "big")
        started = time.perf_counter()
        batch = 5000
        for first in range(0, messages, batch):
            append_all(store, "big", [make_message(n)
                                      for n in range(first, min(first + batch, messages))])
        print(f"filled    {messages} messages in {time.perf_counter() - started:.1f} s",
              flush=True)
        listen_plain(store, "imap", port)


class Client:
    """A minimal IMAP client: one command at a time, replies read up to the tagged line."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.n = 0
        self.buffer = b""
        self._until(b"\r\n")

    def _until(self, end: bytes) -> bytes:
        while True:
            i = self.buffer.find(end)
            if i >= 0:
                out, self.buffer = self.buffer[:i + len(end)], self.buffer[i + len(end):]
                return out
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("server closed the connection")
            self.buffer += data

    def command(self, line: str) -> tuple[float, bytes]:
        """Seconds until the tagged reply, and the whole reply."""
        self.n += 1
        tag = f"b{self.n}".encode()
        started = time.perf_counter()
        self.sock.sendall(tag + b" " + line.encode() + b"\r\n")
        chunks = []
        # Read until a line starts with the tag (no literals in these replies).
        while True:
            if self.buffer.startswith(tag + b" "):
                chunks.append(self._until(b"\r\n"))
                break
            i = self.buffer.find(b"\r\n" + tag + b" ")
            if i >= 0:
                chunks.append(self.buffer[:i + 2])
                self.buffer = self.buffer[i + 2:]
                continue
            keep = len(tag) + 3
            if len(self.buffer) > keep:
                chunks.append(self.buffer[:-keep])
                self.buffer = self.buffer[-keep:]
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("server closed the connection")
            self.buffer += data
        elapsed = time.perf_counter() - started
        reply = b"".join(chunks)
        status = reply.rsplit(b"\r\n", 2)[-2].split(b" ", 2)[1]
        if status != b"OK":
            raise RuntimeError(f"{line}: {reply[-300:]!r}")
        return elapsed, reply


def timed(client: Client, line: str, check) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(REPEATS):
        elapsed, reply = client.command(line)
        check(reply)
        runs.append(elapsed)
    return runs[0], statistics.median(runs[1:])


def report(name: str, cold: float, warm: float, target: float | None) -> bool:
    verdict = ""
    ok = True
    if target is not None:
        ok = warm < target and cold < target
        verdict = (f"  target < {target * 1000:.0f} ms: "
                   f"{'met' if warm < target else 'MISSED'} warm, "
                   f"{'met' if cold < target else 'MISSED'} cold")
    print(f"{name:34} cold {cold * 1000:8.1f} ms   warm {warm * 1000:8.1f} ms{verdict}",
          flush=True)
    return ok


def measure(port: int, messages: int) -> bool:
    client = Client(port)
    client.command(f'LOGIN big@bench "{PASSWORD}"')

    def check_select(reply: bytes) -> None:
        assert f"* {messages} EXISTS".encode() in reply, reply[:300]

    def check_fetch(reply: bytes) -> None:
        assert reply.count(b" FETCH (") == messages, reply.count(b" FETCH (")

    tagged = len(range(0, messages, TAG_EVERY))

    def check_search(reply: bytes) -> None:
        line = reply.split(b"\r\n")[0]
        assert line.startswith(b"* SEARCH") and len(line.split()) - 2 == tagged, line[:200]

    def check_subject(reply: bytes) -> None:
        line = reply.split(b"\r\n")[0]
        assert line.split()[2:] == [str(messages).encode()], line[:200]

    results = [
        report("SELECT INBOX", *timed(client, "SELECT INBOX", check_select), 0.050),
        report("UID FETCH 1:* (FLAGS)", *timed(client, "UID FETCH 1:* (FLAGS)", check_fetch),
               None),
        report("UID SEARCH HEADER X-Bench-Tag", *timed(
            client, "UID SEARCH HEADER X-Bench-Tag needle", check_search), 0.500),
        report("UID SEARCH SUBJECT (one match)", *timed(
            client, f'UID SEARCH SUBJECT "report number {messages - 1}"', check_subject),
            0.500),
    ]
    # New mail in the big folder: another session's NOOP reports it (the shared index is
    # updated and the session's view compared with it).
    other = Client(port)
    other.command(f'LOGIN big@bench "{PASSWORD}"')
    other.command("SELECT INBOX")
    literal = "From: a@bench.test\r\nSubject: late\r\n\r\nhello\r\n"
    seen = []
    for _ in range(REPEATS):
        client.command(f"APPEND INBOX {{{len(literal)}+}}\r\n{literal}")
        elapsed, reply = other.command("NOOP")
        assert b" EXISTS" in reply, reply[:200]
        seen.append(elapsed)
    report("NOOP telling another's APPEND", seen[0], statistics.median(seen[1:]), None)
    other.command("LOGOUT")
    # The folder as it was, for the next start (and the next run on a kept folder).
    client.command(f"STORE {messages + 1}:* +FLAGS.SILENT (\\Deleted)")
    client.command("EXPUNGE")
    client.command("LOGOUT")
    return all(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="fill this directory once and reuse it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="postroom-imap-bigbox-"))
    home = work / "postroom"
    port = free_port()
    try:
        if not (home / "postroom.db").exists():
            fill(home, args.messages, port)
        else:
            from postroom.store import Store
            with Store.open(home) as store:
                store.settings.set("imap.port", port)
        # The first start finds what storing the mail left: the folder index snapshot
        # and the header journal, not the header files IMAP searches write (a kept
        # folder may have them from an earlier run); the second finds those besides.
        for written in (home / "cache" / "imap-headers").glob("*.headers"):
            written.unlink()
        ok = True
        for start in ("first start (folder never opened by IMAP)", "after a restart"):
            print(f"-- {start}", flush=True)
            with serving(home, "imap") as server:
                wait_port(port)
                ok = measure(port, args.messages) and ok
                print(f"server RSS after the run: {rss(server.pid) / 2**20:.0f} MiB")
        print("all targets met on both starts" if ok else "some targets missed")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
