"""Benchmark: what one message costs the MTA and the post office connector (SF).

Why: issue 5's yardstick is end to end (``bench/smtp_to_mailbox.py``: SMTP in, mailbox
out, against Postfix), but on a 2-vCPU machine every service shares the same two cores,
so what decides the end-to-end rate is the CPU each stage spends per message. This
script measures the two delivery stages alone, without SMTP, so a change to either
shows at once and can be profiled:

* ``mta``: N messages are queued in ``MTA.inbound`` as the SMTP service queues them
  (recipient already resolved to ``[SF:po/mailbox]``, ``extra["rcpt"]`` with the
  address given at RCPT, a ``Received`` line), then the real MTA service
  (:class:`~postroom.mta.service.MtaService`: its QueueWorker, ``mta.general.max_threads``
  threads, its logs) routes them to ``SF.outgoing``;
* ``sf``: N messages are queued in ``SF.outgoing`` as the MTA leaves them, then the real
  post office service (:class:`~postroom.connectors.postoffice.connector.PostOfficeService`)
  delivers them into one mailbox;
* ``both``: queued in ``MTA.inbound``, both services in one process until the mailbox
  holds every message (``postroom serve`` runs them in two processes; the CPU figure
  is their sum either way).

For each stage: messages per second (wall clock from the service's start until its
worker has finished every entry) and CPU milliseconds per message
(:func:`time.process_time`, every thread of the process: workers, the group-commit
writers, the dispatcher). Messages are 5 KB, like ``smtp-source``'s in the end-to-end
benchmark. Queueing the messages is not measured.

    .venv/bin/python bench/delivery_stages.py [--stage mta|sf|both] [--messages 2000]
        [--runs 1] [--profile] [--profile-out FILE] [--dir PATH] [--json]

``--profile`` runs cProfile in every thread started during the measured part
(``threading.setprofile``) and prints the functions with the most own time, summed
over all threads, and the time per thread kind. cProfile roughly doubles the cost of
Python calls, so read it for proportions; for where threads really hold the GIL::

    /work/main/.venv/bin/py-spy record -r 200 -f raw --threads --gil -o out.txt -- \\
        .venv/bin/python bench/delivery_stages.py --stage sf

Data directories are deleted only at the end: ext4 makes creating files slow for a
minute or more after many were deleted (its inode allocator skips recently freed
inodes), which would charge one run's clean-up to the next. For the same reason, do
not compare a run started right after a test suite or another benchmark.

Known limits: the queue is filled before the service starts, so the worker drains a
backlog (large claims and commit batches), as it does under a burst; a trickle costs
more per message. Figures are noisy (±10-20 % on a busy 2-vCPU machine): compare
runs made one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import stop_process
from postroom.store import Store
from postroom.store.initialise import initialise
from postroom.store.queue import Envelope

POSTOFFICE = "bench"
DOMAIN = "bench.test"
MAILBOX = "user"
SENDER = "sender@remote.test"
SIZE = 5 * 1024
QUEUES = {"mta": "MTA.inbound", "sf": "SF.outgoing", "both": "MTA.inbound"}


class BenchError(Exception):
    """The run did not deliver what was queued."""


def message(n: int) -> bytes:
    """A 5 KB message shaped like smtp-source's, with the Received line SMTP adds."""
    head = (f"Received: from client.remote.test (client.remote.test [127.0.0.1])\r\n"
            f"\tby mail.{DOMAIN} (Postroom) with ESMTP id B{n:08d}\r\n"
            f"\tfor <{MAILBOX}@{DOMAIN}>; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            f"From: <{SENDER}>\r\nTo: <{MAILBOX}@{DOMAIN}>\r\n"
            f"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            f"Message-Id: <{n}.bench@remote.test>\r\nSubject: bench message {n}\r\n\r\n")
    line = b"La de da de da 1.\r\n"
    body = line * ((SIZE - len(head)) // len(line) + 1)
    return head.encode() + body[:SIZE - len(head)]


def envelope() -> Envelope:
    target = f"[SF:{POSTOFFICE}/{MAILBOX}]"
    return Envelope(
        sender=f"[SMTP:{SENDER}]", recipients=[target], client_ip="127.0.0.1",
        extra={"helo": "client.remote.test", "listener": "127.0.0.1:25", "tls": None,
               "smtputf8": False, "body": None, "ret": None, "envid": None,
               "rcpt": [{"address": f"{MAILBOX}@{DOMAIN}", "target": target, "notify": [],
                         "orcpt": None}],
               "flags": []})


def prepare(root: Path, stage: str, count: int) -> None:
    """A fresh data directory with ``count`` messages queued for ``stage``."""
    initialise(root, hostname=f"mail.{DOMAIN}")
    with Store.open(root) as store:
        directory = store.directory
        directory.create_postoffice(POSTOFFICE)
        directory.create_domain(DOMAIN, POSTOFFICE)
        directory.create_mailbox(POSTOFFICE, MAILBOX, "Bench-pass-word-1234!")
        queue = QUEUES[stage]
        futures = [store.queue.enqueue_async(queue, envelope(), message(n))
                   for n in range(count)]
        for future in futures:
            future.result()


class ThreadProfiles:
    """cProfile in every thread started while active, plus the calling thread."""

    def __init__(self) -> None:
        self.profiles: list[tuple[str, cProfile.Profile]] = []
        self._lock = threading.Lock()

    def _start_thread(self, *_args: Any) -> None:
        profile = cProfile.Profile()
        with self._lock:
            self.profiles.append((threading.current_thread().name, profile))
        profile.enable()          # replaces this hook for the rest of the thread

    def start(self) -> None:
        threading.setprofile(self._start_thread)
        self._start_thread()

    def stop(self) -> None:
        threading.setprofile(None)  # type: ignore[arg-type]

    def report(self, out: Path | None, top: int = 35) -> str:
        """Own time summed over threads (call after every profiled thread ended)."""
        stats: pstats.Stats | None = None
        by_kind: dict[str, float] = {}
        for name, profile in self.profiles:
            profile.create_stats()
            kind = re.sub(r"[_-]?\d+(_\d+)?$", "", name) or name
            by_kind[kind] = by_kind.get(kind, 0.0) + sum(
                v[2] for v in profile.stats.values())  # type: ignore[attr-defined]
            if stats is None:
                stats = pstats.Stats(profile, stream=io.StringIO())
            else:
                stats.add(profile)
        assert stats is not None
        if out is not None:
            stats.dump_stats(str(out))
        text = io.StringIO()
        stats.stream = text  # type: ignore[attr-defined]
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        kinds = "\n".join(f"  {kind:30} {seconds:8.3f} s" for kind, seconds in
                          sorted(by_kind.items(), key=lambda kv: -kv[1]))
        return f"profiled time per thread kind:\n{kinds}\n{text.getvalue()}"


def start_py_spy(out: Path, extra: str, stage: str) -> subprocess.Popen[bytes]:
    """py-spy sampling this process (attached after the queue was filled)."""
    target = out.with_name(f"{out.stem}-{stage}{out.suffix}")
    command = [str(Path(sys.executable).with_name("py-spy")), "record", "-f", "raw",
               "-o", str(target), "--pid", str(os.getpid()), *shlex.split(extra)]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)                       # attached and sampling
    if spy.poll() is not None:
        raise BenchError(f"py-spy did not start: {spy.stderr.read().decode()[:300]}"
                         if spy.stderr else "py-spy did not start")
    print(f"py-spy samples of {stage}: {target}", file=sys.stderr)
    return spy


def stop_py_spy(spy: subprocess.Popen[bytes]) -> None:
    stop_process(spy, 30, signal.SIGINT)  # py-spy writes its file on SIGINT


class SqlCounter:
    """Counts the SQL statements every store connection runs (``--sql``)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._original: Any = None

    def start(self) -> None:
        from postroom.store.backends.sqlite import db

        self._original = original = db.connect

        def connect(*args: Any, **kwargs: Any) -> Any:
            conn = original(*args, **kwargs)
            conn.set_trace_callback(self._seen)
            return conn

        db.connect = connect

    def stop(self) -> None:
        from postroom.store.backends.sqlite import db

        db.connect = self._original

    def _seen(self, sql: str) -> None:
        key = re.sub(r"\s+", " ", re.sub(r"'[^']*'|\b\d+\b", "?", sql)).strip()[:110]
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def report(self, messages: int) -> str:
        total = sum(self.counts.values())
        lines = [f"SQL statements: {total / messages:.2f} per message"]
        for sql, count in sorted(self.counts.items(), key=lambda kv: -kv[1])[:40]:
            lines.append(f"  {count / messages:7.3f}  {sql}")
        return "\n".join(lines)


def thread_ticks() -> dict[int, tuple[str, int]]:
    """Each live thread's name and CPU clock ticks so far (from /proc, Linux only)."""
    result = {}
    for thread in threading.enumerate():
        try:
            with open(f"/proc/self/task/{thread.native_id}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError, TypeError):
            continue
        result[thread.native_id or 0] = (thread.name, int(fields[11]) + int(fields[12]))
    return result


def thread_cpu(before: dict[int, tuple[str, int]], count: int) -> dict[str, float]:
    """CPU ms per message of each kind of thread since ``before``."""
    ticks = os.sysconf("SC_CLK_TCK")
    result: dict[str, float] = {}
    for tid, (name, used) in thread_ticks().items():
        used -= before.get(tid, (name, 0))[1]
        kind = re.sub(r"[_-]?\d+(_\d+)?$", "", name) or name
        result[kind] = round(result.get(kind, 0.0) + used * 1000 / ticks / count, 3)
    return dict(sorted(result.items(), key=lambda kv: -kv[1]))


def _wait(workers: list[Any], count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(w.processed < count for w in workers):
        if time.monotonic() > deadline:
            done = ", ".join(f"{w.name}: {w.processed}" for w in workers)
            raise BenchError(f"timed out after {timeout:.0f} s ({done} of {count})")
        time.sleep(0.005)


def run_stage(root: Path, stage: str, count: int, profiles: ThreadProfiles | None,
              timeout: float) -> dict[str, Any]:
    from postroom.connectors.postoffice.connector import PostOfficeService
    from postroom.mta.service import MtaService

    store = Store.open(root)
    # Settings and the directory are read once at start in a real service too.
    store.settings.get("mta.general.max_threads")
    services: list[Any] = []
    if stage in ("mta", "both"):
        services.append(MtaService(store))
    if stage in ("sf", "both"):
        services.append(PostOfficeService(store))
    if profiles is not None:
        profiles.start()
    ticks0, usage0 = thread_ticks(), resource.getrusage(resource.RUSAGE_SELF)
    times0, cpu0, wall0 = os.times(), time.process_time(), time.perf_counter()
    try:
        for service in services:
            asyncio.run(service.start())
        workers = [s.worker for s in services]
        # The SF worker of "both" finishes last; every stage handles each message once.
        _wait(workers, count, timeout)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        times = os.times()
        per_thread = thread_cpu(ticks0, count)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        batches = {"queue": store.queue.writer_stats.mean_batch}  # type: ignore[attr-defined]
        if stage != "mta":
            batches["messages"] = store.messages.writer_stats.mean_batch  # type: ignore[attr-defined]
    finally:
        for service in reversed(services):
            asyncio.run(service.stop())
        store.close()
        if profiles is not None:
            profiles.stop()
    result = {"stage": stage, "messages": count, "seconds": round(wall, 3),
              "msg_per_s": round(count / wall, 1), "cpu_ms_per_msg": round(cpu * 1000 / count, 3),
              "user_ms_per_msg": round((times.user - times0.user) * 1000 / count, 3),
              "system_ms_per_msg": round((times.system - times0.system) * 1000 / count, 3),
              "threads": {w.name: w.threads() for w in workers},
              "mean_batch": {k: round(v, 1) for k, v in batches.items()},
              "cpu_ms_per_msg_by_thread": per_thread,
              "context_switches_per_msg": round(
                  (usage.ru_nvcsw + usage.ru_nivcsw - usage0.ru_nvcsw - usage0.ru_nivcsw)
                  / count, 1)}
    check(root, stage, count)
    return result


def check(root: Path, stage: str, count: int) -> None:
    """The stage did its work: every message routed, or delivered once."""
    with Store.open(root) as store:
        counts = {(r["queue"], r["state"]): r["count"] for r in store.queue.stats()["queues"]}
        if stage == "mta":
            routed = counts.get(("SF.outgoing", "ready"), 0)
            if routed != count or counts.get(("MTA.inbound", "ready")):
                raise BenchError(f"MTA routed {routed} of {count}: {counts}")
            return
        used = store.messages.list_messages(POSTOFFICE, MAILBOX, "Inbox")
        if len(used) != count or counts:
            raise BenchError(f"mailbox holds {len(used)} of {count}; queues: {counts}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=("mta", "sf", "both", "all"), default="all",
                        help="which stage to measure (all: mta, sf, then both)")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=1, help="runs per stage (best is kept)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile every thread; print the top functions")
    parser.add_argument("--profile-out", type=Path, help="also write pstats data here")
    parser.add_argument("--py-spy", type=Path, metavar="FILE",
                        help="sample the measured part with py-spy (raw format) into FILE")
    parser.add_argument("--py-spy-args", default="--threads -r 250",
                        help="extra py-spy record arguments (default: %(default)s)")
    parser.add_argument("--sql", action="store_true",
                        help="count the SQL statements run per message")
    parser.add_argument("--dir", type=Path, help="where data directories go (default: tmp)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.runs < 1:
        parser.error("--messages and --runs must be at least 1")
    stages = ["mta", "sf", "both"] if args.stage == "all" else [args.stage]
    base = Path(tempfile.mkdtemp(prefix="delivery-stages-", dir=args.dir))
    results = []
    try:
        for stage in stages:
            best: dict[str, Any] | None = None
            for n in range(args.runs):
                root = base / f"{stage}-{n}"
                prepare(root, stage, args.messages)
                profiles = ThreadProfiles() if args.profile else None
                spy = start_py_spy(args.py_spy, args.py_spy_args, stage) if args.py_spy else None
                sql = SqlCounter() if args.sql else None
                if sql is not None:
                    sql.start()
                try:
                    result = run_stage(root, stage, args.messages, profiles, args.timeout)
                finally:
                    if spy is not None:
                        stop_py_spy(spy)
                    if sql is not None:
                        sql.stop()
                if sql is not None:
                    print(f"== {stage} ==\n{sql.report(args.messages)}", file=sys.stderr)
                if profiles is not None:
                    print(f"== profile of {stage} ==", file=sys.stderr)
                    print(profiles.report(args.profile_out), file=sys.stderr)
                if best is None or result["cpu_ms_per_msg"] < best["cpu_ms_per_msg"]:
                    best = result
            assert best is not None
            results.append(best)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{'stage':6} {'messages':>8} {'seconds':>8} {'msg/s':>8} {'CPU ms/msg':>11} "
              f"{'user':>6} {'system':>6}  threads; mean commit batch")
        for r in results:
            threads = ", ".join(f"{k} {v}" for k, v in r["threads"].items())
            print(f"{r['stage']:6} {r['messages']:8} {r['seconds']:8.2f} {r['msg_per_s']:8.0f} "
                  f"{r['cpu_ms_per_msg']:11.3f} {r['user_ms_per_msg']:6.3f} "
                  f"{r['system_ms_per_msg']:6.3f}  {threads}; "
                  + ", ".join(f"{k} {v}" for k, v in r["mean_batch"].items()))
        for r in results:
            print(f"{r['stage']}: {r['context_switches_per_msg']} context switches per "
                  "message; CPU ms/msg by thread: " + ", ".join(
                      f"{k} {v}" for k, v in r["cpu_ms_per_msg_by_thread"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
