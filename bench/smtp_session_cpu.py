"""Benchmark: the CPU the SMTP session code spends on one message, without the network.

Why: ``bench/smtp_accept.py`` measures what an administrator gets (smtp-source against
``postroom serve smtp``), but on a 2-vCPU machine its CPU figures move by +-10 %
between runs (the server shares the cores with smtp-source and the kernel's socket
work), more than most single changes to the session code are worth. This script runs
the real :class:`~postroom.connectors.smtp.session.SmtpSession` with the real policy,
logs (activity and W3C on, debug off, as in the accept benchmark), spool and queue
(group commit, durable before the 250) on a fresh data directory, but hands it the
client's lines from memory instead of a socket. What it prints is the CPU time of the
event-loop thread per message (``time.thread_time``), which moves by about +-3 %:
use it to compare two versions of the session code run one after the other, and
``smtp_accept.py`` for the figure that counts.

Each session is what smtp-source sends: HELO, MAIL, RCPT, DATA with a 5 KB message,
QUIT, one command at a time; ``--concurrency`` sessions run at once (20, as in the
accept benchmark), so the queue's commits are shared as they are under load.

    .venv/bin/python bench/smtp_session_cpu.py [--messages 4000] [--runs 3]
        [--concurrency 20] [--profile] [--json]

``--profile`` runs cProfile over the measured part and prints the functions with the
most own time (cProfile inflates the cost of Python calls: read it for proportions).

Known limits: no sockets, so nothing of uvloop, the transport or the kernel is
measured (about half of the server's CPU per message in ``smtp_accept.py``), and no
TLS.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import itertools
import pstats
import shutil
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import uvloop

from common import BenchError, emit, run_main
from postroom.connectors.smtp.auth import Authenticator
from postroom.connectors.smtp.policy import InboundPolicy
from postroom.connectors.smtp.session import ServerContext, SmtpSession
from postroom.logs import ServiceLogs
from postroom.store import Store
from postroom.store.directory_cache import CachedDirectory
from postroom.store.initialise import initialise

HOSTNAME = "postroom.bench.invalid"
BODY = b"".join(b"Line %04d of the benchmark message, padded to about 64 octets...\r\n" % n
                for n in range(80))
SCRIPT = (b"HELO client.bench.example\r\n",
          b"MAIL FROM:<sender@bench.example>\r\n",
          b"RCPT TO:<user@bench.test>\r\n",
          b"DATA\r\n",
          b"From: <sender@bench.example>\r\nTo: <user@bench.test>\r\nSubject: bench\r\n\r\n"
          + BODY + b".\r\n",
          b"QUIT\r\n")


class MemoryStream:
    """What a session needs of a connection: the client's lines, one per read."""

    def __init__(self) -> None:
        self.lines = deque(SCRIPT)
        self.loop = asyncio.get_running_loop()
        self.sent = 0

    async def read(self, timeout: float) -> bytes:
        await asyncio.sleep(0)           # a real read yields to the loop too
        return self.lines.popleft() if self.lines else b""

    def write(self, data: bytes) -> None:
        self.sent += len(data)

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        return None


def make_context(home: Path) -> tuple[Store, ServerContext]:
    initialise(home, hostname=HOSTNAME)
    store = Store.open(home)
    directory = store.directory
    directory.create_postoffice("benchpo")
    directory.create_domain("bench.test", "benchpo")
    directory.create_mailbox("benchpo", "user", "Bench-password-1234!")
    settings = store.settings
    settings.set("smtp.security.sender_domain_must_resolve", False)
    settings.set("smtp.logging.debug_enabled", False)
    settings.set("smtp.inbound.max_connections_per_ip", 1000)
    logs = ServiceLogs("SMTP", store.home.logs)
    logs.apply_settings(settings, "smtp")
    ids = itertools.count(1)
    ctx = ServerContext(store=store, policy=InboundPolicy(settings, CachedDirectory(store)),
                        authenticator=Authenticator(store), logs=logs, tls=None,
                        resolver=lambda: None,  # type: ignore[arg-type,return-value]
                        hostname=lambda: HOSTNAME, connection_ids=lambda: next(ids))
    return store, ctx


async def measure(ctx: ServerContext, messages: int, concurrency: int,
                  profile: cProfile.Profile | None) -> dict[str, float]:
    async def session() -> None:
        stream = MemoryStream()
        await SmtpSession(ctx, stream, listener="mx", client_ip="127.0.0.1",  # type: ignore[arg-type]
                          server_ip="127.0.0.1", server_port=25).run()

    async def wave(size: int) -> None:
        await asyncio.gather(*(session() for _ in range(size)))

    await wave(concurrency)              # warm: imports, caches, the first commit
    waves, rest = divmod(messages, concurrency)
    cpu, wall = time.thread_time(), time.perf_counter()
    if profile is not None:
        profile.enable()
    for _ in range(waves):
        await wave(concurrency)
    if rest:
        await wave(rest)
    if profile is not None:
        profile.disable()
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    return {"cpu_us_per_message": cpu * 1e6 / messages,
            "wall_us_per_message": wall * 1e6 / messages}


def one_run(args: argparse.Namespace, profile: cProfile.Profile | None) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="postroom-session-cpu-", dir=args.dir))
    try:
        store, ctx = make_context(root / "data")
        try:
            result = uvloop.run(measure(ctx, args.messages, args.concurrency, profile))
            queued = sum(row.get("count", 0) for row in store.queue.stats()["queues"]
                         if row.get("queue") == "MTA.inbound")
        finally:
            store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if queued != args.messages + args.concurrency:
        raise BenchError(f"{queued} messages queued, expected "
                           f"{args.messages + args.concurrency}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--dir", default=None, help="where temporary data goes")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    profile = cProfile.Profile() if args.profile else None
    runs = [one_run(args, profile) for _ in range(max(1, args.runs))]
    cpu = sorted(r["cpu_us_per_message"] for r in runs)
    report = {"messages": args.messages, "concurrency": args.concurrency, "runs": runs,
              "median_cpu_us_per_message": cpu[len(cpu) // 2]}
    lines = [f"SMTP session code, {args.messages:,} messages of {len(SCRIPT[4]):,} octets, "
             f"{args.concurrency} sessions at once, no sockets"]
    lines += [f"  run {i}: {r['cpu_us_per_message']:.0f} us CPU per message "
              f"(event-loop thread), {r['wall_us_per_message']:.0f} us wall"
              for i, r in enumerate(runs, 1)]
    lines.append(f"median: {report['median_cpu_us_per_message']:.0f} us CPU per message")
    if profile is not None:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(30)
        lines.append(out.getvalue())
    emit(report, args.json, lambda _report: print("\n".join(lines)))
    return 0


if __name__ == "__main__":
    run_main(main)
