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
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import (
    BenchError,
    alternating,
    command_lines,
    cpu_by_service,
    emit,
    exit_on_signals,
    free_port,
    median,
    run_directory,
    run_main,
    tree_cpu_seconds,
    wait_for_banner,
)
from opendkim_peer import OpenDkim
from postfix_peer import PeerError, PostfixPeer, ensure_smtp_source
from postroom_home import set_settings
from smtp_accept import (
    DOMAIN,
    LOCAL_PART,
    DnsStub,
    PostroomServer,
    add_load_arguments,
    add_output_arguments,
    add_ratio,
    base_dir,
    chosen_servers,
    make_postroom_template,
    smtp_source,
)

TARGET_RATIO = 1.0
POLL_SECONDS = 0.05
SETTLE_SECONDS = 0.5  # after the greeting, so that every daemon/service is up (both sides)


# -- one timed load: smtp-source in a thread, the delivered count polled ------------------


def timed_load(source: str, port: int, args: argparse.Namespace,
               delivered: Callable[[], int], cpu: Callable[[], float],
               by_service: Callable[[], dict[str, float]] | None = None) -> dict[str, Any]:
    """Send the load; return accept and delivery times, counts and CPU seconds (in
    total, and per service when ``by_service`` says how).

    ``delivered()`` is polled every 50 ms until it reaches ``--messages``, smtp-source
    fails, or ``--timeout`` seconds have passed since the first connection.
    """
    box: dict[str, Any] = {}

    def send() -> None:
        box.update(smtp_source(source, port, args.messages, args.sessions, args.size,
                               False, args.timeout))

    cpu_before = cpu()
    services_before = by_service() if by_service is not None else {}
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
    services = {name: seconds - services_before.get(name, 0.0)
                for name, seconds in (by_service() if by_service is not None else {}).items()}
    sender.join(args.timeout if error is None else 1)
    return {"accept_seconds": box.get("seconds"), "completed": box.get("completed", 0),
            "deliver_seconds": deliver_seconds, "delivered": count, "error": error,
            "cpu_seconds": cpu_used, "cpu_seconds_by_service": services,
            "source_command": box.get("command")}


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
        except BenchError as exc:
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

    def __init__(self, root: Path, port: int, sink_port: int,
                 milter_port: int | None = None) -> None:
        super().__init__(root, port, DOMAIN, LOCAL_PART)
        self.sink_port = sink_port
        self.milter_port = milter_port

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
            if self.milter_port is not None:      # DKIM signing (bench/opendkim_peer.py)
                edits.update({"smtpd_milters": f"inet:127.0.0.1:{self.milter_port}",
                              "milter_default_action": "tempfail"})
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


def run_postfix(source: str, root: Path, args: argparse.Namespace,
                signer: OpenDkim | None = None) -> dict[str, Any]:
    """Postfix relaying to its smtp-sink; ``signer`` (not started yet) makes it DKIM-sign
    through that milter, whose CPU counts as Postfix's."""
    sink = SmtpSink(shutil.which("smtp-sink") or "/usr/sbin/smtp-sink", free_port())
    try:
        sink.start()
        if signer is not None:
            signer.start()
        peer = RelayPeer(root / "postfix", free_port(), sink.port,
                         signer.port if signer is not None else None)
        (root / "postfix").mkdir()
        with peer:
            time.sleep(SETTLE_SECONDS)
            master = peer.master_pid()
            result = timed_load(source, peer.port, args, lambda: sink.messages,
                                lambda: (tree_cpu_seconds(master) if master else 0.0)
                                + (signer.cpu_seconds() if signer is not None else 0.0))
            result["left_in_queue"] = peer.in_queue()
            if result["error"]:
                result["log_tail"] = peer.log_tail()
    finally:
        try:
            sink.stop()
        finally:
            if signer is not None:
                signer.stop()
    return {"server": "postfix", **result}


# -- Postroom, every service ---------------------------------------------------------------


class PostroomSuite(PostroomServer):
    """``postroom --home DIR serve`` (all services) as a process group of its own."""

    command = ("serve",)

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


def load_suite(source: str, server: PostroomSuite, args: argparse.Namespace,
               delivered: Callable[[], int], where: str, services: str) -> dict[str, Any]:
    """The timed load against a started ``postroom serve``, counting ``delivered()``.

    On an error it says how far the messages got: how many SMTP accepted, what is still
    queued where, and, when none arrived at ``where``, whether ``services`` run at all.
    """
    time.sleep(SETTLE_SECONDS)
    running = command_lines(server.pid)
    before = delivered()
    result = timed_load(source, server.port, args, lambda: delivered() - before,
                        lambda: tree_cpu_seconds(server.pid),
                        lambda: cpu_by_service(server.pid))
    result["services"] = running
    queued, _, rows = server.queued()
    result["left_in_queue"], result["queues"] = queued, rows
    if result["error"]:
        at = ", ".join(f"{r.get('queue')} {r.get('state')} {r.get('count')}"
                       for r in rows if r.get("count"))
        result["error"] += (f"; {result['completed']:,} accepted by smtp, "
                            f"{queued:,} still queued ({at or 'none'})")
        if result["delivered"] == 0 and result["completed"]:
            result["error"] += (f" (nothing reached {where}: does `postroom serve` "
                                f"run {services} yet?)")
        result["log_tail"] = server.log_tail()
    return result


def run_postroom(source: str, binary: str, template: Path, root: Path,
                 args: argparse.Namespace) -> dict[str, Any]:
    server = PostroomSuite(binary, template, root)
    conn: sqlite3.Connection | None = None
    try:
        server.start()
        conn, count = server.mailbox_counter()
        result = load_suite(source, server, args, count, "the mailbox",
                            "the mta and postoffice services")
    finally:
        if conn is not None:
            conn.close()
        server.stop()
    return {"server": "postroom", **result, "exit_code": server.exit_code}


# Where ``postroom serve`` runs more than SMTP: its other listeners stay on loopback.
OTHER_LISTENERS = {"pop3.bind": "127.0.0.1", "imap.bind": "127.0.0.1",
                   "pop3.general.alternate_port_enabled": "false",
                   "imap.general.alternate_port_enabled": "false"}


def make_template(binary: str, home: Path, dns_port: int) -> None:
    """smtp_accept's data directory; the other listeners (if any run) stay on loopback."""
    make_postroom_template(binary, home, dns_port)
    set_settings(binary, home, OTHER_LISTENERS)


# -- runs and report (smtp_relay.py too) ------------------------------------------------


def run_all(servers: list[str], args: argparse.Namespace, base: Path,
            run_one: Callable[[str, Path], dict[str, Any]]) -> list[dict[str, Any]]:
    """``--runs`` runs of each server, alternating, each in a fresh directory; scored.

    A run's figures: ``rate`` counts every message over the time to the last delivery,
    ``accept_rate`` what SMTP completed over smtp-source's time, CPU per completed
    message; a run is ``ok`` without an error when every message was completed and
    delivered.
    """
    runs: list[dict[str, Any]] = []
    for i, server in alternating(servers, args.runs):
        result = run_one(server, run_directory(base, f"{server}-{i}"))
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
    return runs


def summarise(runs: list[dict[str, Any]], servers: list[str]) -> dict[str, Any]:
    """Median end-to-end and accept-only rates of each server, and the ratio."""
    summary: dict[str, Any] = {}
    for name in servers:
        summary[name] = median(runs, name, "rate")
        summary[f"{name}_accept"] = median(runs, name, "accept_rate")
    add_ratio(summary, TARGET_RATIO)
    return summary


def print_runs(report: dict[str, Any], heading: str, seconds_column: tuple[str, int],
               count_column: str, verb: str) -> None:
    """The table: one line a run, the medians, the ratio, and what failed runs left."""
    print(heading)
    label, width = seconds_column
    print(f"{'server':<9} {'run':>3} {'accept s':>8} {label:>{width}} {'msgs/s':>8} "
          f"{count_column:>9} {'cpu ms/msg':>10}  status")
    for r in report["runs"]:
        seconds = r["deliver_seconds"]
        accept = r["accept_seconds"]
        print(f"{r['server']:<9} {r['run']:>3} "
              f"{'' if accept is None else f'{accept:.2f}':>8} "
              f"{'' if seconds is None else f'{seconds:.2f}':>{width}} "
              f"{r['rate'] or 0:>8,.0f} {r['delivered']:>9,} "
              f"{r['cpu_ms_per_message']:>10.2f}  "
              f"{'ok' if r['ok'] else 'FAILED: ' + (r['error'] or 'count mismatch')}")
    for r in report["runs"]:
        if r.get("cpu_seconds_by_service"):
            count = max(r["completed"], 1)
            print(f"  {r['server']} run {r['run']} cpu ms/msg by service: " + ", ".join(
                f"{name} {1000 * seconds / count:.2f}"
                for name, seconds in sorted(r["cpu_seconds_by_service"].items(),
                                            key=lambda item: -item[1])))
    s = report["summary"]
    for name in ("postfix", "postroom"):
        if s.get(name) is not None:
            print(f"median {name}: {s[name]:,.0f} msgs/s {verb} "
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


def print_table(report: dict[str, Any]) -> None:
    p = report["parameters"]
    print_runs(report, f"SMTP to mailbox: {p['messages']:,} messages x {p['size']:,} bytes, "
               f"{p['sessions']} sessions, smtp-source -> 127.0.0.1 -> "
               "Postroom mailbox | Postfix -> smtp-sink",
               ("deliver s", 9), "delivered", "delivered")


def parse_arguments(description: str, timeout_help: str,
                    more: Callable[[argparse.ArgumentParser], None] | None = None
                    ) -> argparse.Namespace:
    """The flags of this script and smtp_relay.py (``more`` adds the relay's own)."""
    parser = argparse.ArgumentParser(description=description)
    add_load_arguments(parser)
    if more is not None:
        more(parser)
    parser.add_argument("--timeout", type=float, default=600, help=timeout_help)
    add_output_arguments(parser,
                         "exit 1 when the target is missed (exit 2 on a failed run)")
    args = parser.parse_args()
    for name in ("messages", "sessions", "size", "runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def exit_status(check: bool, runs: list[dict[str, Any]], summary: dict[str, Any]) -> int:
    """0, or with ``--check``: 2 when a run failed, 1 when the ratio misses the target."""
    if not check:
        return 0
    if any(not r["ok"] for r in runs):
        return 2
    return 1 if summary.get("ratio") is not None and summary["ratio"] < TARGET_RATIO else 0


def main() -> int:
    args = parse_arguments(__doc__.splitlines()[0], "seconds a run may take from the first "
                           "message to the last delivery")
    exit_on_signals()
    source = ensure_smtp_source()
    servers = chosen_servers(args.only)
    base = base_dir("postroom-deliver-bench-", args.dir)
    dns = DnsStub()
    dns.start()
    try:
        template = base / "postroom-template"
        if "postroom" in servers:
            make_template(args.postroom, template, dns.port)
        runs = run_all(servers, args, base, lambda server, root: (
            run_postfix(source, root, args) if server == "postfix"
            else run_postroom(source, args.postroom, template, root, args)))
    finally:
        dns.close()
        shutil.rmtree(base, ignore_errors=True)

    summary = summarise(runs, servers)
    report = {
        "parameters": {"messages": args.messages, "sessions": args.sessions,
                       "size": args.size, "runs": args.runs, "timeout": args.timeout},
        "servers": servers, "runs": runs, "summary": summary,
        "dns_queries": dns.queries if "postroom" in servers else None,
    }
    emit(report, args.json, print_table)
    return exit_status(args.check, runs, summary)


if __name__ == "__main__":
    run_main(main)
