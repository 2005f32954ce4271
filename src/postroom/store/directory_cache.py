"""A process-wide cache of the directory lookups mail flow repeats: domains, the
address map (resolving an address, and the addresses mapped to a mailbox, which the
post office connector needs for a mailbox's own address), mailboxes, groups.

Why: every recipient of every message asks the same few questions (is this domain
ours, where does this address go, is this mailbox enabled), and each SQLite read
costs tens of microseconds under load (the queue writer's commits keep invalidating
the connection's page cache). Answers, found or not, are kept until the directory
changes: every directory table has triggers that bump ``meta.directory_generation``
(migration 0003), and :meth:`CachedDirectory.refresh` compares it with the
generation the cache was filled at, with one small read.

Callers decide how fresh they must be by when they call :meth:`refresh`: the SMTP
service once per mail transaction (at MAIL FROM), the MTA and the post office
connector once per message. A change made through this process's store applies from
the next message on; one made by another process (``postroom mailbox create``) within
:data:`MAX_STALENESS` seconds. Everything not cached passes through unchanged.

Known limits: mailbox usage (``used_bytes``) in a cached :class:`Mailbox` is as old as
the cache; quota decisions are made by the message store, never from it. The cache
is bounded (:data:`MAX_ENTRIES`) because keys come from remote clients.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from postroom.store.directory import Directory, DirectoryError

if TYPE_CHECKING:
    from postroom.store.store import Store

MAX_ENTRIES = 50_000
MAX_STALENESS = 0.1      # seconds: how late another process's change may apply
CACHED = ("get_domain", "resolve", "get_mailbox", "get_postoffice", "get_group", "get_list",
          "list_addresses")


class _Refused:
    __slots__ = ("error",)

    def __init__(self, error: DirectoryError) -> None:
        self.error = error


_MISSING = object()


class CachedDirectory:
    """The directory, with the read calls of :data:`CACHED` remembered per generation."""

    def __init__(self, store: Store, directory: Directory | None = None) -> None:
        self._store = store
        self._directory = directory if directory is not None else store.directory
        self._answers: dict[tuple[Any, ...], Any] = {}
        self._generation: str | None = None
        self._seen_commits = -1
        self._checked = 0.0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._directory, name)

    def generation(self) -> str:
        row = self._store.conn.execute(
            "SELECT value FROM meta WHERE key='directory_generation'").fetchone()
        return str(row[0]) if row is not None else ""

    def refresh(self) -> None:
        """Drop every answer if the directory changed since they were given.

        The generation is read from the database only when this process committed
        something since the last read (an administrator's change made here applies at
        once) or :data:`MAX_STALENESS` seconds have passed (a change made by another
        process applies within that time). Under load a read costs a few hundred
        microseconds on the event loop: too much to pay for every message.
        """
        now = time.monotonic()
        commits = self._store.commits
        if commits == self._seen_commits and now - self._checked < MAX_STALENESS:
            return
        self._seen_commits, self._checked = commits, now
        current = self.generation()
        if current != self._generation:
            with self._lock:
                self._answers = {}
                self._generation = current

    def get_domain(self, name: str) -> Any:
        return self._remember("get_domain", name)

    def resolve(self, address: str) -> Any:
        return self._remember("resolve", address)

    def get_mailbox(self, postoffice: str, name: str) -> Any:
        return self._remember("get_mailbox", postoffice, name)

    def get_postoffice(self, name: str) -> Any:
        return self._remember("get_postoffice", name)

    def get_group(self, postoffice: str, name: str) -> Any:
        return self._remember("get_group", postoffice, name)

    def get_list(self, postoffice: str, name: str) -> Any:
        return self._remember("get_list", postoffice, name)

    def list_addresses(self, *, postoffice: str | None = None,
                       target: str | None = None) -> Any:
        """The address map's entries (a new list each time: callers may change it)."""
        return list(self._remember("list_addresses", postoffice, target))

    def _list_addresses(self, postoffice: str | None, target: str | None) -> Any:
        return self._directory.list_addresses(postoffice=postoffice, target=target)

    def _remember(self, method: str, *key: str | None) -> Any:
        if self._generation is None:
            self.refresh()
        answers = self._answers
        cache_key = (method, *key)
        found = answers.get(cache_key, _MISSING)
        if found is _MISSING:
            try:
                if method == "list_addresses":
                    found = self._list_addresses(*key)
                else:
                    found = getattr(self._directory, method)(*key)
            except DirectoryError as exc:
                found = _Refused(exc)
            if len(answers) >= MAX_ENTRIES:
                answers.clear()
            answers[cache_key] = found
        if isinstance(found, _Refused):
            raise found.error
        return found
