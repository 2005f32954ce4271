"""Benchmark: SMTP in to the mailbox, end to end, against Postfix relaying the same load.

Issue 5's yardstick for the MTA and the post office connector: accepting fast
(``bench/smtp_accept.py``) is worth little if the queue behind it drains slowly. Postfix's
``smtp-source`` sends 10,000 messages of 5 KB over 20 parallel sessions to

* Postroom, ``postroom --home DIR serve`` with every service (SMTP, MTA, post office
  connector ...), on a fresh data directory with one post office, domain and mailbox;
  the clock stops when the mailbox holds every message, read every 50 ms from the
  SQLite store opened read-only (``mailbox.message_count``);
* a private, loopback-only Postfix (``bench/postfix_peer.py``) that relays the domain to
  Postfix's own ``smtp-sink`` on another loopback port: smtpd, cleanup, the queue on
  disk, the queue manager and the smtp client, i.e. Postfix's whole path for one
  message; the clock stops when ``smtp-sink -c`` has counted every message.

Both clocks start with ``smtp-source``; the time it takes is reported too (accept only),
with the server's CPU time (every process of its tree, from ``/proc/PID/stat``). Each
side runs ``--runs`` times on fresh instances, alternating which goes first; the
medians are compared. Target: Postroom >= 1.0 x Postfix.

    .venv/bin/python bench/smtp_to_mailbox.py [--runs 3] [--messages 10000] [--json]

Fairness: both check the recipient (Postroom: the mailbox; Postfix:
``relay_recipient_maps``), both log every message, neither does DNS (Postroom's
resolver is a loopback stub answering NXDOMAIN; Postfix uses native lookups of an IP
literal). Postfix keeps its defaults for delivery concurrency (20 per destination)
and connection caching; Postroom keeps its defaults for the MTA and the connector.

Known limits: needs root (Postfix's daemons run as ``postfix``); installs Debian's
``postfix`` package when ``smtp-source`` is missing. The mailbox count is polled, so a
time is known to 50 ms. Until ``postroom serve`` runs the MTA and the post office
connector, the Postroom side ends with a timeout that says how far delivery got.
Figures are noisy (+-20 %); compare the ratio taken in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from postfix_peer import PeerError, PostfixPeer, ensure_smtp_source, free_port, wait_for_banner
from smtp_accept import (
    DOMAIN,
    LOCAL_PART,
    BenchError,
    DnsStub,
    PostroomServer,
    make_postroom_template,
    postroom_cli,
    smtp_source,
)

TARGET_RATIO = 1.0
POLL_SECONDS = 0.05
SETTLE_SECONDS = 0.5  # after the greeting, so that every daemon/service is up (both sides)


# -- CPU of a whole process tree ---------------------------------------------------------


def tree_pids(root: int) -> list[int]:
    """``root`` and all its living descendants (from ``/proc/PID/task/TID/children``)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo += [int(p) for p in (task / "children").read_text().split()]
    return found


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of the tree, including children that were already reaped.

    utime + stime + cutime + cstime of every living process: a child that exited and
    was waited for is in its parent's cutime/cstime, a living one only in its own.
    """
    total = 0
    for pid in tree_pids(root):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def command_lines(root: int) -> list[str]:
    """The command lines of the tree below ``root`` (which services are running)."""
    lines = []
    for pid in tree_pids(root)[1:]:
        with contextlib.suppress(OSError):
            raw = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0")
            lines.append(raw.replace(b"\0", b" ").decode(errors="replace"))
    return lines


# -- one timed load: smtp-source in a thread, the delivered count polled ------------------


def timed_load(source: str, port: int, args: argparse.Namespace,
               delivered: Callable[[], int], cpu: Callable[[], float]) -> dict[str, Any]:
    """Send the load; return accept and delivery times, counts and CPU seconds.

    ``delivered()`` is polled every 50 ms until it reaches ``--messages``, smtp-source
    fails, or ``--timeout`` seconds have passed since the first connection.
    """
    box: dict[str, Any] = {}

    def send() -> None:
        box.update(smtp_source(source, port, args.messages, args.sessions, args.size,
                               False, args.timeout))

    cpu_before = cpu()
    sender = threading.Thread(target=send, daemon=True)
    started = time.perf_counter()
    sender.start()
    count, deliver_seconds, error = 0, None, None
    while True:
        count = delivered()
        now = time.perf_counter() - started
        if count >= args.messages:
            deliver_seconds = now
            break
        if not sender.is_alive() and box.get("error"):
            error = f"smtp-source: {box['error']}"
            break
        if now > args.timeout:
            error = (f"timed out after {args.timeout:g} s: {count:,} of {args.messages:,} "
                     "messages delivered")
            break
        time.sleep(POLL_SECONDS)
    cpu_used = cpu() - cpu_before
    sender.join(args.timeout if error is None else 1)
    return {"accept_seconds": box.get("seconds"), "completed": box.get("completed", 0),
            "deliver_seconds": deliver_seconds, "delivered": count, "error": error,
            "cpu_seconds": cpu_used, "source_command": box.get("command")}


# -- Postfix relaying to smtp-sink ---------------------------------------------------------


class SmtpSink:
    """``smtp-sink -c`` on 127.0.0.1:PORT; counts the messages it received (``mesg=N``)."""

    def __init__(self, binary: str, port: int) -> None:
        self.port = port
        self.messages = 0
        self.proc = subprocess.Popen(
            [binary, "-c", "-4", "-h", "sink.bench.invalid", "-u", "nobody",
             f"127.0.0.1:{port}", "256"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        # The counters are rewritten in place ("sess=N quit=N mesg=N\r"): keep the tail.
        assert self.proc.stdout is not None
        tail = b""
        while chunk := self.proc.stdout.read1(65536):
            tail = (tail + chunk)[-256:]
            counts = re.findall(rb"mesg=(\d+)", tail)
            if counts:
                self.messages = max(self.messages, int(counts[-1]))

    def start(self) -> None:
        try:
            wait_for_banner(self.port, 10, alive=lambda: self.proc.poll() is None)
        except PeerError as exc:
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise BenchError(f"smtp-sink did not start: {exc} {err.strip()}") from None

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(2)


class RelayPeer(PostfixPeer):
    """The private Postfix of ``postfix_peer.py``, relaying its domain to smtp-sink.

    The peer's ``main.cf`` is edited with ``postconf -e`` before Postfix first reads it
    (just before ``set-permissions``): the domain moves from ``mydestination`` to
    ``relay_domains`` with the one known recipient in ``relay_recipient_maps``, mail
    is no longer put on hold, and the relay transport goes to ``[127.0.0.1]:SINK`` (an
    IP literal: no MX or host lookup).
    """

    def __init__(self, root: Path, port: int, sink_port: int) -> None:
        super().__init__(root, port, DOMAIN, LOCAL_PART)
        self.sink_port = sink_port

    def _postfix(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if args[:1] == ("set-permissions",):
            edits = {
                "mydestination": "",
                "relay_domains": DOMAIN,
                "relay_recipient_maps": f"inline:{{ {LOCAL_PART}@{DOMAIN}=ok }}",
                "relay_transport": f"relay:[127.0.0.1]:{self.sink_port}",
                "smtpd_end_of_data_restrictions": "",
                "disable_dns_lookups": "yes",
            }
            done = subprocess.run(
                ["postconf", "-c", str(self.config), "-e",
                 *(f"{k} = {v}" for k, v in edits.items())],
                capture_output=True, text=True, timeout=60)
            if done.returncode:
                raise PeerError(f"postconf -e failed: {done.stderr.strip()}")
        return super()._postfix(*args, check=check)

    def in_queue(self) -> int:
        """Messages still in Postfix's queue (incoming, active, deferred, hold)."""
        return sum(len(files) for sub in ("incoming", "active", "deferred", "hold")
                   for _, _, files in os.walk(self.queue / sub))


def run_postfix(source: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    sink = SmtpSink(shutil.which("smtp-sink") or "/usr/sbin/smtp-sink", free_port())
    try:
        sink.start()
        peer = RelayPeer(root / "postfix", free_port(), sink.port)
        (root / "postfix").mkdir()
        with peer:
            time.sleep(SETTLE_SECONDS)
            master = peer.master_pid()
            result = timed_load(source, peer.port, args, lambda: sink.messages,
                                lambda: tree_cpu_seconds(master) if master else 0.0)
            result["left_in_queue"] = peer.in_queue()
            if result["error"]:
                result["log_tail"] = peer.log_tail()
    finally:
        sink.stop()
    return {"server": "postfix", **result}


# -- Postroom, every service ---------------------------------------------------------------


class PostroomSuite(PostroomServer):
    """``postroom --home DIR serve`` (all services) as a process group of its own."""

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [self.binary, "--home", str(self.home), "serve"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        proc = self.proc
        try:
            wait_for_banner(self.port, 60, alive=lambda: proc.poll() is None)
        except PeerError as exc:
            raise BenchError(f"postroom serve did not start: {exc}\n"
                             f"{self.log_tail()}") from None

    def stop(self) -> None:
        try:
            super().stop()
        finally:  # whatever SIGTERM left behind (a service child that hung)
            if self.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)

    def mailbox_counter(self) -> tuple[sqlite3.Connection, Callable[[], int]]:
        """A read-only connection to the store and a function counting the mailbox."""
        db = self.home / "postroom.db"  # store/datadir.py: DataDir.database
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5,
                               check_same_thread=False)

        def count() -> int:
            row = conn.execute("SELECT message_count FROM mailbox WHERE name = ?",
                               (LOCAL_PART,)).fetchone()
            return int(row[0]) if row else 0

        return conn, count


def run_postroom(source: str, binary: str, template: Path, root: Path,
                 args: argparse.Namespace) -> dict[str, Any]:
    server = PostroomSuite(binary, template, root)
    conn: sqlite3.Connection | None = None
    try:
        server.start()
        time.sleep(SETTLE_SECONDS)
        services = command_lines(server.pid)
        conn, count = server.mailbox_counter()
        before = count()
        result = timed_load(source, server.port, args, lambda: count() - before,
                            lambda: tree_cpu_seconds(server.pid))
        result["services"] = services
        queued, _, rows = server.queued()
        result["left_in_queue"], result["queues"] = queued, rows
        if result["error"]:
            where = ", ".join(f"{r.get('queue')} {r.get('state')} {r.get('count')}"
                              for r in rows if r.get("count"))
            result["error"] += (f"; {result['completed']:,} accepted by smtp, "
                                f"{queued:,} still queued ({where or 'none'})")
            if result["delivered"] == 0 and result["completed"]:
                result["error"] += (" (nothing reached the mailbox: does `postroom serve` "
                                    "run the mta and postoffice services yet?)")
            result["log_tail"] = server.log_tail()
    finally:
        if conn is not None:
            conn.close()
        server.stop()
    return {"server": "postroom", **result, "exit_code": server.exit_code}


def make_template(binary: str, home: Path, dns_port: int) -> None:
    """smtp_accept's data directory; the other listeners (if any run) stay on loopback."""
    make_postroom_template(binary, home, dns_port)
    for key, value in {"pop3.bind": "127.0.0.1", "imap.bind": "127.0.0.1",
                       "pop3.general.alternate_port_enabled": "false",
                       "imap.general.alternate_port_enabled": "false"}.items():
        postroom_cli(binary, home, "settings", "set", key, value)


# -- report --------------------------------------------------------------------------------


def median(runs: list[dict[str, Any]], server: str, key: str) -> float | None:
    values = [r[key] for r in runs if r["server"] == server and r["ok"]]
    return statistics.median(values) if values else None


def print_table(report: dict[str, Any]) -> None:
    p = report["parameters"]
    print(f"SMTP to mailbox: {p['messages']:,} messages x {p['size']:,} bytes, "
          f"{p['sessions']} sessions, smtp-source -> 127.0.0.1 -> "
          "Postroom mailbox | Postfix -> smtp-sink")
    print(f"{'server':<9} {'run':>3} {'accept s':>8} {'deliver s':>9} {'msgs/s':>8} "
          f"{'delivered':>9} {'cpu ms/msg':>10}  status")
    for r in report["runs"]:
        deliver = r["deliver_seconds"]
        accept = r["accept_seconds"]
        print(f"{r['server']:<9} {r['run']:>3} "
              f"{'' if accept is None else f'{accept:.2f}':>8} "
              f"{'' if deliver is None else f'{deliver:.2f}':>9} "
              f"{r['rate'] or 0:>8,.0f} {r['delivered']:>9,} "
              f"{r['cpu_ms_per_message']:>10.2f}  "
              f"{'ok' if r['ok'] else 'FAILED: ' + (r['error'] or 'count mismatch')}")
    s = report["summary"]
    for name in ("postfix", "postroom"):
        if s.get(name) is not None:
            print(f"median {name}: {s[name]:,.0f} msgs/s delivered "
                  f"(accept only: {s[name + '_accept']:,.0f} msgs/s)")
    if s.get("ratio") is not None:
        verdict = "meets" if s["ratio"] >= TARGET_RATIO else "MISSES"
        print(f"ratio postroom/postfix: {s['ratio']:.2f} ({verdict} the target "
              f">= {TARGET_RATIO:.1f})")
    elif len(report["servers"]) == 2:
        print("ratio postroom/postfix: n/a (a side has no successful run)")
    if report.get("dns_queries") is not None:
        print(f"DNS queries Postroom sent to the stub: {report['dns_queries']}")
    for r in report["runs"]:
        if not r["ok"]:
            if r.get("services") is not None:
                print(f"\n{r['server']} run {r['run']} processes: "
                      + ("; ".join(r["services"]) or "none"))
            if r.get("log_tail"):
                print(f"{r['server']} run {r['run']} log tail:\n{r['log_tail']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--size", type=int, default=5 * 1024, help="payload bytes")
    parser.add_argument("--runs", type=int, default=3, help="runs per server (median)")
    parser.add_argument("--only", choices=("both", "postroom", "postfix"), default="both")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds a run may take from the first message to the last "
                        "delivery")
    parser.add_argument("--postroom", default=str(Path(sys.executable).with_name("postroom")),
                        help="the postroom command (default: beside this Python)")
    parser.add_argument("--dir", type=Path, default=None, help="where temporary data goes")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the target is missed (exit 2 on a failed run)")
    args = parser.parse_args()
    for name in ("messages", "sessions", "size", "runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")

    # SIGTERM (and SIGINT, even where a shell ignored it) unwind through the finally
    # blocks, so the servers, the sink and the temporary directory go away.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    source = ensure_smtp_source()
    servers = ["postfix", "postroom"] if args.only == "both" else [args.only]
    base = Path(tempfile.mkdtemp(prefix="postroom-deliver-bench-", dir=args.dir))
    base.chmod(0o755)  # Postfix's daemons run as the postfix user and need to traverse it
    dns = DnsStub()
    dns.start()
    runs: list[dict[str, Any]] = []
    try:
        template = base / "postroom-template"
        if "postroom" in servers:
            make_template(args.postroom, template, dns.port)
        for i in range(1, args.runs + 1):
            for server in servers if i % 2 else list(reversed(servers)):
                root = base / f"{server}-{i}"
                root.mkdir()
                try:
                    if server == "postfix":
                        result = run_postfix(source, root, args)
                    else:
                        result = run_postroom(source, args.postroom, template, root, args)
                finally:
                    shutil.rmtree(root, ignore_errors=True)
                result["run"] = i
                seconds = result["deliver_seconds"]
                result["rate"] = args.messages / seconds if seconds else None
                accept = result["accept_seconds"]
                result["accept_rate"] = result["completed"] / accept if accept else None
                result["cpu_ms_per_message"] = (1000 * result["cpu_seconds"]
                                                / max(result["completed"], 1))
                result["ok"] = (not result["error"] and result["delivered"] >= args.messages
                                and result["completed"] == args.messages)
                runs.append(result)
                if not args.json:
                    print(f"  {server} run {i}: "
                          + (f"{result['rate']:,.0f} msgs/s" if result["ok"]
                             else f"FAILED: {result['error'] or 'count mismatch'}"),
                          file=sys.stderr)
    finally:
        dns.close()
        shutil.rmtree(base, ignore_errors=True)

    summary: dict[str, Any] = {}
    for name in servers:
        summary[name] = median(runs, name, "rate")
        summary[f"{name}_accept"] = median(runs, name, "accept_rate")
    if summary.get("postfix") and summary.get("postroom"):
        summary["ratio"] = summary["postroom"] / summary["postfix"]
    summary["target_ratio"] = TARGET_RATIO
    report = {
        "parameters": {"messages": args.messages, "sessions": args.sessions,
                       "size": args.size, "runs": args.runs, "timeout": args.timeout},
        "servers": servers, "runs": runs, "summary": summary,
        "dns_queries": dns.queries if "postroom" in servers else None,
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_table(report)

    if not args.check:
        return 0
    if any(not r["ok"] for r in runs):
        return 2
    return 1 if summary.get("ratio") is not None and summary["ratio"] < TARGET_RATIO else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BenchError, PeerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
