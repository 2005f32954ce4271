"""Benchmark: relaying to a remote domain, end to end, against Postfix relaying the same load.

Issue 6's yardstick for outbound delivery. Postfix's ``smtp-source`` sends 10,000 messages
of 5 KB over 20 parallel sessions, from ``sender@bench.example`` to ``user@bench.test``, to

* Postroom, ``postroom --home DIR serve`` with every service (SMTP in, MTA, the outbound
  delivery agent ``smtp-out`` ...). ``bench.test`` is *not* hosted: loopback clients may
  relay (privileged IP range, the default), so each message goes SMTP -> MTA ->
  SMTP.outgoing -> the delivery agent -> ``smtp-sink``. The sender's domain
  ``bench.example`` is hosted (with a DKIM key when ``--dkim`` says so). Route
  (``--route``):
  ``mx`` (default): a loopback DNS server (``tests/dnsserver.py``) answers
  ``bench.test MX 10 sink.bench.test`` and ``sink.bench.test A 127.0.0.1`` and smtp-sink
  listens on 127.0.0.1 port 25, so delivery takes the real MX path (the agent always
  uses port 25 towards an MX); ``smarthost``: ``smtp.smart_host.host 127.0.0.1:PORT``, no
  MX lookup, smtp-sink on a free port (use it when port 25 is taken).
* a private, loopback-only Postfix (``bench/postfix_peer.py`` via
  ``smtp_to_mailbox.RelayPeer``) that relays ``bench.test`` to its own ``smtp-sink``:
  smtpd, cleanup, the queue on disk, qmgr and the smtp client.

DKIM (``--dkim``): ``none`` (the default) signs nothing on either side, which is what
both servers do out of the box; ``both`` signs every message on both sides with an
RSA-2048 key and relaxed/relaxed canonicalization: Postroom with its own signer
(``domain dkim create``), Postfix through Debian's OpenDKIM as its milter
(``bench/opendkim_peer.py``, whose CPU counts as Postfix's), as Postfix administrators
sign; ``postroom`` signs on Postroom's side only (the two then do different work: a
2048-bit RSA signature costs about 0.4 ms of CPU here).

Concurrency towards the destination: Postfix opens up to 20 connections to one
destination (``default_destination_concurrency_limit``), Postroom's default (the
manual's "Limit concurrent connections", ``smtp.delivery.limit_concurrent_connections``)
is 5. Each side is measured with the same limit, 20 (``--destination-connections``),
since a Postroom connection waits for its acknowledgement's commit before its next
message (``connectors/smtp/outbound/service.py``): with 5 connections the agent, not the
rest of the server, was the limit (447 msgs/s against 603 with 20, same run of code).

SMTP accept processes (``--accept-processes``): one per CPU (0) by default, the setting
``smtp_accept.py`` and ``smtp_to_mailbox.py`` use; the shipped default is one. On
2026-11-27 one per CPU relayed more in 3 of 3 interleaved pairs (435, 445, 415 against
402, 393, 390 msgs/s): SMTP in took a little more CPU per message (2.0-2.1 ms against
1.9), the MTA and the delivery agent less (0.71 and 0.87 against 0.85 and 1.03: their
batches grew), and each process's writer waited less for its event loop.

The clock starts with ``smtp-source`` and stops when ``smtp-sink -c`` has counted every
message. Each side runs ``--runs`` times on fresh instances, alternating which goes
first; the medians are compared. Target: Postroom >= 1.0 x Postfix.

    .venv/bin/python bench/smtp_relay.py [--runs 3] [--messages 10000] [--route mx]
        [--dkim none|both|postroom] [--accept-processes 0] [--destination-connections 20]
        [--json] [--check]

Known limits: needs root (Postfix's daemons; port 25 for the MX route); installs Debian's
``postfix`` package when ``smtp-source`` is missing. Until ``postroom serve`` runs the
outbound delivery service, the Postroom side ends with a timeout that says how far it
got. Figures are noisy (+-20 %); compare the ratio taken in one run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from common import (
    BenchError,
    emit,
    exit_on_signals,
    free_port,
    interpreter_of,
    port_free,
    run_main,
)
from opendkim_peer import OpenDkim, ensure_opendkim
from postfix_peer import ensure_smtp_source
from postroom_home import init_postoffice, postroom_cli, set_settings
from smtp_accept import DOMAIN, SENDER, SMTP_SETTINGS, base_dir, chosen_servers
from smtp_to_mailbox import (
    OTHER_LISTENERS,
    PostroomSuite,
    SmtpSink,
    exit_status,
    load_suite,
    parse_arguments,
    print_runs,
    run_all,
    run_postfix,
    summarise,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.dnsserver import DnsTestServer

SENDER_DOMAIN = SENDER.rpartition("@")[2]
SINK_HOST = "sink.bench.test"
DKIM_SIDES = {"none": "nobody", "both": "both servers", "postroom": "Postroom only"}
MX_PORT = 25


def make_template(binary: str, home: Path, dns: DnsTestServer, args: argparse.Namespace,
                  sink_port: int) -> None:
    """A data directory hosting only the sender's domain; the recipient's is remote."""
    init_postoffice(binary, home, SENDER_DOMAIN)
    if args.dkim in ("both", "postroom"):
        postroom_cli(binary, home, "domain", "dkim", "create", SENDER_DOMAIN,
                     "--selector", "bench", "--algorithm", "rsa", "--bits", "2048")
    # SMTP accept processes (--accept-processes): one per CPU by default, as in
    # smtp_accept.py and smtp_to_mailbox.py (Postfix runs its smtpd processes on every
    # core too). See the module docstring for what one process measured.
    settings = {**SMTP_SETTINGS,
                "smtp.inbound.accept_processes": str(args.accept_processes),
                "dns.nameservers": dns.nameserver, **OTHER_LISTENERS,
                "smtp.delivery.limit_concurrent_connections":
                    str(args.destination_connections)}
    if args.route == "smarthost":
        settings["smtp.smart_host.enabled"] = "true"
        settings["smtp.smart_host.host"] = f"127.0.0.1:{sink_port}"
    set_settings(binary, home, settings)


def run_postroom(source: str, binary: str, template: Path, root: Path, sink_port: int,
                 args: argparse.Namespace) -> dict[str, Any]:
    sink = SmtpSink(shutil.which("smtp-sink") or "/usr/sbin/smtp-sink", sink_port)
    server = PostroomSuite(binary, template, root)
    try:
        sink.start()
        server.start()
        result = load_suite(source, server, args, lambda: sink.messages, "smtp-sink",
                            "the smtp-out service")
    finally:
        try:
            server.stop()
        finally:
            sink.stop()
    return {"server": "postroom", **result, "exit_code": server.exit_code}


def print_table(report: dict[str, Any]) -> None:
    p = report["parameters"]
    print_runs(report, f"SMTP relay: {p['messages']:,} messages x {p['size']:,} bytes, "
               f"{p['sessions']} sessions, smtp-source -> 127.0.0.1 -> server -> smtp-sink "
               f"(Postroom route: {p['route']}, DKIM signed by: {DKIM_SIDES[p['dkim']]}, "
               f"{p.get('destination_connections', 5)} connections per destination, "
               f"SMTP accept processes: {p.get('accept_processes', 1) or 'one per CPU'}"
               + (f", Postroom on Python {p['postroom_python']}" if p.get("postroom_python")
                  else "") + ")",
               ("relay s", 8), "received", "relayed")


def relay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--route", choices=("mx", "smarthost"), default="mx",
                        help="how Postroom reaches smtp-sink (see the module docstring)")
    parser.add_argument("--dkim", choices=tuple(DKIM_SIDES), default="none",
                        help="who DKIM-signs: nobody (default), both servers (Postfix "
                             "through OpenDKIM), or Postroom only")
    parser.add_argument("--accept-processes", type=int, default=0,
                        help="Postroom's smtp.inbound.accept_processes (0, the default "
                             "here: one per CPU; the shipped default is 1)")
    parser.add_argument("--destination-connections", type=int, default=20,
                        help="Postroom's connections per destination (Postfix's default "
                             "destination concurrency is 20; the manual's default is 5)")


def main() -> int:
    args = parse_arguments(__doc__.splitlines()[0], "seconds a run may take from the first "
                           "message to the last one received by smtp-sink", relay_arguments)
    exit_on_signals()
    source = ensure_smtp_source()
    servers = chosen_servers(args.only)
    if args.dkim == "both" and "postfix" in servers:
        ensure_opendkim()
    if "postroom" in servers and args.route == "mx" and not port_free(MX_PORT):
        raise BenchError("127.0.0.1 port 25 is in use: the MX route needs it for smtp-sink "
                         "(stop what listens there, or use --route smarthost)")
    sink_port = MX_PORT if args.route == "mx" else free_port()
    base = base_dir("postroom-relay-bench-", args.dir)
    with DnsTestServer() as dns:
        dns.add(DOMAIN, "MX", f"10 {SINK_HOST}")
        dns.add(SINK_HOST, "A", "127.0.0.1")
        try:
            template = base / "postroom-template"
            if "postroom" in servers:
                make_template(args.postroom, template, dns, args, sink_port)
            runs = run_all(servers, args, base, lambda server, root: (
                run_postfix(source, root, args, OpenDkim(
                    root / "opendkim", free_port(), SENDER_DOMAIN)
                    if args.dkim == "both" else None) if server == "postfix"
                else run_postroom(source, args.postroom, template, root, sink_port, args)))
        finally:
            shutil.rmtree(base, ignore_errors=True)

    summary = summarise(runs, servers)
    report = {
        "parameters": {"messages": args.messages, "sessions": args.sessions,
                       "size": args.size, "runs": args.runs, "timeout": args.timeout,
                       "route": args.route, "dkim": args.dkim,
                       "destination_connections": args.destination_connections,
                       "accept_processes": args.accept_processes,
                       "postroom_python": interpreter_of(args.postroom)
                       if "postroom" in servers else None},
        "servers": servers, "runs": runs, "summary": summary,
    }
    emit(report, args.json, print_table)
    return exit_status(args.check, runs, summary)


if __name__ == "__main__":
    run_main(main)
