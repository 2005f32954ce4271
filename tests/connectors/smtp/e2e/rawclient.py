"""A raw SMTP client for end-to-end tests: exact bytes, optional source address.

Tests that probe the server with what library clients refuse to send (routing tricks,
idle or stalled sessions, many "hosts" from different 127.0.0.0/8 addresses) use this.
"""

from __future__ import annotations

import socket


class RawClient:
    def __init__(self, host: str, port: int, source: str | None = None,
                 timeout: float = 10) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""

    def reply(self) -> bytes:
        """The next complete reply; multi-line replies joined with CRLF."""
        lines: list[bytes] = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"closed after {lines!r}")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if line[3:4] != b"-":
                return b"\r\n".join(lines)

    def command(self, text: str) -> bytes:
        self.sock.sendall(text.encode() + b"\r\n")
        return self.reply()

    def closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()
