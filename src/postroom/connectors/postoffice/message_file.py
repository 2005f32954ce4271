"""The message being delivered: in memory when small, a private file when large.

Architecture ("stream, don't slurp"): a queue body is read once. Bodies up to
:data:`IN_MEMORY_LIMIT` are held as bytes (one copy); larger ones are copied from the
queue segment to a temporary file under ``DIR/tmp`` and handed to
``store.messages.append`` as a :class:`~pathlib.Path`, so a 50 MB message never sits
in memory twice. Derived copies (a footer added, a redirection header prepended) are
new files or new bytes of the same kind.

Only the header block (at most :data:`HEAD_LIMIT` bytes) is kept in memory for
inspection; everything in it is untrusted (any bytes, NUL included).
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

IN_MEMORY_LIMIT = 4 * 1024 * 1024
HEAD_LIMIT = 256 * 1024
_COPY_CHUNK = 1024 * 1024
_counter = itertools.count(1)


def header_block(start: bytes) -> bytes:
    """The header section of a message whose first bytes are ``start``."""
    ends = [i for i in (start.find(b"\r\n\r\n"), start.find(b"\n\n")) if i >= 0]
    if not ends:
        return start
    end = min(ends)
    return start[: end + (4 if start[end:end + 4] == b"\r\n\r\n" else 2)]


class MessageFile:
    """One message's bytes (``data``) or file (``path``), plus its header block."""

    def __init__(self, *, data: bytes | None = None, path: Path | None = None,
                 owned: bool = False) -> None:
        if (data is None) == (path is None):
            raise ValueError("message: give exactly one of data or path")
        self.data = data
        self.path = path
        self.owned = owned          # path is ours to delete
        if data is not None:
            self.size = len(data)
            self.head = header_block(data[:HEAD_LIMIT])
        else:
            assert path is not None
            self.size = path.stat().st_size
            with open(path, "rb") as fh:
                self.head = header_block(fh.read(HEAD_LIMIT))

    @classmethod
    def from_stream(cls, stream: BinaryIO, size: int, tmpdir: Path) -> MessageFile:
        """Read a queue body: into memory when small, else into a file in ``tmpdir``."""
        if size <= IN_MEMORY_LIMIT:
            return cls(data=stream.read())
        path = temp_path(tmpdir, "body")
        try:
            with open(path, "wb") as out:
                shutil.copyfileobj(stream, out, _COPY_CHUNK)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return cls(path=path, owned=True)

    @property
    def payload(self) -> bytes | Path:
        """What ``store.messages.append`` and ``store.queue.enqueue`` take."""
        return self.data if self.data is not None else self.path  # type: ignore[return-value]

    @property
    def in_memory(self) -> bool:
        return self.data is not None

    def read(self) -> bytes:
        """The whole message (callers check :attr:`size` first)."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        if self.data is not None:
            import io

            yield io.BytesIO(self.data)
        else:
            assert self.path is not None
            with open(self.path, "rb") as fh:
                yield fh

    def with_prefix(self, prefix: bytes, tmpdir: Path) -> MessageFile:
        """A copy with header lines ``prefix`` put in front (same kind: bytes or file)."""
        if self.data is not None:
            return MessageFile(data=prefix + self.data)
        path = temp_path(tmpdir, "prefixed")
        try:
            with open(path, "wb") as out, self.open() as src:
                out.write(prefix)
                shutil.copyfileobj(src, out, _COPY_CHUNK)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return MessageFile(path=path, owned=True)

    def copy_to_file(self, tmpdir: Path, tag: str) -> Path:
        """A private file with the message, for an external program (caller deletes)."""
        path = temp_path(tmpdir, tag)
        try:
            if self.data is not None:
                with open(path, "wb") as out:
                    out.write(self.data)
            else:
                assert self.path is not None
                shutil.copyfile(self.path, path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def of_bytes(cls, data: bytes, tmpdir: Path) -> MessageFile:
        """Bytes made by us (a footer added ...): kept in memory or written out if large."""
        if len(data) <= IN_MEMORY_LIMIT:
            return cls(data=data)
        path = temp_path(tmpdir, "derived")
        path.write_bytes(data)
        return cls(path=path, owned=True)

    def discard(self) -> None:
        if self.owned and self.path is not None:
            self.path.unlink(missing_ok=True)


def temp_path(tmpdir: Path, tag: str) -> Path:
    tmpdir.mkdir(parents=True, exist_ok=True)
    return tmpdir / f"sf-{tag}-{os.getpid()}-{next(_counter)}.eml"
