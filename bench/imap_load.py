"""IMAP under load: N clients running a realistic mix of commands, commands per second,
against Postroom's IMAP service and Dovecot's IMAP on the same machine, in the same run
(issue 8 benchmark; target: at least 1.0 x Dovecot).

The mix, repeated by every client for ``--seconds`` (each client in its own mailbox of
:data:`MESSAGES` messages of 5 KB, CRLF line ends, plain text login on loopback, one
command at a time per connection):

    SELECT INBOX
    FETCH a:b (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])
                                                   -- 20 headers, a message-list page
    FETCH n BODY.PEEK[]                            -- three bodies read
    STORE n +FLAGS.SILENT (\\Seen)                 -- twice
    UID SEARCH SUBJECT "message 1"
    APPEND INBOX {5120+}                           -- a new message (LITERAL+)
    STORE n +FLAGS.SILENT (\\Deleted), EXPUNGE     -- one removed: the size stays

so 11 commands a round. The clock starts when every client is logged in and stops
after ``--seconds``; commands answered in that time count. Login time is not counted.

Postroom runs as ``postroom serve imap`` on a fresh data directory (default logs on),
with one accept process per CPU (``imap.general.accept_processes`` 0), as Dovecot runs
a process per connection. Dovecot is Debian's ``dovecot-imapd`` (installed with
``apt-get install --no-install-recommends`` when missing), a private instance like the
one of ``bench/pop3_retrieve.py`` (both use ``bench/dovecot_peer.py``): its own
configuration and directories in a temporary directory, a loopback port, a passwd-file,
Maildir mail owned by ``nobody``.

Run: ``make bench-imap`` (needs root for apt-get and Dovecot), or
``.venv/bin/python bench/imap_load.py [--clients 20] [--seconds 10] [--runs 5]
[--no-dovecot]``: ``--runs`` pairs of runs on fresh servers, who goes first alternating;
the ratio reported is the median of the pairs' ratios (this machine's speed drifts by
tens of percent over minutes, so only runs side by side compare).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import alternating, free_port, make_message, serving, wait_listeners, wait_port
from dovecot_peer import dovecot
from postroom_home import PASSWORD, fill_mailboxes, listen_plain, new_home

MESSAGES = 200
_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 user: int) -> None:
        self.reader, self.writer = reader, writer
        self.user = user
        self.n = 0
        self.exists = 0
        self.done = 0

    async def command(self, line: bytes) -> list[bytes]:
        self.n += 1
        tag = b"t%d" % self.n
        self.writer.write(tag + b" " + line + b"\r\n")
        out = []
        while True:
            reply = await self.reader.readline()
            if not reply:
                raise ConnectionError("server closed the connection")
            m = _LITERAL.search(reply)
            if m:
                reply += await self.reader.readexactly(int(m.group(1)))
                reply += await self.reader.readline()
            if reply.startswith(tag + b" "):
                if not reply.startswith(tag + b" OK"):
                    raise RuntimeError(f"{line[:60]!r}: {reply!r}")
                self.done += 1
                return out
            if reply.endswith(b" EXISTS\r\n"):
                self.exists = int(reply.split()[1])
            elif reply.endswith(b" EXPUNGE\r\n"):
                self.exists -= 1
            out.append(reply)


async def login(port: int, user: int, name: str) -> Client:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    client = Client(reader, writer, user)
    await reader.readline()
    await client.command(f'LOGIN {name} "{PASSWORD}"'.encode())
    return client


async def round_(c: Client, rng: random.Random, n: int) -> None:
    await c.command(b"SELECT INBOX")
    count = c.exists
    first = rng.randint(1, max(1, count - 19))
    await c.command(b"FETCH %d:%d (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS "
                    b"(FROM TO SUBJECT DATE)])" % (first, min(count, first + 19)))
    for _ in range(3):
        await c.command(b"FETCH %d BODY.PEEK[]" % rng.randint(1, count))
    for _ in range(2):
        await c.command(b"STORE %d +FLAGS.SILENT (\\Seen)" % rng.randint(1, count))
    await c.command(b'UID SEARCH SUBJECT "message 1"')
    data = make_message(c.user, 100_000 + n)
    await c.command(b"APPEND INBOX {%d+}\r\n" % len(data) + data)
    await c.command(b"STORE %d +FLAGS.SILENT (\\Deleted)" % rng.randint(1, c.exists))
    await c.command(b"EXPUNGE")


async def run_clients(port: int, names: list[str], seconds: float) -> tuple[float, int, float]:
    started = time.perf_counter()
    clients = await asyncio.gather(*(login(port, i, n) for i, n in enumerate(names)))
    logged_in = time.perf_counter()
    deadline = logged_in + seconds

    async def work(c: Client) -> int:
        rng = random.Random(c.user)
        n = 0
        c.done = 0
        while time.perf_counter() < deadline:
            await round_(c, rng, n)
            n += 1
        await c.command(b"LOGOUT")
        c.writer.close()
        return c.done

    counts = await asyncio.gather(*(work(c) for c in clients))
    elapsed = time.perf_counter() - logged_in
    return logged_in - started, sum(counts), elapsed


def measure(name: str, port: int, names: list[str], seconds: float) -> float:
    # The message files just written (Dovecot's Maildirs are written without a flush)
    # go to disk now, not as writeback during this run or the next server's.
    os.sync()
    login_time, commands, elapsed = asyncio.run(run_clients(port, names, seconds))
    rate = commands / elapsed
    print(f"{name:9} {rate:9.0f} commands/s  ({commands} commands in {elapsed:.2f} s by "
          f"{len(names)} clients; logins {login_time:.2f} s)", flush=True)
    return rate


# -- Postroom -----------------------------------------------------------------------------

def postroom(work: Path, clients: int, seconds: float) -> float:
    home = work / "postroom"
    port = free_port()
    with new_home(home) as store:
        fill_mailboxes(store, clients, MESSAGES, make_message)
        listen_plain(store, "imap", port)
        # One accept process per CPU, as Dovecot runs a process per connection.
        store.settings.set("imap.general.accept_processes", 0)
    with serving(home, "imap"):
        wait_port(port)
        wait_listeners(port, min(8, os.cpu_count() or 1), what="IMAP")
        return measure("Postroom", port, [f"u{n}@bench" for n in range(clients)], seconds)


# -- Dovecot ------------------------------------------------------------------------------

def dovecot_rate(work: Path, clients: int, seconds: float) -> float:
    with dovecot(work, "imap", "postroom-imap-bench", clients, MESSAGES,
                 make_message) as port:
        return measure("Dovecot", port, [f"u{n}" for n in range(clients)], seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=5,
                        help="pairs of runs, fresh servers each, who goes first alternating")
    parser.add_argument("--no-dovecot", action="store_true", help="measure Postroom only")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="postroom-imap-load-"))
    os.chmod(work, 0o755)       # Dovecot's users reach their run's directory below it
    servers = ["postroom"] if args.no_dovecot else ["postroom", "dovecot"]
    rates: dict[str, list[float]] = {server: [] for server in servers}
    try:
        for i, server in alternating(servers, args.runs):
            root = work / f"{server}-{i}"
            root.mkdir()
            measure_one = postroom if server == "postroom" else dovecot_rate
            rates[server].append(measure_one(root, args.clients, args.seconds))
            shutil.rmtree(root, ignore_errors=True)
        if args.no_dovecot:
            return
        # The machine's speed drifts by tens of percent over minutes: the runs of a
        # pair are next to each other, so each pair's ratio is the fairer figure.
        pairs = [a / b for a, b in zip(rates["postroom"], rates["dovecot"], strict=True)]
        print(f"median    Postroom {statistics.median(rates['postroom']):.0f}, Dovecot "
              f"{statistics.median(rates['dovecot']):.0f} commands/s")
        print(f"ratio     {statistics.median(pairs):.2f} x Dovecot, median of the pairs "
              f"({', '.join(f'{r:.2f}' for r in pairs)}; target: at least 1.0)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
