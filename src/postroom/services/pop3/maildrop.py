"""The maildrop of one POP3 session: lock, snapshot, deletion marks, UPDATE (RFC 1939 §4-6,
manual 6.3.4.3 "Allow concurrent mailbox access").

Lock: a session that logs in takes an exclusive ``flock`` on
``DIR/tmp/pop3-locks/<mailbox id>.lock``; a second session on the same mailbox, in
this process or another, gets ``-ERR [IN-USE]`` (RFC 2449 §8.1.1) unless
``pop3.advanced.allow_concurrent_mailbox_access`` is on. The kernel drops the lock
when the process dies, so a crash never leaves a mailbox locked.

Snapshot: the Inbox as it was at login, numbered 1..n in UID order. Messages that
arrive later are not shown until the next session (RFC 1939 §5). The unique-id
listing (UIDL) is ``<uidvalidity>.<uid>``: UIDs are never reused within a folder and
UIDVALIDITY changes only if the folder is recreated, so the value is stable across
sessions and restarts.

Sizes: STAT, LIST and the scan listing give the exact octets RETR sends, with CRLF
line ends (:func:`postroom.services.pop3.wire.crlf_size`). Message files are kept as
they arrived and may use bare LF, so each file's CRLF size is computed once, by
reading it, and kept in the store (``message_crlf_size``, keyed by the file's path,
which is never reused); later sessions read it with one query. The same read learns
whether any line starts with "." (RETR must byte-stuff it); kept beside the size, it
spares RETR a scan of the message for them.

UPDATE: messages marked with DELE are removed only when the client sends QUIT in the
TRANSACTION state, in one store transaction (durable when it returns, like every
store commit) before ``+OK`` goes out. A connection that drops, times out or is shut
down removes nothing, and RSET clears the marks.

Known limits: with concurrent access on, a message another session removed answers
``-ERR`` when retrieved; its number stays valid in this session.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from postroom.services.pop3 import wire

if TYPE_CHECKING:
    from postroom.store import Store

FOLDER = "Inbox"
READ_CHUNK = 64 * 1024
_SQL_BATCH = 500


class MaildropError(Exception):
    """A refused maildrop operation; ``reply`` is the ``-ERR`` to send."""

    def __init__(self, reply: wire.Reply) -> None:
        super().__init__(reply.line)
        self.reply = reply


@dataclass
class Entry:
    number: int
    uid: int
    path: str            # relative to DIR/messages
    octets: int
    deleted: bool = False
    dot_lines: bool | None = None  # a line starts with "."; None: not known


class MaildropLock:
    """An exclusive lock on one mailbox (see the module docstring)."""

    def __init__(self, directory: Path, mailbox_id: int) -> None:
        self.path = directory / f"{mailbox_id}.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)            # closing drops the flock


def lock_directory(store: Store) -> Path:
    return store.home.tmp / "pop3-locks"


def file_octets(path: Path) -> tuple[int, bool]:
    """The CRLF size of one message file and whether a line of it starts with "."
    (reads it once)."""
    encoder = wire.CrlfEncoder(stuff=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            encoder.feed(chunk)
    encoder.finish()
    return encoder.octets, encoder.dot_lines


def crlf_facts(store: Store, paths: list[str]) -> dict[str, tuple[int, bool | None]]:
    """``path -> (CRLF size, has a line starting with ".")`` of message files, from the
    store's record or computed and recorded (None: recorded before that was kept)."""
    facts: dict[str, tuple[int, bool | None]] = {}
    conn = store.conn
    for start in range(0, len(paths), _SQL_BATCH):
        batch = paths[start:start + _SQL_BATCH]
        marks = ",".join("?" * len(batch))
        for path, octets, dots in conn.execute(
                f"SELECT path, octets, dot_lines FROM message_crlf_size "
                f"WHERE path IN ({marks})", batch):
            facts[path] = (int(octets), None if dots is None else bool(dots))
    missing = [p for p in paths if p not in facts]
    if not missing:
        return facts
    root = store.home.messages
    computed = []
    for rel in missing:
        try:
            octets, dots = file_octets(root / rel)
        except FileNotFoundError:
            continue                # removed meanwhile: left out of the snapshot
        facts[rel] = (octets, dots)
        computed.append((rel, octets, dots))
    if computed:
        # A record of what can be computed again: handed to the writer, not waited for
        # (a reader, perhaps on an event loop, never queues on the write lock).
        store.messages.note_crlf_sizes(computed)
    return facts


def crlf_sizes(store: Store, paths: list[str]) -> dict[str, int]:
    """CRLF sizes of message files, from the store's record or computed and recorded."""
    return {path: fact[0] for path, fact in crlf_facts(store, paths).items()}


class Maildrop:
    """One session's view of a mailbox's Inbox (see the module docstring)."""

    def __init__(self, store: Store, postoffice: str, mailbox: str, uidvalidity: int,
                 entries: list[Entry], lock: MaildropLock | None) -> None:
        self.store = store
        self.postoffice = postoffice
        self.mailbox = mailbox
        self.uidvalidity = uidvalidity
        self.entries = entries
        self._lock = lock
        self._root = str(store.home.messages)

    @classmethod
    def open(cls, store: Store, postoffice: str, mailbox: str, mailbox_id: int, *,
             exclusive: bool = True) -> Maildrop:
        """Lock and snapshot the maildrop (blocking: run it off the event loop).

        Raises :class:`MaildropError` with ``[IN-USE]`` when another session holds it.
        """
        lock = None
        if exclusive:
            lock = MaildropLock(lock_directory(store), mailbox_id)
            if not lock.acquire():
                raise MaildropError(wire.IN_USE)
        try:
            messages = store.messages
            folder = next((f for f in messages.list_folders(postoffice, mailbox)
                           if f.name.lower() == FOLDER.lower()), None)
            if folder is None:
                return cls(store, postoffice, mailbox, 0, [], lock)
            infos = messages.list_messages(postoffice, mailbox, folder.name)
            facts = crlf_facts(store, [info.path for info in infos])
            entries = []
            for info in infos:
                fact = facts.get(info.path)
                if fact is not None:      # None: the file went meanwhile
                    entries.append(Entry(0, info.uid, info.path, fact[0], dot_lines=fact[1]))
            for number, entry in enumerate(entries, start=1):
                entry.number = number
            return cls(store, postoffice, mailbox, folder.uidvalidity, entries, lock)
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- TRANSACTION commands ----------------------------------------------------------

    def get(self, number: int) -> Entry:
        if not 1 <= number <= len(self.entries):
            raise MaildropError(wire.NO_SUCH_MESSAGE)
        entry = self.entries[number - 1]
        if entry.deleted:
            raise MaildropError(wire.MESSAGE_DELETED)
        return entry

    def live(self) -> Iterator[Entry]:
        return (e for e in self.entries if not e.deleted)

    def stat(self) -> tuple[int, int]:
        count = octets = 0
        for entry in self.live():
            count += 1
            octets += entry.octets
        return count, octets

    def uid_of(self, entry: Entry) -> str:
        return f"{self.uidvalidity}.{entry.uid}"

    def delete(self, number: int) -> Entry:
        entry = self.get(number)
        entry.deleted = True
        return entry

    def reset(self) -> None:
        for entry in self.entries:
            entry.deleted = False

    def file(self, entry: Entry) -> str:
        return os.path.join(self._root, entry.path)

    def marked(self) -> list[Entry]:
        return [e for e in self.entries if e.deleted]

    def update(self) -> int:
        """The UPDATE state: remove the marked messages durably; how many went.

        Blocking (run it off the event loop). With the maildrop locked (the default)
        the answer comes once the removal is committed, and the files, no longer
        anyone's, are unlinked afterwards in the store's background thread, as for
        IMAP's EXPUNGE: on this project's file system an unlink waits for the disk
        (online discard, about 65 µs each), and a client that deleted 500 messages
        waited 30 ms more for its QUIT. When other sessions may hold the same maildrop
        (``allow_concurrent_mailbox_access``), the files go before the answer, so that
        their RETR of a removed message fails at once."""
        marked = self.marked()
        if not marked:
            return 0
        # The removal also drops the files' recorded CRLF sizes, in its transaction.
        uids = [e.uid for e in marked]
        messages = self.store.messages
        if self._lock is None:
            return int(messages.expunge(self.postoffice, self.mailbox, FOLDER, uids))
        return int(messages.expunge_async(self.postoffice, self.mailbox, FOLDER,
                                          uids).result())
