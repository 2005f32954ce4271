"""The data directory: where a Postroom installation keeps everything it owns.

Layout (``DIR`` is ``--home``, ``$POSTROOM_HOME`` or ``./postroom-data``)::

    DIR/postroom.toml        marker naming the format; its absence means "not ours"
    DIR/postroom.db          SQLite store (directory, settings, message index, queues)
    DIR/secret.key           32-byte server key (mode 0600) encrypting stored secrets
    DIR/tls/cert.pem, key.pem  self-signed certificate for the host name (until replaced)
    DIR/messages/<postoffice>/<mailbox>/<folder>/...eml  mailbox messages, plain files
    DIR/queue/               queue segment files
    DIR/pickup/              SMTP drop folder
    DIR/badmail/, quarantine/  messages taken out of normal processing
    DIR/logs/<service>/      W3C, activity and debug logs
    DIR/tmp/                 files being written before they are renamed into place
    DIR/cache/               what a service can rebuild from the rest (IMAP folder
                             indexes and header blocks): safe to delete while stopped

``init`` is idempotent: it creates what is missing and never rewrites what exists.
A directory that exists, is not empty and has no marker is refused, so that a typo
in ``--home`` cannot scatter files over someone's home directory.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

MARKER = "postroom.toml"
MARKER_TEXT = '# This directory is a Postroom data directory.\nformat = "postroom-data"\n'
SECRET_KEY_BYTES = 32
SUBDIRS = ("messages", "queue", "pickup", "badmail", "quarantine", "logs", "tmp", "tls",
           "cache")


class DataDirError(RuntimeError):
    """The path cannot be used as a data directory; the message says why."""


def default_home() -> Path:
    return Path(os.environ.get("POSTROOM_HOME") or "./postroom-data")


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def marker(self) -> Path:
        return self.root / MARKER

    @property
    def database(self) -> Path:
        return self.root / "postroom.db"

    @property
    def secret_key(self) -> Path:
        return self.root / "secret.key"

    @property
    def cert_file(self) -> Path:
        return self.root / "tls" / "cert.pem"

    @property
    def key_file(self) -> Path:
        return self.root / "tls" / "key.pem"

    @property
    def messages(self) -> Path:
        return self.root / "messages"

    @property
    def queue(self) -> Path:
        return self.root / "queue"

    @property
    def pickup(self) -> Path:
        return self.root / "pickup"

    @property
    def badmail(self) -> Path:
        return self.root / "badmail"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def cache(self) -> Path:
        """Rebuildable caches; their users create their own folders in it on demand,
        since data directories made before it existed lack it."""
        return self.root / "cache"

    def is_initialised(self) -> bool:
        return self.marker.is_file()

    def check(self) -> None:
        """Refuse a path that is not an initialised Postroom data directory."""
        if not self.root.exists():
            raise DataDirError(
                f"{self.root} does not exist; run `postroom --home {self.root} init`")
        if not self.is_initialised():
            raise DataDirError(
                f"{self.root} is not a Postroom data directory (no {MARKER}); "
                f"run `postroom --home {self.root} init` on a new or empty directory")

    def create_layout(self) -> list[str]:
        """Create the marker, folders and server key if missing; return what was created."""
        created: list[str] = []
        if self.root.exists() and not self.is_initialised():
            if not self.root.is_dir():
                raise DataDirError(f"{self.root} exists and is not a directory")
            if any(self.root.iterdir()):
                raise DataDirError(
                    f"{self.root} exists, is not empty and is not a Postroom data directory; "
                    "refusing to write into it")
        if not self.root.exists():
            self.root.mkdir(parents=True, mode=0o750)
            created.append(str(self.root))
        for name in SUBDIRS:
            path = self.root / name
            if not path.exists():
                path.mkdir(mode=0o750)
                created.append(str(path))
        if not self.secret_key.exists():
            _write_private(self.secret_key, secrets.token_bytes(SECRET_KEY_BYTES))
            created.append(str(self.secret_key))
        if not self.marker.exists():
            # Written last: a directory with a marker is complete enough to open.
            self.marker.write_text(MARKER_TEXT)
            created.append(str(self.marker))
        return created

    def read_secret_key(self) -> bytes:
        key = self.secret_key.read_bytes()
        if len(key) != SECRET_KEY_BYTES:
            raise DataDirError(f"{self.secret_key} is damaged (expected {SECRET_KEY_BYTES} bytes)")
        return key


def _write_private(path: Path, data: bytes) -> None:
    """Create a file readable by the owner only, atomically and durably."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    os.chmod(path, 0o600)


def host_name() -> str:
    return socket.getfqdn() or socket.gethostname() or "localhost"
