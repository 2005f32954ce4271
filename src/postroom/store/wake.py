"""Wake-up calls between processes: "queue X has new work", without polling delay.

Why: the MTA and the connectors must start on a message the moment it is committed
(ARCHITECTURE: no polling delay), also when the SMTP service runs in another process
(``postroom serve smtp`` beside ``postroom serve mta``). A consumer binds one Linux
*abstract* UNIX datagram socket per queue and data directory; a producer sends a
one-byte datagram to that name after each commit. Abstract names need no file (no
clean-up after a crash, no 108-byte path limit) and cost one ``sendto`` per batch.
Nobody listening is not an error: the consumer polls as a fallback anyway.

One listener per queue and data directory at a time: a second one (another process
consuming the same queue) cannot bind the name and falls back to polling
(:attr:`WakeListener.bound` is false). Inside a process, one dispatcher thread waits
on the listener and fans work out to its workers.

Broadcasts (:data:`BROADCASTS`, e.g. :data:`MAILBOX_CHANGES`) are news every listener
must hear: every IMAP accept process wakes its own IDLE sessions. Their listeners bind
numbered names (``mailbox.changes.0``, ``.1`` ... up to :data:`MAX_LISTENERS`), each
the first one free, and the producer sends to each listener it finds. Finding them
stays cheap because a newcomer always takes the lowest free slot: the producer sends
to every slot from 0 up to one past the highest that answered last time, and on past
it while slots answer. The gaps and the slot past the end cost one failed ``sendto``
each (an unbound abstract name fails at once with ECONNREFUSED, about 2 µs), so a
notify costs about (listeners + 2) ``sendto`` calls. Once a minute (and at the first
notify) the producer tries every slot, in case listeners came and went in an order
that left one above a gap it had not seen.

Known limits: Linux only (abstract namespace); a datagram can be dropped when the
listener's buffer is full — harmless, since one pending datagram is as good as many.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import select
import socket
import time
from collections.abc import Iterable
from pathlib import Path

MAILBOX_CHANGES = "mailbox.changes"
"""Not a queue: the message store notifies it after appends and flag changes, and the
IMAP service listens on it (in every accept process) to wake IDLE sessions at once."""

BROADCASTS = frozenset({MAILBOX_CHANGES})
MAX_LISTENERS = 128          # slots of a broadcast (imap.general.accept_processes <= 64)
FULL_SCAN_INTERVAL = 60.0
_BUSY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS)   # bound, buffer full


def _name(root: Path, queue: str) -> bytes:
    digest = hashlib.blake2s(str(Path(root).resolve()).encode(), digest_size=10).hexdigest()
    return b"\0postroom/" + digest.encode() + b"/" + queue.encode()


class Waker:
    """Producer side: tell the consumers of some queues that they have work."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._names: dict[str, bytes] = {}
        self._slots: dict[str, list[bytes]] = {}
        self._highest: dict[str, int] = {}      # broadcast -> highest slot that answered
        self._scanned: dict[str, float] = {}    # broadcast -> last try of every slot
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def notify(self, queues: Iterable[str]) -> None:
        for queue in set(queues):
            if queue in BROADCASTS:
                self._broadcast(queue)
                continue
            name = self._names.get(queue)
            if name is None:
                name = self._names[queue] = _name(self.root, queue)
            with contextlib.suppress(OSError):      # nobody listening, or buffer full
                self._sock.sendto(b"!", name)

    def _broadcast(self, queue: str) -> int:
        """Send to every listener of a broadcast (see the module docstring); return how
        many were reached."""
        slots = self._slots.get(queue)
        if slots is None:
            slots = self._slots[queue] = [_name(self.root, f"{queue}.{i}")
                                          for i in range(MAX_LISTENERS)]
        now = time.monotonic()
        last = self._scanned.get(queue)
        full = last is None or now - last >= FULL_SCAN_INTERVAL
        if full:
            self._scanned[queue] = now
        known = self._highest.get(queue, -1)
        highest, reached = -1, 0
        for i, name in enumerate(slots):
            if self._send(name):
                highest, reached = i, reached + 1
            elif not full and i > known:
                break
        self._highest[queue] = highest
        return reached

    def _send(self, name: bytes) -> bool:
        """Whether a listener is bound to ``name`` (it got the datagram, or its buffer
        is full, which wakes it as well)."""
        try:
            self._sock.sendto(b"!", name)
        except OSError as exc:
            return exc.errno in _BUSY
        return True

    def close(self) -> None:
        self._sock.close()


class WakeListener:
    """Consumer side: wait until a queue has news or ``timeout`` passes. On a broadcast
    every listener binds (its own slot); on a queue only the first one does."""

    def __init__(self, root: Path, queue: str) -> None:
        self.queue = queue
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._rpipe, self._wpipe = os.pipe()
        os.set_blocking(self._rpipe, False)
        os.set_blocking(self._wpipe, False)
        self.bound = False
        self.slot: int | None = None        # a broadcast's slot (the first one free)
        if queue in BROADCASTS:
            for i in range(MAX_LISTENERS):
                try:
                    self._sock.bind(_name(root, f"{queue}.{i}"))
                except OSError:
                    continue
                self.bound, self.slot = True, i
                break
            return
        try:
            self._sock.bind(_name(root, queue))
            self.bound = True
        except OSError:
            self.bound = False

    def wait(self, timeout: float) -> bool:
        """Block until woken (True) or ``timeout`` seconds pass (False)."""
        fds = [self._rpipe] + ([self._sock.fileno()] if self.bound else [])
        try:
            ready, _, _ = select.select(fds, [], [], max(0.0, timeout))
        except (OSError, ValueError):     # closed meanwhile
            return False
        self._drain()
        return bool(ready)

    def poke(self) -> None:
        """Wake the waiting thread from inside the process (in-process enqueue, stop)."""
        with contextlib.suppress(OSError):
            os.write(self._wpipe, b"!")

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            while self._sock.recv(64):
                pass
        with contextlib.suppress(OSError):
            while os.read(self._rpipe, 64):
                pass

    def close(self) -> None:
        self.poke()
        self._sock.close()
        for fd in (self._rpipe, self._wpipe):
            with contextlib.suppress(OSError):
                os.close(fd)
