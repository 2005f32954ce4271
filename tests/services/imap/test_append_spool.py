"""Large APPEND literals go to a file as they arrive, never whole into memory: the
framing with an in-memory spool, then the real service with imaplib and a raw client
(the message arrives intact, nothing is left in DIR/tmp, whatever happens)."""

from __future__ import annotations

import imaplib
import socket
import time
from pathlib import Path

import pytest

from postroom.services.imap import commands as cmd
from postroom.services.imap.framing import (
    NEED_DATA,
    SPOOL_AT,
    Continuation,
    ImapFraming,
    ProtocolError,
)
from tests.servers import PASSWORD
from tests.services.imap.conftest import ImapServer, RawImap


class MemorySpool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.chunks: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.chunks.append(data)

    def close(self) -> None:
        self.closed = True


def big_message(size: int, marker: str = "big") -> bytes:
    head = f"From: a@example.net\r\nSubject: {marker}\r\n\r\n".encode()
    line = b"0123456789" * 7 + b"\r\n"
    body = line * ((size - len(head)) // len(line) + 1)
    return (head + body)[:size - 2] + b"\r\n"


def test_framing_writes_a_large_append_literal_to_the_spool_in_chunks() -> None:
    spools: list[MemorySpool] = []

    def new_spool(size: int) -> MemorySpool:
        spools.append(MemorySpool(Path(f"/spool/{len(spools)}")))
        return spools[-1]

    framing = ImapFraming(spool=new_spool)
    data = big_message(SPOOL_AT + 1000)
    framing.receive_data(b'a APPEND INBOX (\\Seen) {%d}\r\n' % len(data))
    assert isinstance(framing.next_event(), Continuation)
    for start in range(0, len(data), 65536):           # as the socket delivers it
        framing.receive_data(data[start:start + 65536])
        assert framing.next_event() is NEED_DATA
    framing.receive_data(b"\r\n")
    command = framing.next_event()
    assert isinstance(command, cmd.Append)
    assert command.messages[0].data == Path("/spool/0")
    assert command.messages[0].flags == ("\\Seen",)
    assert len(spools) == 1 and spools[0].closed
    assert b"".join(spools[0].chunks) == data
    assert max(len(c) for c in spools[0].chunks) <= 65536
    assert framing.take_spools() == spools and framing.take_spools() == []


def test_small_literals_and_other_commands_stay_in_memory() -> None:
    framing = ImapFraming(spool=lambda size: pytest.fail("no spool for a small literal"))
    framing.receive_data(b"a APPEND INBOX {5+}\r\nhello\r\n")
    command = framing.next_event()
    assert isinstance(command, cmd.Append) and command.messages[0].data == b"hello"


def test_nul_outside_a_literal_is_refused_so_no_spool_can_be_named() -> None:
    framing = ImapFraming(spool=lambda size: pytest.fail("no spool"))
    framing.receive_data(b"a APPEND INBOX \x000\x00\r\nb NOOP\r\n")
    with pytest.raises(ProtocolError) as refused:
        framing.next_event()
    assert refused.value.reply == b"a BAD NUL outside a literal\r\n"
    assert isinstance(framing.next_event(), cmd.Command)    # the connection goes on


def spools_left(server: ImapServer) -> list[str]:
    return [p.name for p in server.store.home.tmp.iterdir()
            if p.name.startswith("imap-append-")]


def test_a_large_message_arrives_intact_and_its_spool_is_removed(
        imap_server: ImapServer) -> None:
    data = big_message(3 * 1024 * 1024)
    client = imaplib.IMAP4(imap_server.host, imap_server.port)
    client.login("bob@example", PASSWORD)
    status, answer = client.append("INBOX", "(\\Flagged)", None, data)
    assert status == "OK" and b"APPENDUID" in answer[0]
    client.select("INBOX")
    typ, fetched = client.fetch("1", "(BODY.PEEK[] FLAGS)")
    assert typ == "OK" and fetched[0][1] == data
    assert b"\\Flagged" in b"".join(p if isinstance(p, bytes) else p[0] for p in fetched)
    client.logout()
    assert spools_left(imap_server) == []


def test_multiappend_of_two_large_messages(imap_server: ImapServer, bob: RawImap) -> None:
    first, second = big_message(SPOOL_AT + 10, "one"), big_message(SPOOL_AT + 20, "two")
    bob.send(b"m APPEND INBOX {%d+}\r\n" % len(first) + first +
             b" {%d+}\r\n" % len(second) + second + b"\r\n")
    assert bob.until("m")[-1].startswith(b"m OK [APPENDUID ")
    stored = [imap_server.store.messages.read("example", "bob", "Inbox", m.uid)
              for m in imap_server.messages()]
    assert stored == [first, second]
    assert spools_left(imap_server) == []


def test_an_append_refused_for_quota_leaves_no_spool(imap_server: ImapServer,
                                                     bob: RawImap) -> None:
    imap_server.store.directory.update_mailbox("example", "bob", quota_bytes=100_000)
    data = big_message(SPOOL_AT + 100)
    bob.send(b"q APPEND INBOX {%d+}\r\n" % len(data) + data + b"\r\n")
    assert bob.until("q")[-1].startswith(b"q NO [OVERQUOTA]")
    assert imap_server.messages() == [] and spools_left(imap_server) == []


def test_a_client_gone_in_the_middle_of_the_literal_leaves_no_spool(
        imap_server: ImapServer) -> None:
    sock = socket.create_connection((imap_server.host, imap_server.port), timeout=10)
    sock.recv(4096)
    sock.sendall(b'l LOGIN bob@example "' + PASSWORD.encode() + b'"\r\n')
    assert b"l OK" in sock.recv(4096)
    sock.sendall(b"x APPEND INBOX {2000000+}\r\n" + b"a" * (SPOOL_AT * 2))
    deadline = time.monotonic() + 10
    while not spools_left(imap_server) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert spools_left(imap_server), "the literal was not being spooled"
    sock.close()
    while spools_left(imap_server) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert spools_left(imap_server) == []
    assert imap_server.messages() == []
