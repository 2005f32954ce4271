"""Benchmark: how fast Postroom's SMTP service accepts mail, against Postfix, same run.

Postfix's own load generator ``smtp-source`` sends 10,000 messages of 5 KB over 20
parallel sessions (a new connection per message: HELO, MAIL, RCPT, DATA, QUIT) to

* Postroom (``postroom --home DIR serve smtp`` on a fresh data directory with one post
  office, domain and mailbox), every 250 meaning the message is durable in the
  ``SMTP.inbound`` queue; the count is checked with ``postroom queue stats --json``;
* a private, loopback-only Postfix (``bench/postfix_peer.py``) that accepts into its hold
  queue, one fsynced queue file per message; the count is checked in the hold queue.

The two alternate (2-3 runs each, fresh instances every run) and the medians are
compared: the target is Postroom >= 2x Postfix (``/work/shared/DEPENDENCIES.md``:
only group commit can get there). Then a fresh Postroom receives one 50 MB message
while its RSS is sampled (``/proc/PID/status`` VmRSS every 10 ms, and VmHWM after
resetting it through ``/proc/PID/clear_refs``): the target is under 10 MB of growth,
i.e. the message is streamed to disk, never held whole in memory.

    .venv/bin/python bench/smtp_accept.py [--runs 3] [--messages 10000] [--json]

Fairness: both sides log each message (Postfix's maillog, Postroom's activity/W3C
logs; Postroom's debug log is off), neither does DNS (Postfix: no client name lookup;
Postroom: its resolver points at a loopback stub answering NXDOMAIN, whose query count
is reported), both check that the recipient exists, both allow 50 connections per IP.

Needs root (the Postfix peer runs as ``mail_owner = postfix``) and installs Debian's
``postfix`` package when ``smtp-source`` is missing. Traffic stays on 127.0.0.1.
A system Postfix on port 25, if any, is neither used nor touched.
Figures are noisy (+-20 %); compare the ratio taken in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import (
    BenchError,
    alternating,
    children,
    cpu_seconds,
    emit,
    free_port,
    median,
    run_directory,
    run_main,
    vm_status,
    wait_for_banner,
)
from postfix_peer import PostfixPeer, ensure_smtp_source
from postroom_home import init_postoffice, postroom_cli, set_settings

DOMAIN = "bench.test"
LOCAL_PART = "user"
RECIPIENT = f"{LOCAL_PART}@{DOMAIN}"
SENDER = "sender@bench.example"
HELO = "client.bench.example"
MAX_SIZE = 100 * 1024 * 1024  # both servers: room for the 50 MB message and its headers
TARGET_RATIO = 2.0
TARGET_GROWTH_BYTES = 10 * 1024 * 1024


# -- a DNS stub: Postroom must not reach the system resolver (not on loopback) -----------


class DnsStub(threading.Thread):
    """Answers every UDP query on 127.0.0.1 with NXDOMAIN, and counts the queries."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.queries = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                query, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(query) < 12:
                continue
            self.queries += 1
            # Same id and question; QR=1, RD copied, RA=1, RCODE=3; no answers.
            flags = bytes([0x80 | (query[2] & 0x01), 0x83])
            reply = query[:2] + flags + query[4:6] + b"\0\0\0\0\0\0" + query[12:]
            with contextlib.suppress(OSError):
                self.sock.sendto(reply, peer)

    def close(self) -> None:
        self._halt.set()
        self.join(2)
        self.sock.close()


# -- Postroom under test ---------------------------------------------------------------


# Every SMTP benchmark's Postroom: SMTP on loopback only, no submission or SMTPS port,
# no DNS check of the sender's domain, no debug log, Postfix's default of 50 connections
# per IP, and one accept process per CPU, as Postfix uses every core.
SMTP_SETTINGS = {
    "smtp.submission_port": "0",
    "smtp.smtps_port": "0",
    "smtp.bind": "127.0.0.1",
    "smtp.security.sender_domain_must_resolve": "false",
    "smtp.logging.debug_enabled": "false",
    "smtp.inbound.max_connections_per_ip": "50",
    "smtp.inbound.accept_processes": "0",
}


def make_postroom_template(binary: str, home: Path, dns_port: int) -> None:
    """A data directory with one post office, domain and mailbox, tuned like the peer."""
    init_postoffice(binary, home, DOMAIN)
    postroom_cli(binary, home, "mailbox", "create", f"{LOCAL_PART}@benchpo",
                 "--random-password")
    set_settings(binary, home, {
        **SMTP_SETTINGS,
        "smtp.inbound.advertised_max_message_size": str(MAX_SIZE),
        "dns.nameservers": f"127.0.0.1:{dns_port}",
    })


class PostroomServer:
    """``postroom --home DIR serve smtp`` as a child process; stopped with SIGTERM."""

    command: tuple[str, ...] = ("serve", "smtp")

    def __init__(self, binary: str, template: Path, root: Path) -> None:
        self.binary = binary
        self.home = root / "data"
        shutil.copytree(template, self.home, symlinks=True)
        self.port = free_port()
        postroom_cli(binary, self.home, "settings", "set", "smtp.port", str(self.port))
        self.log = root / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [self.binary, "--home", str(self.home), *self.command],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        proc = self.proc
        try:
            wait_for_banner(self.port, 60, alive=lambda: proc.poll() is None)
        except BenchError as exc:
            raise BenchError(f"postroom {' '.join(self.command)} did not start: {exc}\n"
                             f"{self.log_tail()}") from None

    def stop(self) -> None:
        if self.proc is None or self.exit_code is not None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.exit_code = self.proc.wait(10)
            raise BenchError(f"postroom {' '.join(self.command)} ignored SIGTERM for 30 s "
                             "(killed)") from None

    def queued(self) -> tuple[int, int, list[dict[str, Any]]]:
        """(entries, bytes, per-queue rows) from ``postroom queue stats --json``."""
        stats = json.loads(postroom_cli(self.binary, self.home, "queue", "stats", "--json"))
        rows = stats.get("queues", [])
        return (sum(int(r.get("count") or 0) for r in rows),
                sum(int(r.get("bytes") or 0) for r in rows), rows)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process and its accept processes."""
        return cpu_seconds([self.pid, *children(self.pid)])

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# -- the load ---------------------------------------------------------------------------


def smtp_source(binary: str, port: int, messages: int, sessions: int, size: int,
                keep_connections: bool, timeout: float) -> dict[str, Any]:
    """Run smtp-source; return seconds, completed DATA count (from -c) and any error."""
    cmd = [binary, "-c", "-s", str(sessions), "-m", str(messages), "-l", str(size),
           "-M", HELO, "-f", SENDER, "-t", RECIPIENT]
    if keep_connections:
        cmd.append("-d")
    cmd.append(f"127.0.0.1:{port}")
    started = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        code, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        code, err = -1, f"timed out after {timeout:.0f} s"
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
    seconds = time.perf_counter() - started
    counts = [int(n) for n in re.findall(r"\d+", out)]
    return {"seconds": seconds, "completed": counts[-1] if counts else 0,
            "error": None if code == 0 else (err.strip() or f"exit {code}")[-500:],
            "command": " ".join(cmd)}


def run_postfix(source: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    peer = PostfixPeer(root / "postfix", free_port(), DOMAIN, LOCAL_PART)
    (root / "postfix").mkdir()
    with peer:
        result = smtp_source(source, peer.port, args.messages, args.sessions, args.size,
                             args.keep_connections, args.timeout)
        accepted = peer.held()
        if result["error"]:
            result["log_tail"] = peer.log_tail()
    return {"server": "postfix", **result, "accepted": accepted}


def run_postroom(source: str, binary: str, template: Path, root: Path,
                 args: argparse.Namespace) -> dict[str, Any]:
    server = PostroomServer(binary, template, root)
    try:
        server.start()
        cpu_before = server.cpu_seconds()
        result = smtp_source(source, server.port, args.messages, args.sessions, args.size,
                             args.keep_connections, args.timeout)
        cpu = server.cpu_seconds() - cpu_before
        accepted, _, rows = server.queued()
        if result["error"]:
            result["log_tail"] = server.log_tail()
    finally:
        server.stop()
    return {"server": "postroom", **result, "accepted": accepted, "queues": rows,
            "server_cpu_ms_per_message": 1000 * cpu / max(accepted, 1),
            "exit_code": server.exit_code}


# -- memory while one large message arrives -----------------------------------------------


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            with contextlib.suppress(OSError, KeyError):
                self.peak = max(self.peak, vm_status(self.pid)["VmRSS"])
                self.samples += 1
            time.sleep(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def run_memory(source: str, binary: str, template: Path, root: Path,
               args: argparse.Namespace) -> dict[str, Any]:
    server = PostroomServer(binary, template, root)
    try:
        server.start()
        # Warm up: imports, thread pools and buffers that every message needs.
        warm = smtp_source(source, server.port, 20, 5, args.size, False, args.timeout)
        if warm["error"]:
            raise BenchError(f"warm-up failed: {warm['error']}\n{server.log_tail()}")
        time.sleep(0.5)
        before = vm_status(server.pid)
        try:
            Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
            hwm_reset = True
        except OSError:
            hwm_reset = False
        sampler = RssSampler(server.pid)
        sampler.start()
        try:
            big = smtp_source(source, server.port, 1, 1, args.big_bytes, False, args.timeout)
        finally:
            sampler.stop()
        after = vm_status(server.pid)
        accepted, queued_bytes, _ = server.queued()
        if big["error"]:
            big["log_tail"] = server.log_tail()
    finally:
        server.stop()
    peak = max(sampler.peak, after["VmRSS"], after["VmHWM"] if hwm_reset else 0)
    return {
        "message_bytes": args.big_bytes, "seconds": big["seconds"], "error": big["error"],
        "accepted": accepted, "expected": 21, "queued_bytes": queued_bytes,
        "rss_before": before["VmRSS"], "hwm_before": before["VmHWM"], "hwm_reset": hwm_reset,
        "rss_peak": peak, "rss_after": after["VmRSS"], "hwm_after": after["VmHWM"],
        "samples": sampler.samples, "growth": peak - before["VmRSS"],
        "retained": after["VmRSS"] - before["VmRSS"], "target": TARGET_GROWTH_BYTES,
        **({"log_tail": big["log_tail"]} if "log_tail" in big else {}),
    }


# -- report ------------------------------------------------------------------------------


def print_table(report: dict[str, Any]) -> None:
    p = report["parameters"]
    per = "one connection per session" if p["keep_connections"] else "a connection per message"
    print(f"SMTP accept: {p['messages']:,} messages x {p['size']:,} bytes, "
          f"{p['sessions']} sessions ({per}), smtp-source -> 127.0.0.1")
    if report["runs"]:
        print(f"{'server':<9} {'run':>3} {'seconds':>8} {'msgs/s':>8} {'accepted':>9} "
              f"{'cpu ms/msg':>10}  status")
        for r in report["runs"]:
            cpu = r.get("server_cpu_ms_per_message")
            status = "ok" if r["ok"] else f"FAILED: {r['error'] or 'count mismatch'}"
            print(f"{r['server']:<9} {r['run']:>3} {r['seconds']:>8.2f} {r['rate']:>8,.0f} "
                  f"{r['accepted']:>9,} {'' if cpu is None else f'{cpu:.2f}':>10}  {status}")
    s = report["summary"]
    for name in ("postfix", "postroom"):
        if s.get(name) is not None:
            print(f"median {name}: {s[name]:,.0f} msgs/s")
    if s.get("ratio") is not None:
        verdict = "meets" if s["ratio"] >= TARGET_RATIO else "MISSES"
        print(f"ratio postroom/postfix: {s['ratio']:.2f} ({verdict} the target "
              f">= {TARGET_RATIO:g})")
    if report.get("dns_queries") is not None:
        print(f"DNS queries Postroom sent to the stub: {report['dns_queries']}")
    m = report.get("memory")
    if m:
        mb = 1024 * 1024
        verdict = "meets" if m["growth"] < m["target"] and not m["error"] else "MISSES"
        print(f"memory, one {m['message_bytes'] / mb:.0f} MiB message in {m['seconds']:.2f} s: "
              f"RSS {m['rss_before'] / mb:.1f} MiB before, peak {m['rss_peak'] / mb:.1f} MiB "
              f"(+{m['growth'] / mb:.1f} MiB), after {m['rss_after'] / mb:.1f} MiB "
              f"(VmHWM {'reset' if m['hwm_reset'] else 'not reset'}; {m['samples']} samples); "
              f"{verdict} the target < {m['target'] / mb:.0f} MiB"
              + (f"; FAILED: {m['error']}" if m["error"] else "")
              + ("" if m["accepted"] == m["expected"]
                 else f"; queue holds {m['accepted']} of {m['expected']}"))
    for r in report["runs"]:
        if r.get("log_tail") and not r["ok"]:
            print(f"\n{r['server']} run {r['run']} log tail:\n{r['log_tail']}")


# -- what the SMTP benchmarks share: their load flags, their runs and their summary ------


def add_load_arguments(parser: argparse.ArgumentParser, *more: tuple[str, dict[str, Any]]
                       ) -> None:
    """The smtp-source load and which servers take it: the same flags in every script
    (``more``: a script's own flags, listed before ``--only`` in its help)."""
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--size", type=int, default=5 * 1024, help="payload bytes")
    parser.add_argument("--runs", type=int, default=3, help="runs per server (median)")
    for flag, options in more:
        parser.add_argument(flag, **options)
    parser.add_argument("--only", choices=("both", "postroom", "postfix"), default="both")


def add_output_arguments(parser: argparse.ArgumentParser, check_help: str) -> None:
    """Which postroom, where temporary data goes, and how the result is told."""
    parser.add_argument("--postroom", default=str(Path(sys.executable).with_name("postroom")),
                        help="the postroom command (default: beside this Python)")
    parser.add_argument("--dir", type=Path, default=None, help="where temporary data goes")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--check", action="store_true", help=check_help)


def chosen_servers(only: str) -> list[str]:
    return ["postfix", "postroom"] if only == "both" else [only]


def base_dir(prefix: str, parent: Path | None) -> Path:
    """A temporary directory for one benchmark run, open to Postfix's daemons."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    base.chmod(0o755)  # Postfix's daemons run as the postfix user and need to traverse it
    return base


def add_ratio(summary: dict[str, Any], target: float) -> None:
    """Postroom's median over Postfix's, when both sides have one, and the target."""
    if summary.get("postfix") and summary.get("postroom"):
        summary["ratio"] = summary["postroom"] / summary["postfix"]
    summary["target_ratio"] = target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(parser, ("--big-bytes", {
        "type": int, "default": 50 * 1024 * 1024,
        "help": "size of the message for the memory test"}))
    parser.add_argument("--no-memory", action="store_true", help="skip the memory test")
    parser.add_argument("--keep-connections", action="store_true",
                        help="smtp-source -d: send every message of a session on one "
                        "connection")
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds one smtp-source run may take")
    add_output_arguments(parser, "exit 1 when a target is missed (exit 2 on a failed run)")
    args = parser.parse_args()

    source = ensure_smtp_source()
    servers = chosen_servers(args.only)
    base = base_dir("postroom-smtp-bench-", args.dir)
    dns = DnsStub()
    dns.start()
    runs: list[dict[str, Any]] = []
    memory: dict[str, Any] | None = None
    try:
        template = base / "postroom-template"
        if "postroom" in servers:
            make_postroom_template(args.postroom, template, dns.port)
        for i, server in alternating(servers, args.runs):
            root = run_directory(base, f"{server}-{i}")
            if server == "postfix":
                result = run_postfix(source, root, args)
            else:
                result = run_postroom(source, args.postroom, template, root, args)
            result["run"] = i
            result["rate"] = result["completed"] / result["seconds"]
            result["ok"] = (not result["error"] and result["accepted"] == args.messages
                            and result["completed"] == args.messages)
            runs.append(result)
            if not args.json:
                print(f"  {server} run {i}: {result['rate']:,.0f} msgs/s"
                      + ("" if result["ok"] else " (FAILED)"), file=sys.stderr)
        if "postroom" in servers and not args.no_memory:
            root = base / "memory"
            root.mkdir()
            memory = run_memory(source, args.postroom, template, root, args)
    finally:
        dns.close()
        shutil.rmtree(base, ignore_errors=True)

    summary: dict[str, Any] = {name: median(runs, name, "rate") for name in servers}
    add_ratio(summary, TARGET_RATIO)
    report = {
        "parameters": {"messages": args.messages, "sessions": args.sessions,
                       "size": args.size, "runs": args.runs,
                       "keep_connections": args.keep_connections},
        "runs": runs, "summary": summary, "memory": memory,
        "dns_queries": dns.queries if "postroom" in servers else None,
    }
    emit(report, args.json, print_table)

    if not args.check:
        return 0
    if any(not r["ok"] for r in runs) or (memory and memory["error"]):
        return 2
    missed = (summary.get("ratio") is not None and summary["ratio"] < TARGET_RATIO) or (
        memory is not None and memory["growth"] >= TARGET_GROWTH_BYTES)
    return 1 if missed else 0


if __name__ == "__main__":
    run_main(main)
