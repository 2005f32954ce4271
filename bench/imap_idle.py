"""Many IMAP connections in IDLE: the server's memory, and how long one new message
takes to reach all of them (issue 8 benchmark: 10,000 connections, RSS under 1 GiB).

What is measured, against ``postroom serve imap`` in its own process on loopback
(default logs on):

1. the server's RSS (``VmRSS`` of ``/proc/PID/status``) once it listens, and again
   when every connection is logged in, has selected INBOX and is in IDLE (RFC 2177);
2. then one message is appended with ``store.messages.append`` into the watched INBOX
   (as the post office connector would deliver it, from another process), and the
   clock runs until every connection has read ``* n EXISTS``.

The client is one asyncio process (``--connections`` sockets). The open-files limit is
raised to the hard limit here (root raises the hard limit too), and the server, spawned
as a child, inherits it. Every connection logs in to the same mailbox(es): a login costs
an Argon2 verification (about 28 ms of CPU), so 10,000 logins take minutes on two
CPUs; ``--connections 2000`` is quicker, and the script then prints the RSS per
connection and its extrapolation to 10,000.

Run: ``make bench-imap-idle`` or ``.venv/bin/python bench/imap_idle.py
[--connections 10000] [--mailboxes 1]``. No root needed below 1,024 connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import free_port, rss, serving, wait_port
from postroom_home import PASSWORD, POSTOFFICE, listen_plain, new_home

TARGET_RSS = 1 << 30
LOGIN_CONCURRENCY = 64


def raise_nofile(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
    new = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return int(new)


def setup(home: Path, mailboxes: int, port: int) -> None:
    with new_home(home) as store:
        for n in range(mailboxes):
            store.directory.create_mailbox(POSTOFFICE, f"idle{n}", PASSWORD)
        listen_plain(store, "imap", port)


class Idler:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.exists: int | None = None

    async def command(self, tag: str, line: str) -> list[bytes]:
        self.writer.write(f"{tag} {line}\r\n".encode())
        lines = []
        while True:
            reply = await self.reader.readline()
            if not reply:
                raise ConnectionError("closed")
            lines.append(reply)
            if reply.startswith(tag.encode() + b" "):
                if not reply.startswith(tag.encode() + b" OK"):
                    raise RuntimeError(f"{line}: {reply!r}")
                return lines


async def connect(port: int, user: str, gate: asyncio.Semaphore) -> Idler:
    async with gate:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 16)
        idler = Idler(reader, writer)
        await reader.readline()
        await idler.command("a", f'LOGIN {user} "{PASSWORD}"')
        for line in await idler.command("b", "SELECT INBOX"):
            if line.endswith(b" EXISTS\r\n"):
                idler.exists = int(line.split()[1])
        writer.write(b"c IDLE\r\n")
        reply = await reader.readline()
        if not reply.startswith(b"+"):
            raise RuntimeError(f"IDLE: {reply!r}")
        return idler


async def until_exists(idler: Idler, started: float) -> float:
    want = f" {(idler.exists or 0) + 1} EXISTS".encode()
    while True:
        line = await idler.reader.readline()
        if not line:
            raise ConnectionError("closed while idling")
        if want in line:
            return time.perf_counter() - started


async def run(port: int, home: Path, server_pid: int, connections: int,
              mailboxes: int) -> None:
    from postroom.store import Store

    gate = asyncio.Semaphore(LOGIN_CONCURRENCY)
    before = rss(server_pid)
    started = time.perf_counter()
    idlers = await asyncio.gather(*(connect(port, f"idle{n % mailboxes}@bench", gate)
                                    for n in range(connections)))
    ready = time.perf_counter() - started
    await asyncio.sleep(1.0)
    after = rss(server_pid)
    print(f"connections   {connections} logged in, selected and idling in {ready:.1f} s",
          flush=True)
    print(f"server RSS    {before / 2**20:.0f} MiB listening, {after / 2**20:.0f} MiB with "
          f"{connections} idling: {(after - before) / connections / 1024:.1f} KiB each",
          flush=True)
    projected = before + (after - before) / connections * 10_000
    verdict = "met" if projected < TARGET_RSS else "MISSED"
    label = "measured" if connections == 10_000 else "projected to 10,000"
    print(f"RSS at 10,000 {projected / 2**20:.0f} MiB ({label}); target < 1024 MiB: {verdict}",
          flush=True)
    with Store.open(home, migrate=False) as store:
        waits = [asyncio.ensure_future(until_exists(i, time.perf_counter())) for i in idlers]
        for n in range(mailboxes):
            await asyncio.to_thread(
                store.messages.append, "bench", f"idle{n}", "Inbox",
                b"From: a@bench.test\r\nSubject: wake up\r\n\r\nhello\r\n")
        times = await asyncio.gather(*waits)
    times = sorted(times)
    print(f"new message   first connection after {times[0] * 1000:.0f} ms, median "
          f"{times[len(times) // 2] * 1000:.0f} ms, all {connections} after "
          f"{times[-1] * 1000:.0f} ms (woken by the store, fallback poll 0.5 s; "
          "issue: within 1 s)",
          flush=True)
    for idler in idlers:
        idler.writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--mailboxes", type=int, default=1,
                        help="mailboxes the connections share (all idle on INBOX)")
    args = parser.parse_args()
    limit = raise_nofile(args.connections * 2 + 1024)
    if limit < args.connections + 256:
        sys.exit(f"open-files limit {limit} is too low for {args.connections} connections")
    work = Path(tempfile.mkdtemp(prefix="postroom-imap-idle-"))
    try:
        home = work / "postroom"
        port = free_port()
        setup(home, args.mailboxes, port)
        with serving(home, "imap", stop_timeout=20) as server:
            wait_port(port)
            time.sleep(0.5)
            asyncio.run(run(port, home, server.pid, args.connections, args.mailboxes))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
