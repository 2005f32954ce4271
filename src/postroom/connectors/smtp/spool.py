"""Where a message body goes while it arrives: memory for small ones, ``DIR/tmp`` beyond.

ARCHITECTURE "Stream, don't slurp": DATA and BDAT bytes are appended as they come
(:class:`Spool`); once a message passes :data:`MEMORY_LIMIT` everything is written
to a file in ``DIR/tmp`` and further chunks go straight to it, so a 50 MB message
costs one chunk of memory. Small messages stay in one ``bytearray`` and are handed
to the queue as they are (the group-commit writer copies them into its segment):
no file is created, written, read and deleted per message. Nothing in the spool is
durable; durability is the queue's job (``enqueue_async`` returns after the flush).

The message starts with our trace field (RFC 5321 §4.4, RFC 3848 ``with`` keywords):
:func:`received_header` names the client (HELO, reverse DNS, IP unless
``smtp.security.hide_ip_in_headers``), this host, the protocol, the tracking id as
``id``, TLS version and cipher, and ``for`` the recipient when there is exactly one
(or the catch-all recipients, manual 5.4.2, unless the alternate catch-all header is
used).

:meth:`Spool.finish` may add header lines after the trace field (``Message-ID`` and
``Date`` for submissions); a message already on disk is then copied once (rare: big
messages from programs that send no Message-ID). :meth:`Spool.discard` removes the
file on any abort (client gone, refused, oversize).

Untrusted input: the body bytes (stored as sent) and the HELO name and addresses
that go into the Received header (checked by the protocol core; controls cannot
reach it).
"""

from __future__ import annotations

import contextlib
import email.utils
import os
import shutil
import time
from pathlib import Path

MEMORY_LIMIT = 256 * 1024
COPY_CHUNK = 1024 * 1024


class Spool:
    """One message being received. ``size`` counts body octets (without our prefix)."""

    def __init__(self, tmp_dir: Path, prefix: bytes, *, memory_limit: int = MEMORY_LIMIT) -> None:
        self.tmp_dir = tmp_dir
        self.prefix_length = len(prefix)
        self.memory_limit = memory_limit
        self.size = 0
        self._buf: bytearray | None = bytearray(prefix)
        self._fd: int | None = None
        self.path: Path | None = None

    @property
    def on_disk(self) -> bool:
        return self._fd is not None or (self._buf is None and self.path is not None)

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._buf is not None:
            self._buf += data
            if len(self._buf) > self.memory_limit:
                self._spill()
            return
        if self._fd is not None:
            _write_all(self._fd, data)

    def _spill(self) -> None:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        name = f"smtp-{os.getpid()}-{os.urandom(6).hex()}.eml"
        self.path = self.tmp_dir / name
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        assert self._buf is not None
        _write_all(self._fd, self._buf)
        self._buf = None

    def finish(self, insert: bytes = b"") -> bytes | bytearray | Path:
        """The whole message for the queue: bytes, or the path of the spool file."""
        if self._buf is not None:
            if insert:
                self._buf[self.prefix_length:self.prefix_length] = insert
            return self._buf
        assert self._fd is not None and self.path is not None
        os.close(self._fd)
        self._fd = None
        if insert:
            self.path = self._rewrite(insert)
        return self.path

    def _rewrite(self, insert: bytes) -> Path:
        assert self.path is not None
        target = self.path.with_suffix(".new")
        with open(self.path, "rb") as source, open(target, "wb") as out:
            out.write(source.read(self.prefix_length))
            out.write(insert)
            shutil.copyfileobj(source, out, COPY_CHUNK)
        os.unlink(self.path)
        return target

    def discard(self) -> None:
        """Forget the message; remove its file. Safe to call more than once."""
        self._buf = None
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.path = None


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def received_protocol(esmtp: bool, tls: bool, authenticated: bool) -> str:
    """RFC 3848: SMTP, ESMTP, ESMTPA, ESMTPS, ESMTPSA."""
    if not esmtp:
        return "SMTP"
    return "ESMTP" + ("S" if tls else "") + ("A" if authenticated else "")


def received_header(*, helo: str | None, client_ip: str, ptr_name: str | None, hostname: str,
                    protocol: str, tracking_id: str, tls: str | None,
                    recipients: list[str], when: float | None = None) -> bytes:
    """The ``Received:`` trace field, folded, ending in CRLF (RFC 5321 §4.4)."""
    remote = f"{ptr_name} [{client_ip}]" if ptr_name else f"[{client_ip}]"
    lines = [f"Received: from {helo or 'unknown'} ({remote})",
             f"\tby {hostname} (Postroom) with {protocol} id {tracking_id}"]
    if tls:
        version, _, cipher = tls.partition(" ")
        lines.append(f"\t(version={version} cipher={cipher})" if cipher else f"\t({tls})")
    stamp = _date(when)
    if recipients:
        lines.append("\tfor " + ", ".join(f"<{r}>" for r in recipients) + ";")
    else:
        lines[-1] += ";"
    lines.append(f"\t{stamp}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


_last_date: tuple[int, str] = (-1, "")


def _date(when: float | None) -> str:
    """RFC 5322 date of ``when`` (now when None), formatted once per second."""
    global _last_date
    second = int(time.time() if when is None else when)
    cached = _last_date
    if cached[0] == second:
        return cached[1]
    text = email.utils.formatdate(second, localtime=True)
    _last_date = (second, text)
    return text
