"""Files of ``DIR/cache``: what a service can rebuild from the store (IMAP folder index
snapshots, folders' header blocks), written so that a reader sees a whole file or the
one before, never half of one.

No fsync: a cache file lost in a crash costs only the work of rebuilding it, and the
writers are background threads that should not queue behind the disk.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from pathlib import Path


def write(directory: Path, name: str, pieces: Iterable[bytes | memoryview]) -> None:
    """Write ``pieces`` as ``directory/name`` (mode 0600: caches hold mail facts): to a
    temporary name in ``directory``, created if missing (mode 0700), then renamed into
    place. OSError when it cannot be written; the temporary file is then removed."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = directory / name
    temporary = directory / f".{name}.{os.getpid()}.{threading.get_ident()}"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.writelines(pieces)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise
