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

Known limits: Linux only (abstract namespace); a datagram can be dropped when the
listener's buffer is full — harmless, since one pending datagram is as good as many.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import socket
from collections.abc import Iterable
from pathlib import Path

MAILBOX_CHANGES = "mailbox.changes"
"""Not a queue: the message store notifies it after appends and flag changes, and the
IMAP service listens on it to wake IDLE sessions at once."""


def _name(root: Path, queue: str) -> bytes:
    digest = hashlib.blake2s(str(Path(root).resolve()).encode(), digest_size=10).hexdigest()
    return b"\0postroom/" + digest.encode() + b"/" + queue.encode()


class Waker:
    """Producer side: tell the consumers of some queues that they have work."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._names: dict[str, bytes] = {}
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def notify(self, queues: Iterable[str]) -> None:
        for queue in set(queues):
            name = self._names.get(queue)
            if name is None:
                name = self._names[queue] = _name(self.root, queue)
            with contextlib.suppress(OSError):      # nobody listening, or buffer full
                self._sock.sendto(b"!", name)

    def close(self) -> None:
        self._sock.close()


class WakeListener:
    """Consumer side: wait until a queue has news or ``timeout`` passes."""

    def __init__(self, root: Path, queue: str) -> None:
        self.queue = queue
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._rpipe, self._wpipe = os.pipe()
        os.set_blocking(self._rpipe, False)
        os.set_blocking(self._wpipe, False)
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
