"""A small real SMTP server for outbound tests: the remote MX hosts on 127.0.0.x:25.

Each :class:`Peer` listens on its own loopback address in a thread with its own event
loop and answers according to its settings: accept everything, ``4xx``/``5xx`` for
some recipients, drop the connection in DATA, offer STARTTLS, advertise or hide
DSN / 8BITMIME / SMTPUTF8 / SIZE / PIPELINING. It records every transaction (with
whether it ran over TLS), how many connections were open at once, and how many command
lines had already arrived with each MAIL (RFC 2920 pipelining shows as RCPT and DATA
arriving with it). Like Postfix, it refuses DATA when no recipient was accepted
(``data_without_recipients`` makes it answer 354 anyway, as RFC 5321 allows).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Received:
    sender: str
    mail_params: list[str]
    recipients: list[str]
    rcpt_params: list[list[str]]
    data: bytes
    tls: bool
    connection: int


@dataclass
class Peer:
    address: str
    port: int = 25
    rcpt_replies: dict[str, str] = field(default_factory=dict)   # address -> reply
    default_rcpt: str = "250 2.1.5 Ok"
    data_reply: str = "250 2.0.0 Ok: queued"
    drop_in_data: bool = False
    tls_files: tuple[Path, Path] | None = None
    extensions: tuple[str, ...] = ("PIPELINING", "8BITMIME", "SMTPUTF8", "DSN", "SIZE 10000000")
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    delay: float = 0.0
    data_without_recipients: bool = False   # 354 to DATA even when every RCPT was refused
    lines_after_mail: list[int] = field(default_factory=list)   # already there at MAIL

    def start(self) -> Peer:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("peer did not start")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._error: OSError | None = None
        try:
            self._server = self._loop.run_until_complete(asyncio.start_server(
                self._session, self.address, self.port, reuse_address=True))
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        if getattr(self, "_error", None) is None:
            async def close() -> None:
                self._server.close()
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        tls = False
        try:
            writer.write(b"220 peer.test ESMTP\r\n")
            sender, mail_params = "", []
            recipients: list[str] = []
            rcpt_params: list[list[str]] = []
            while True:
                line = await reader.readline()
                if not line:
                    return
                words = line.decode("utf-8", "replace").strip().split()
                verb = words[0].upper() if words else ""
                if verb in ("EHLO", "HELO"):
                    ext = list(self.extensions)
                    if self.tls_files and not tls:
                        ext.append("STARTTLS")
                    lines = ["peer.test", *ext]
                    writer.write("".join(f"250{'-' if i < len(lines) - 1 else ' '}{x}\r\n"
                                         for i, x in enumerate(lines)).encode())
                elif verb == "STARTTLS" and self.tls_files:
                    writer.write(b"220 2.0.0 go ahead\r\n")
                    await writer.drain()
                    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                    context.load_cert_chain(*self.tls_files)
                    await writer.start_tls(context)
                    tls = True
                elif verb == "MAIL":
                    # what the client sent with its MAIL (RFC 2920 pipelining: RCPT, DATA)
                    self.lines_after_mail.append(bytes(reader._buffer).count(b"\n"))
                    sender = words[1].partition(":")[2].strip("<>")
                    mail_params = words[2:]
                    recipients, rcpt_params = [], []
                    writer.write(b"250 2.1.0 Ok\r\n")
                elif verb == "RCPT":
                    address = words[1].partition(":")[2].strip("<>")
                    reply = self.rcpt_replies.get(address, self.default_rcpt)
                    if reply.startswith("2"):
                        recipients.append(address)
                        rcpt_params.append(words[2:])
                    writer.write(reply.encode() + b"\r\n")
                elif verb == "DATA" and not recipients and not self.data_without_recipients:
                    writer.write(b"554 5.5.1 Error: no valid recipients\r\n")
                elif verb == "DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    chunks = []
                    while True:
                        chunk = await reader.readline()
                        if not chunk or chunk == b".\r\n":
                            break
                        chunks.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                    if self.drop_in_data:
                        writer.close()
                        return
                    if not recipients:      # data_without_recipients: nobody to give it to
                        writer.write(b"554 5.5.1 Error: no valid recipients\r\n")
                        await writer.drain()
                        continue
                    if self.delay:
                        await asyncio.sleep(self.delay)
                    if self.data_reply.startswith("2"):
                        self.received.append(Received(sender, mail_params, recipients,
                                                      rcpt_params, b"".join(chunks), tls,
                                                      number))
                    writer.write(self.data_reply.encode() + b"\r\n")
                elif verb == "RSET":
                    writer.write(b"250 2.0.0 Ok\r\n")
                elif verb == "QUIT":
                    writer.write(b"221 2.0.0 Bye\r\n")
                    await writer.drain()
                    writer.close()
                    return
                else:
                    writer.write(b"502 5.5.2 what\r\n")
                await writer.drain()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            return
        finally:
            self.open_now -= 1
