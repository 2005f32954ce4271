"""POP3 retrieval rate: 20 clients each RETR and DELE 500 messages of 5 KB, against
Postroom's POP3 service and Dovecot's POP3 on the same machine, in the same run.

What is measured: messages per second, from the moment all 20 clients are logged in
until every client's QUIT (the UPDATE that removes the 500 messages) is answered;
login time is reported apart. Both servers get the same messages (CRLF line ends,
5,120 octets each), plain text logins on a loopback port (no TLS: TLS costs the same
OpenSSL work in both), and the same client: one asyncio process speaking raw POP3,
one command at a time per connection (RETR, then DELE, as fetchmail does).

Postroom runs as ``postroom serve pop3`` in its own process on a fresh data directory,
with its default logs (W3C, activity, debug) on. Dovecot is Debian's
``dovecot-pop3d`` (installed with ``apt-get install --no-install-recommends`` when
missing), run as a private instance: its own configuration, base and state
directories in a temporary directory, a loopback port, a passwd-file with the 20
users, Maildir mail owned by ``nobody``, and its own log file. It is stopped at the
end, as is anything the package's post-install started.

Run: ``make bench-pop3`` (needs root for apt-get and for Dovecot's privilege
separation). ``--runs`` pairs of runs (5: a run lasts about a second) on fresh
servers, each after an ``os.sync()`` of what the set-up wrote, who goes first
alternating; prints one line per run, the medians and the median of the pairs'
ratios (this machine's speed drifts by tens of percent over minutes, so only runs
side by side compare); ``--no-dovecot`` measures Postroom alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import MESSAGE_SIZE as SIZE
from common import alternating, free_port, make_message, serving, wait_listeners, wait_port
from dovecot_peer import dovecot
from postroom_home import PASSWORD, fill_mailboxes, listen_plain, new_home

CLIENTS = 20
MESSAGES = 500


# -- the client ---------------------------------------------------------------------------

class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def command(self, line: str) -> bytes:
        self.writer.write(line.encode() + b"\r\n")
        reply = await self.reader.readline()
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"{line.split()[0]}: {reply!r}")
        return reply

    async def body(self) -> int:
        """The message after ``+OK``: octets without the byte-stuffing and end marker."""
        data = await self.reader.readuntil(b"\r\n.\r\n")
        return len(data) - 3 - data.count(b"\r\n..") - data.startswith(b"..")


async def login(port: int, user: str) -> Client:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    client = Client(reader, writer)
    greeting = await reader.readline()
    assert greeting.startswith(b"+OK"), greeting
    await client.command(f"USER {user}")
    await client.command(f"PASS {PASSWORD}")
    return client


async def retrieve(client: Client) -> int:
    stat = await client.command("STAT")
    count = int(stat.split()[1])
    octets = 0
    for n in range(1, count + 1):
        await client.command(f"RETR {n}")
        octets += await client.body()
        await client.command(f"DELE {n}")
    await client.command("QUIT")
    client.writer.close()
    if count != MESSAGES or octets != MESSAGES * SIZE:
        raise RuntimeError(f"got {count} messages, {octets} octets")
    return count


async def run_clients(port: int, users: list[str]) -> tuple[float, float]:
    started = time.perf_counter()
    clients = await asyncio.gather(*(login(port, u) for u in users))
    logged_in = time.perf_counter()
    counts = await asyncio.gather(*(retrieve(c) for c in clients))
    done = time.perf_counter()
    assert sum(counts) == CLIENTS * MESSAGES
    return logged_in - started, done - logged_in


def measure(name: str, port: int, users: list[str]) -> float:
    # The 10,000 message files just written go to disk now, not as background
    # writeback during a transfer of about a second (it landed in some runs, not others).
    os.sync()
    login_time, elapsed = asyncio.run(run_clients(port, users))
    rate = CLIENTS * MESSAGES / elapsed
    print(f"{name:9} {rate:9.0f} messages/s  ({CLIENTS * MESSAGES} messages in {elapsed:.2f} s;"
          f" {CLIENTS} logins {login_time:.2f} s)", flush=True)
    return rate


# -- Postroom -----------------------------------------------------------------------------

def postroom(work: Path, logs: bool = True) -> float:
    home = work / "postroom"
    port = free_port()
    with new_home(home) as store:
        fill_mailboxes(store, CLIENTS, MESSAGES, make_message)
        listen_plain(store, "pop3", port)
        settings = store.settings
        # One accept process per CPU, as Dovecot runs a process per connection.
        settings.set("pop3.general.accept_processes", 0)
        for log in ("w3c_enabled", "activity_enabled", "debug_enabled"):
            settings.set(f"pop3.logging.{log}", logs)
    with serving(home, "pop3"):
        wait_port(port)
        wait_listeners(port, min(8, os.cpu_count() or 1))
        return measure("Postroom" if logs else "(no logs)", port,
                       [f"u{n}@bench" for n in range(CLIENTS)])


# -- Dovecot ------------------------------------------------------------------------------

def dovecot_rate(work: Path) -> float:
    with dovecot(work, "pop3", "postroom-bench", CLIENTS, MESSAGES, make_message) as port:
        return measure("Dovecot", port, [f"u{n}" for n in range(CLIENTS)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5,
                        help="pairs of runs on fresh servers, who goes first alternating")
    parser.add_argument("--no-dovecot", action="store_true", help="measure Postroom only")
    parser.add_argument("--no-logs", action="store_true",
                        help="also measure Postroom with its three POP3 logs off")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="postroom-pop3-bench-"))
    os.chmod(work, 0o755)       # Dovecot's users reach their run's directory below it
    servers = ["postroom"] if args.no_dovecot else ["postroom", "dovecot"]
    rates: dict[str, list[float]] = {server: [] for server in servers}
    try:
        for i, server in alternating(servers, args.runs):
            root = work / f"{server}-{i}"
            root.mkdir()
            rates[server].append(postroom(root) if server == "postroom" else
                                 dovecot_rate(root))
            if server == "postroom" and args.no_logs:
                postroom(root / "quiet", logs=False)
            shutil.rmtree(root, ignore_errors=True)
        if args.no_dovecot:
            return
        # The machine's speed drifts by tens of percent over minutes: the runs of a
        # pair are next to each other, so each pair's ratio is the fairer figure.
        pairs = [a / b for a, b in zip(rates["postroom"], rates["dovecot"], strict=True)]
        print(f"median    Postroom {statistics.median(rates['postroom']):.0f}, Dovecot "
              f"{statistics.median(rates['dovecot']):.0f} messages/s")
        print(f"ratio     {statistics.median(pairs):.2f} x Dovecot, median of the pairs "
              f"({', '.join(f'{r:.2f}' for r in pairs)}; target: at least 1.0)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
