"""Raw bytes on a socket: pipelining, BDAT, malformed commands, a client that vanishes."""

from __future__ import annotations

import socket
import time

from tests.connectors.smtp.e2e.conftest import SmtpServer


class Raw:
    def __init__(self, server: SmtpServer) -> None:
        self.sock = socket.create_connection((server.host, server.port), 5)
        self.sock.settimeout(5)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def replies(self, count: int) -> list[bytes]:
        """The next ``count`` complete replies (multi-line ones joined)."""
        out: list[bytes] = []
        while len(out) < count:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"closed; got {out!r}")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            if line[3:4] == b"-":
                continue
            out.append(line)
        return out

    def close(self) -> None:
        self.sock.close()


def test_pipelined_transaction_in_one_write(smtp_server: SmtpServer) -> None:
    raw = Raw(smtp_server)
    assert raw.replies(1)[0].startswith(b"220 mail.test")
    raw.send(b"EHLO pipe.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.com>\r\n"
             b"RCPT TO:<nobody@example.com>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")
    codes = [r[:3] for r in raw.replies(6)]
    assert codes == [b"250", b"250", b"250", b"550", b"250", b"354"]
    raw.send(b"Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    done, bye = raw.replies(2)
    assert done.startswith(b"250 2.0.0 OK queued as ")
    assert bye.startswith(b"221")
    raw.close()
    entry = smtp_server.store.queue.get(done.split()[-1].decode())
    assert entry.envelope.recipients == ["[SF:example/bob]", "[SF:example/alice]"]


def test_bdat_chunks(smtp_server: SmtpServer) -> None:
    raw = Raw(smtp_server)
    raw.replies(1)
    raw.send(b"EHLO bdat.test\r\n")
    assert raw.replies(1)[0].startswith(b"250 ")
    part1, part2 = b"Subject: chunked\r\n\r\nfirst ", b"second\r\n"
    raw.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.com>\r\n"
             + f"BDAT {len(part1)}\r\n".encode() + part1
             + f"BDAT {len(part2)} LAST\r\n".encode() + part2)
    replies = raw.replies(4)
    assert [r[:3] for r in replies] == [b"250", b"250", b"250", b"250"]
    assert replies[2].endswith(f"{len(part1)} octets received".encode())
    tracking = replies[3].split()[-1].decode()
    raw.close()
    body = smtp_server.body(tracking)
    assert body.endswith(part1 + part2)
    assert body.startswith(b"Received: ")


def test_malformed_commands_get_replies_and_session_continues(smtp_server: SmtpServer) -> None:
    raw = Raw(smtp_server)
    raw.replies(1)
    raw.send(b"HELLO there\r\nMAIL FROM:<a@remote.test>\r\nEHLO ok.test\r\n"
             b"MAIL FROM:<bad address>\r\nRCPT TO:<bob@example.com>\r\nbare newline\n"
             + b"X" * 2000 + b"\r\nNOOP\r\n")
    codes = [r[:3] for r in raw.replies(7)]
    assert codes == [b"500", b"503", b"250", b"501", b"503", b"500", b"500"]
    raw.send(b"NOOP\r\n")
    assert raw.replies(1)[0].startswith(b"250")
    raw.close()


def test_too_many_errors_drops_the_client(smtp_server: SmtpServer) -> None:
    smtp_server.set("smtp.security.drop_on_failed_commands_count", 3)
    raw = Raw(smtp_server)
    raw.replies(1)
    raw.send(b"BOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\n")
    replies = raw.replies(4)
    assert replies[-1].startswith(b"421 4.7.0")
    assert raw.sock.recv(100) == b""
    raw.close()


def test_client_vanishing_mid_data_queues_nothing(smtp_server: SmtpServer) -> None:
    raw = Raw(smtp_server)
    raw.replies(1)
    raw.send(b"EHLO gone.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.com>\r\n"
             b"DATA\r\n")
    assert raw.replies(4)[-1].startswith(b"354")
    raw.send(b"Subject: half\r\n\r\n" + b"y" * 400_000)   # past the memory limit: on disk
    time.sleep(0.3)
    raw.close()
    tmp = smtp_server.home / "tmp"
    smtp_server.wait_for(lambda: not any(tmp.glob("smtp-*")))
    assert smtp_server.entries() == []


def test_large_message_streams_through_a_spool_file(smtp_server: SmtpServer) -> None:
    raw = Raw(smtp_server)
    raw.replies(1)
    body = b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * 3000
    raw.send(b"EHLO big.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.com>\r\n"
             b"DATA\r\n")
    raw.replies(4)
    raw.send(body + b".\r\n")
    tracking = raw.replies(1)[0].split()[-1].decode()
    raw.close()
    stored = smtp_server.body(tracking)
    assert stored.endswith(body)
    assert not any((smtp_server.home / "tmp").glob("smtp-*"))
