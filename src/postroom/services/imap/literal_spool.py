"""Files that large APPEND literals are written to while they arrive (issue 8: a
message is never held whole in memory; the SMTP service streams DATA the same way).

The framing (:mod:`.framing`) writes each chunk as it is read from the socket; the
APPEND command then hands the file to the message store, which copies it into the
mailbox, and the session removes it when the command is done, refused, or the
connection ends. Files live in DIR/tmp, named after the process, so the store's
clean-up of dead processes' temporary files also catches any left by a crash.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path

_counter = itertools.count()


class FileSpool:
    """One literal's file: ``write`` chunks, ``close``, then ``remove`` when done."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / f"imap-append-{os.getpid()}-{next(_counter)}.tmp"
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                                       os.O_CLOEXEC, 0o600)

    def write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def remove(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
