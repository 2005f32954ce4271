"""A small, real, authoritative DNS server on loopback for tests (UDP and TCP).

Tests of MX routing, SPF, DKIM, DNSBL and reverse DNS talk to this server
through the production resolver (``postroom.net.dns.Resolver``) over real
sockets, so timeouts, truncation and TCP fallback are the real ones.

The zone is Python data::

    with DnsTestServer() as server:
        server.add("example.com", "MX", "10 mx1.example.com")
        server.add("mx1.example.com", "A", "192.0.2.10")
        server.add("example.com", "TXT", "v=spf1 -all")   # long strings are split
        server.add_ptr("192.0.2.10", "mx1.example.com")
        server.fail("broken.example", rcode="SERVFAIL")
        server.delay("slow.example", 3.0)
        Resolver([server.nameserver])

Behaviour: a name with no records at or below it answers NXDOMAIN; a name that
exists without the asked type answers NOERROR with no records (NODATA); both
carry an SOA in the authority section so resolvers cache them (RFC 2308).
CNAMEs are followed inside the zone.  TXT strings longer than 255 bytes are
split into 255-byte chunks (RFC 1035 §3.3.14).  A UDP answer larger than the
client's EDNS payload (512 without EDNS) is sent truncated (TC) so the client
retries over TCP.  ``queries`` records every question received, for cache tests.

Built on dnslib (tests only, see DEPENDENCIES.md).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import socketserver
import struct
import threading
from collections.abc import Iterable
from typing import Any

from dnslib import AAAA, CNAME, EDNS0, MX, PTR, QTYPE, RCODE, RR, SOA, TXT, A, DNSLabel, DNSRecord

__all__ = ["DnsTestServer"]

_TYPES = {"A", "AAAA", "MX", "TXT", "PTR", "CNAME", "NS"}


def _key(name: str) -> str:
    return name.strip().rstrip(".").lower() + "."


def _txt_chunks(value: str | bytes | Iterable[str | bytes]) -> list[bytes]:
    if isinstance(value, str | bytes):
        data = value.encode() if isinstance(value, str) else value
        return [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    chunks: list[bytes] = []
    for part in value:
        chunks.extend(_txt_chunks(part))
    return chunks


def _rdata(rtype: str, value: Any) -> Any:
    if rtype == "A":
        return A(str(ipaddress.IPv4Address(value)))
    if rtype == "AAAA":
        return AAAA(str(ipaddress.IPv6Address(value)))
    if rtype == "MX":
        if isinstance(value, str):
            preference, _, host = value.strip().partition(" ")
        else:
            preference, host = value
        return MX(host.strip() or ".", int(preference))
    if rtype == "TXT":
        return TXT(_txt_chunks(value))
    if rtype == "PTR":
        return PTR(value)
    if rtype == "CNAME":
        return CNAME(value)
    raise ValueError(f"unsupported record type {rtype!r}")


class _UDPHandler(socketserver.BaseRequestHandler):
    server: _UDPServer

    def handle(self) -> None:
        data, sock = self.request
        reply = self.server.owner.answer(data, udp=True)
        if reply is not None:
            # the server may have stopped while a delayed answer was pending
            with contextlib.suppress(OSError):
                sock.sendto(reply, self.client_address)


class _TCPHandler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(10)
        try:
            while True:
                header = self._read(sock, 2)
                if header is None:
                    return
                (length,) = struct.unpack("!H", header)
                data = self._read(sock, length)
                if data is None:
                    return
                reply = self.server.owner.answer(data, udp=False)
                if reply is None:
                    return
                sock.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            return

    @staticmethod
    def _read(sock: socket.socket, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data


class _UDPServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
    daemon_threads = True
    owner: DnsTestServer


class _TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: DnsTestServer


class DnsTestServer:
    """An authoritative server for a zone held in memory; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1", ttl: int = 300) -> None:
        self.host = host
        self.ttl = ttl
        self.port = 0
        self.queries: list[tuple[str, str, str]] = []  # (name, type, "udp"/"tcp")
        self._records: dict[tuple[str, str], list[Any]] = {}
        self._failures: dict[str, int] = {}
        self._delays: dict[str, float] = {}
        self._lock = threading.Lock()
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # -- the zone -------------------------------------------------------
    def add(self, name: str, rtype: str, value: Any, ttl: int | None = None) -> None:
        """Add one record: ``add("example.com", "MX", "10 mx.example.com")``."""
        rtype = rtype.upper()
        if rtype not in _TYPES:
            raise ValueError(f"unsupported record type {rtype!r}")
        with self._lock:
            self._records.setdefault((_key(name), rtype), []).append(
                (_rdata(rtype, value), self.ttl if ttl is None else ttl)
            )

    def add_ptr(self, ip: str, host: str) -> None:
        """Add the reverse record of ``ip`` (IPv4 or IPv6)."""
        self.add(ipaddress.ip_address(ip).reverse_pointer, "PTR", host)

    def remove(self, name: str, rtype: str | None = None) -> None:
        with self._lock:
            for key in [k for k in self._records if k[0] == _key(name)]:
                if rtype is None or key[1] == rtype.upper():
                    del self._records[key]

    def fail(self, name: str, rcode: str = "SERVFAIL") -> None:
        """Answer every question about ``name`` with ``rcode`` (SERVFAIL, REFUSED ...)."""
        with self._lock:
            self._failures[_key(name)] = getattr(RCODE, rcode.upper())

    def delay(self, name: str, seconds: float) -> None:
        """Answer questions about ``name`` only after ``seconds`` (for timeout tests)."""
        with self._lock:
            self._delays[_key(name)] = seconds

    def count(self, name: str, rtype: str | None = None) -> int:
        """How many questions about ``name`` (of ``rtype``) arrived."""
        key = _key(name)
        with self._lock:
            return sum(
                1 for q in self.queries if q[0] == key and (rtype is None or q[1] == rtype.upper())
            )

    @property
    def nameserver(self) -> str:
        """The ``dns.nameservers`` entry that points at this server."""
        return f"{self.host}:{self.port}"

    # -- answering ------------------------------------------------------
    def answer(self, data: bytes, *, udp: bool) -> bytes | None:
        try:
            request = DNSRecord.parse(data)
        except Exception:
            return None
        question = request.q
        qname = _key(str(question.qname))
        qtype = QTYPE.get(question.qtype, str(question.qtype))
        with self._lock:
            self.queries.append((qname, qtype, "udp" if udp else "tcp"))
            delay = self._delays.get(qname, 0.0)
            failure = self._failures.get(qname)
        if delay and self._stopping.wait(delay):
            return None
        reply = request.reply()
        edns = [rr for rr in request.ar if rr.rtype == QTYPE.OPT]
        if failure is not None:
            reply.header.rcode = failure
            reply.header.aa = 0
            return reply.pack()
        self._fill(reply, qname, qtype)
        if edns:
            reply.add_ar(EDNS0(udp_len=4096))
        packed = reply.pack()
        limit = max(512, edns[0].rclass) if edns else 512
        if udp and len(packed) > limit:
            truncated = request.reply()
            truncated.header.tc = 1
            if edns:
                truncated.add_ar(EDNS0(udp_len=4096))
            return truncated.pack()
        return packed

    def _fill(self, reply: DNSRecord, qname: str, qtype: str) -> None:
        with self._lock:
            name = qname
            for _ in range(8):  # follow CNAME chains inside the zone
                cname = self._records.get((name, "CNAME"))
                if cname and qtype != "CNAME":
                    rdata, ttl = cname[0]
                    reply.add_answer(RR(name, QTYPE.CNAME, rdata=rdata, ttl=ttl))
                    name = _key(str(rdata.label))
                    continue
                break
            records = self._records.get((name, qtype), [])
            for rdata, ttl in records:
                reply.add_answer(RR(name, getattr(QTYPE, qtype), rdata=rdata, ttl=ttl))
            exists = any(key[0] == name or key[0].endswith("." + name) for key in self._records)
        if records:
            return
        if not reply.rr and not exists:
            reply.header.rcode = RCODE.NXDOMAIN
        reply.add_auth(
            RR(
                ".",
                QTYPE.SOA,
                ttl=self.ttl,
                rdata=SOA(
                    DNSLabel("ns.test."),
                    DNSLabel("hostmaster.test."),
                    (1, 3600, 600, 86400, self.ttl),
                ),
            )
        )

    # -- running --------------------------------------------------------
    def start(self) -> DnsTestServer:
        for _ in range(20):
            udp = _UDPServer((self.host, 0), _UDPHandler)
            port = udp.server_address[1]
            try:
                tcp = _TCPServer((self.host, port), _TCPHandler)
            except OSError:
                udp.server_close()
                continue
            break
        else:
            raise OSError("no free port for UDP and TCP together")
        self.port = port
        for server in (udp, tcp):
            server.owner = self  # type: ignore[attr-defined]
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
            )
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()  # type: ignore[attr-defined]
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> DnsTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
