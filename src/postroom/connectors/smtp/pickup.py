"""The drop folder (manual 6.2.3.2 "Drop Folder", 6.2.3.3): ``.eml`` files put into
``DIR/pickup`` (or ``smtp.general.drop_folder``) are sent like mail received by SMTP.

A file is an RFC 5322 message. Its envelope comes from its header: the sender is
``Sender`` if present, else the first ``From`` address; recipients are every address
of ``To``, ``Cc`` and ``Bcc``. ``Bcc`` is removed from the copy that is sent (RFC 5322
§3.6.3), ``Date`` and ``Message-ID`` are added when missing, and a ``Received`` line
records the pickup and the tracking id. Recipients go through the same address map
and classification as SMTP ones: hosted addresses become their ``[SF:...]`` target,
others ``[SMTP:...]``; unknown hosted addresses are dropped (and logged). A file with
no usable recipient, or that cannot be parsed, is moved to ``DIR/badmail``.

Crash safety: the original file is removed only after the queue committed the
message, and the commit records the file's identity (name, inode, size, modification
time) as an enqueue-once key: a file found again after a crash between the commit and
its removal is removed without being queued twice. Nothing is lost, nothing doubled.
Write files under another name (or elsewhere) and rename them into the folder; files
whose names start with ``.`` and files modified in the last :attr:`DropFolder.settle`
seconds are left alone for the next scan.

Untrusted input: the files' contents (whoever can write the folder can send mail as
anyone: keep it writable by trusted local users only).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from postroom.connectors.smtp import headers as hdr
from postroom.connectors.smtp.address import AddressError, parse_forward_path
from postroom.connectors.smtp.policy import InboundPolicy, SessionFacts
from postroom.connectors.smtp.transcript import Transcript
from postroom.store import Store
from postroom.store.queue import AlreadyQueued, Envelope, QueueError, new_tracking_id
from postroom.store.tracking import TrackingEvent

log = logging.getLogger("postroom.smtp.pickup")

INBOUND_QUEUE = "MTA.inbound"
COPY_CHUNK = 1024 * 1024


class PickupError(ValueError):
    """The file cannot be sent as it is; it goes to bad mail."""


def once_key(path: Path) -> str:
    """The file's identity for enqueue-once: name, inode, size and modification time
    (a new file of the same name is a new message)."""
    st = path.stat()
    return f"pickup:{path.name}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


class DropFolder:
    """Scans one folder; :meth:`scan` sends what is there, :meth:`run` repeats it."""

    def __init__(self, store: Store, policy: InboundPolicy, transcript: Transcript,
                 hostname: Callable[[], str], *, interval: float = 1.0,
                 settle: float = 1.0) -> None:
        self.store = store
        self.policy = policy
        self.log = transcript
        self.hostname = hostname
        self.interval = interval
        self.settle = settle

    def folder(self) -> Path:
        configured = self.store.settings.get("smtp.general.drop_folder")
        return Path(configured) if configured else self.store.home.pickup

    async def run(self) -> None:
        while True:
            try:
                await self.scan()
            except Exception:
                log.exception("drop folder scan failed")
            await asyncio.sleep(self.interval)

    async def scan(self) -> int:
        """Send every ready file; return how many were queued."""
        folder = self.folder()
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            return 0
        sent = 0
        now = time.time()
        for name in names:
            path = folder / name
            if name.startswith(".") or not name.lower().endswith(".eml"):
                continue
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if not path.is_file() or now - st.st_mtime < self.settle:
                continue
            sent += await self._send(path)
        return sent

    async def _send(self, path: Path) -> int:
        tracking = new_tracking_id()
        try:
            key = once_key(path)
            envelope, body = await asyncio.to_thread(self._prepare, path, tracking)
        except FileNotFoundError:
            return 0
        except PickupError as exc:
            self._to_badmail(path, str(exc))
            return 0
        try:
            future = self.store.queue.enqueue_async(INBOUND_QUEUE, envelope, body,
                                                    once_key=key)
            await asyncio.wrap_future(future)
        except AlreadyQueued:
            # Queued before a crash that came before the file's removal: remove it now.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            self.log.note(f"drop folder: {path.name} was already queued; removed")
            return 0
        except QueueError as exc:
            self._to_badmail(path, str(exc))
            return 0
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(body)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.store.tracking.record(TrackingEvent(
            str(tracking), "SMTP", "received",
            sender=envelope.sender[6:-1] if envelope.sender else "",
            recipient=", ".join(envelope.recipients), detail=f"drop folder file {path.name}"))
        self.log.note(f"drop folder: {path.name} queued as {tracking} for "
                      f"{len(envelope.recipients)} recipient(s)")
        return 1

    def _prepare(self, path: Path, tracking: str) -> tuple[Envelope, Path]:
        with open(path, "rb") as source:
            head = source.read(hdr.MAX_HEADER_BYTES)
            collector = hdr.HeaderCollector()
            collector.feed(head)
            if collector.end < 0 and len(head) >= hdr.MAX_HEADER_BYTES:
                raise PickupError("header block too long")
            end = collector.end if collector.end >= 0 else len(head)
            block, rest = head[:end], head[end:]
            fields = hdr.parse_fields(block)
            if not fields:
                raise PickupError("no header fields")
            sender = self._sender(fields)
            recipients = self._recipients(fields)
            if not recipients:
                raise PickupError("no deliverable recipient in To, Cc or Bcc")
            self.store.home.tmp.mkdir(parents=True, exist_ok=True)
            target = self.store.home.tmp / f"pickup-{tracking}.eml"
            with open(target, "wb") as out:
                out.write(self._received(tracking))
                out.write(hdr.required_headers(not hdr.has_field(fields, "Message-ID"),
                                               not hdr.has_field(fields, "Date"),
                                               tracking, self.hostname()))
                out.write(hdr.strip_fields(block, {"Bcc"}))
                out.write(rest)
                shutil.copyfileobj(source, out, COPY_CHUNK)
        envelope = Envelope(sender=f"[SMTP:{sender}]" if sender else "", recipients=recipients,
                            client_ip=None, tracking_id=tracking,
                            extra={"source": "pickup", "file": path.name})
        return envelope, target

    def _received(self, tracking: str) -> bytes:
        return (f"Received: from pickup by {self.hostname()} (Postroom) with local id "
                f"{tracking};\r\n\t{email.utils.formatdate(localtime=True)}\r\n").encode()

    @staticmethod
    def _sender(fields: hdr.Fields) -> str:
        for name in ("Sender", "From"):
            for _, address in email.utils.getaddresses(hdr.values(fields, name)):
                if "@" in address:
                    return address
        return ""

    def _recipients(self, fields: hdr.Fields) -> list[str]:
        session = SessionFacts(client_ip="127.0.0.1")
        refresh = getattr(self.policy.directory, "refresh", None)
        if refresh is not None:
            refresh()
        targets: list[str] = []
        for _, address in email.utils.getaddresses(hdr.values(fields, "To", "Cc", "Bcc")):
            if "@" not in address:
                continue
            try:
                path = parse_forward_path(f"<{address}>", smtputf8=True)
            except AddressError:
                self.log.note(f"drop folder: skipping malformed address {address!r}")
                continue
            recipient = self.policy.classify(session, path)
            if recipient.kind == "local":
                targets.append(recipient.target or f"[SMTP:{path.address}]")
            elif recipient.kind == "remote":
                targets.append(f"[SMTP:{path.address}]")
            else:
                self.log.note(f"drop folder: skipping {recipient.kind} recipient {address}")
        return list(dict.fromkeys(targets))

    def _to_badmail(self, path: Path, reason: str) -> None:
        badmail = self.store.home.badmail
        badmail.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, badmail / f"pickup-{int(time.time())}-{path.name}")
        self.log.note(f"drop folder: {path.name} moved to bad mail: {reason}")
        log.warning("drop folder: %s moved to bad mail: %s", path.name, reason)
