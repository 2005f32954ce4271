"""Benchmark: relaying to a remote domain, end to end, against Postfix relaying the same load.

Issue 6's yardstick for outbound delivery. Postfix's ``smtp-source`` sends 10,000 messages
of 5 KB over 20 parallel sessions, from ``sender@bench.example`` to ``user@bench.test``, to

* Postroom, ``postroom --home DIR serve`` with every service (SMTP in, MTA, the outbound
  delivery agent ``smtp-out`` ...). ``bench.test`` is *not* hosted: loopback clients may
  relay (privileged IP range, the default), so each message goes SMTP -> MTA ->
  SMTP.outgoing -> the delivery agent -> ``smtp-sink``. The sender's domain
  ``bench.example`` is hosted and has a DKIM key (RSA-2048), so every message is also
  DKIM-signed on the way out (``--no-dkim`` to leave that out). Route (``--route``):
  ``mx`` (default): a loopback DNS server (``tests/dnsserver.py``) answers
  ``bench.test MX 10 sink.bench.test`` and ``sink.bench.test A 127.0.0.1`` and smtp-sink
  listens on 127.0.0.1 port 25, so delivery takes the real MX path (the agent always
  uses port 25 towards an MX); ``smarthost``: ``smtp.smart_host.host 127.0.0.1:PORT``, no
  MX lookup, smtp-sink on a free port (use it when port 25 is taken).
* a private, loopback-only Postfix (``bench/postfix_peer.py`` via
  ``smtp_to_mailbox.RelayPeer``) that relays ``bench.test`` to its own ``smtp-sink``:
  smtpd, cleanup, the queue on disk, qmgr and the smtp client; no DKIM (Postfix has
  no signer of its own).

The clock starts with ``smtp-source`` and stops when ``smtp-sink -c`` has counted every
message. Each side runs ``--runs`` times on fresh instances, alternating which goes
first; the medians are compared. Target: Postroom >= 1.0 x Postfix.

    .venv/bin/python bench/smtp_relay.py [--runs 3] [--messages 10000] [--route mx]
        [--no-dkim] [--json] [--check]

Known limits: needs root (Postfix's daemons; port 25 for the MX route); installs Debian's
``postfix`` package when ``smtp-source`` is missing. Until ``postroom serve`` runs the
outbound delivery service, the Postroom side ends with a timeout that says how far it
got. Figures are noisy (+-20 %); compare the ratio taken in one run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from postfix_peer import PeerError, ensure_smtp_source, free_port
from smtp_accept import DOMAIN, SENDER, BenchError, postroom_cli
from smtp_to_mailbox import (
    SETTLE_SECONDS,
    TARGET_RATIO,
    PostroomSuite,
    SmtpSink,
    command_lines,
    median,
    run_postfix,
    timed_load,
    tree_cpu_seconds,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.dnsserver import DnsTestServer

SENDER_DOMAIN = SENDER.rpartition("@")[2]
SINK_HOST = "sink.bench.test"
MX_PORT = 25


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def make_template(binary: str, home: Path, dns: DnsTestServer, args: argparse.Namespace,
                  sink_port: int) -> None:
    """A data directory hosting only the sender's domain; the recipient's is remote."""
    postroom_cli(binary, home, "init", "--hostname", "postroom.bench.invalid")
    postroom_cli(binary, home, "postoffice", "create", "benchpo")
    postroom_cli(binary, home, "domain", "create", SENDER_DOMAIN, "-p", "benchpo")
    if args.dkim:
        postroom_cli(binary, home, "domain", "dkim", "create", SENDER_DOMAIN,
                     "--selector", "bench", "--algorithm", "rsa", "--bits", "2048")
    settings = {
        "smtp.submission_port": "0",
        "smtp.smtps_port": "0",
        "smtp.bind": "127.0.0.1",
        "smtp.security.sender_domain_must_resolve": "false",
        "smtp.logging.debug_enabled": "false",
        "smtp.inbound.max_connections_per_ip": "50",
        "smtp.inbound.accept_processes": "0",
        "dns.nameservers": dns.nameserver,
        "pop3.bind": "127.0.0.1",
        "imap.bind": "127.0.0.1",
        "pop3.general.alternate_port_enabled": "false",
        "imap.general.alternate_port_enabled": "false",
    }
    if args.route == "smarthost":
        settings["smtp.smart_host.enabled"] = "true"
        settings["smtp.smart_host.host"] = f"127.0.0.1:{sink_port}"
    for key, value in settings.items():
        postroom_cli(binary, home, "settings", "set", key, value)


def run_postroom(source: str, binary: str, template: Path, root: Path, sink_port: int,
                 args: argparse.Namespace) -> dict[str, Any]:
    sink = SmtpSink(shutil.which("smtp-sink") or "/usr/sbin/smtp-sink", sink_port)
    server = PostroomSuite(binary, template, root)
    try:
        sink.start()
        server.start()
        time.sleep(SETTLE_SECONDS)
        services = command_lines(server.pid)
        before = sink.messages
        result = timed_load(source, server.port, args, lambda: sink.messages - before,
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
                result["error"] += (" (nothing reached smtp-sink: does `postroom serve` "
                                    "run the smtp-out service yet?)")
            result["log_tail"] = server.log_tail()
    finally:
        try:
            server.stop()
        finally:
            sink.stop()
    return {"server": "postroom", **result, "exit_code": server.exit_code}


def print_table(report: dict[str, Any]) -> None:
    p = report["parameters"]
    print(f"SMTP relay: {p['messages']:,} messages x {p['size']:,} bytes, {p['sessions']} "
          f"sessions, smtp-source -> 127.0.0.1 -> server -> smtp-sink "
          f"(Postroom route: {p['route']}, DKIM: {'rsa-2048' if p['dkim'] else 'off'})")
    print(f"{'server':<9} {'run':>3} {'accept s':>8} {'relay s':>8} {'msgs/s':>8} "
          f"{'received':>9} {'cpu ms/msg':>10}  status")
    for r in report["runs"]:
        accept, seconds = r["accept_seconds"], r["deliver_seconds"]
        print(f"{r['server']:<9} {r['run']:>3} "
              f"{'' if accept is None else f'{accept:.2f}':>8} "
              f"{'' if seconds is None else f'{seconds:.2f}':>8} "
              f"{r['rate'] or 0:>8,.0f} {r['delivered']:>9,} {r['cpu_ms_per_message']:>10.2f}"
              f"  {'ok' if r['ok'] else 'FAILED: ' + (r['error'] or 'count mismatch')}")
    s = report["summary"]
    for name in ("postfix", "postroom"):
        if s.get(name) is not None:
            print(f"median {name}: {s[name]:,.0f} msgs/s relayed "
                  f"(accept only: {s[name + '_accept']:,.0f} msgs/s)")
    if s.get("ratio") is not None:
        verdict = "meets" if s["ratio"] >= TARGET_RATIO else "MISSES"
        print(f"ratio postroom/postfix: {s['ratio']:.2f} ({verdict} the target "
              f">= {TARGET_RATIO:.1f})")
    elif len(report["servers"]) == 2:
        print("ratio postroom/postfix: n/a (a side has no successful run)")
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
    parser.add_argument("--route", choices=("mx", "smarthost"), default="mx",
                        help="how Postroom reaches smtp-sink (see the module docstring)")
    parser.add_argument("--no-dkim", dest="dkim", action="store_false",
                        help="do not DKIM-sign Postroom's outbound mail")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds a run may take from the first message to the last "
                        "one received by smtp-sink")
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

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    source = ensure_smtp_source()
    servers = ["postfix", "postroom"] if args.only == "both" else [args.only]
    if "postroom" in servers and args.route == "mx" and not port_free(MX_PORT):
        raise BenchError("127.0.0.1 port 25 is in use: the MX route needs it for smtp-sink "
                         "(stop what listens there, or use --route smarthost)")
    sink_port = MX_PORT if args.route == "mx" else free_port()
    base = Path(tempfile.mkdtemp(prefix="postroom-relay-bench-", dir=args.dir))
    base.chmod(0o755)  # Postfix's daemons run as the postfix user and need to traverse it
    runs: list[dict[str, Any]] = []
    with DnsTestServer() as dns:
        dns.add(DOMAIN, "MX", f"10 {SINK_HOST}")
        dns.add(SINK_HOST, "A", "127.0.0.1")
        try:
            template = base / "postroom-template"
            if "postroom" in servers:
                make_template(args.postroom, template, dns, args, sink_port)
            for i in range(1, args.runs + 1):
                for server in servers if i % 2 else list(reversed(servers)):
                    root = base / f"{server}-{i}"
                    root.mkdir()
                    try:
                        if server == "postfix":
                            result = run_postfix(source, root, args)
                        else:
                            result = run_postroom(source, args.postroom, template, root,
                                                  sink_port, args)
                    finally:
                        shutil.rmtree(root, ignore_errors=True)
                    result["run"] = i
                    seconds = result["deliver_seconds"]
                    result["rate"] = args.messages / seconds if seconds else None
                    accept = result["accept_seconds"]
                    result["accept_rate"] = result["completed"] / accept if accept else None
                    result["cpu_ms_per_message"] = (1000 * result["cpu_seconds"]
                                                    / max(result["completed"], 1))
                    result["ok"] = (not result["error"]
                                    and result["delivered"] >= args.messages
                                    and result["completed"] == args.messages)
                    runs.append(result)
                    if not args.json:
                        print(f"  {server} run {i}: "
                              + (f"{result['rate']:,.0f} msgs/s" if result["ok"]
                                 else f"FAILED: {result['error'] or 'count mismatch'}"),
                              file=sys.stderr)
        finally:
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
                       "size": args.size, "runs": args.runs, "timeout": args.timeout,
                       "route": args.route, "dkim": args.dkim},
        "servers": servers, "runs": runs, "summary": summary,
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
