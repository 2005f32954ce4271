"""Account lockout after failed logins (manual 5.8.2, Localhost - Policies: "Lock out user
for one hour after N failed attempts"), shared by SMTP AUTH, POP3 and IMAP.

The record lives in the store (tables ``auth_failure`` and ``auth_lockout``, schema
version 4), so failures count across services and processes: ten wrong passwords
spread over SMTP and POP3, or over two ``postroom serve`` nodes sharing a store, lock
the mailbox just the same. Only failures of a login that names an existing mailbox are
counted (there is nothing to lock for an unknown name), and only failures within the
last hour; when their number reaches ``localhost.policies.lockout_failed_attempts``
the mailbox is refused for one hour, even with the right password. Other mailboxes
are not affected. A locked mailbox's further attempts are refused without checking
the password (cheap: no Argon2) and are not counted.

Settings read: ``localhost.policies.lockout_enabled``,
``localhost.policies.lockout_failed_attempts``. With lockout off nothing is written.

Known limits: a guesser can lock a user out on purpose; that is the manual's policy.
The per-IP answer to guessing is abuse detection, not this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from postroom.store import Store

WINDOW = 3600.0
"""Failures older than this no longer count (seconds)."""
DURATION = 3600.0
"""How long a lockout lasts (seconds)."""


class Lockout:
    """The lockout record of one store. Methods touch the database: call them off the
    event loop (the login checker runs them in its thread pool)."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return bool(self.store.settings.get("localhost.policies.lockout_enabled"))

    @property
    def threshold(self) -> int:
        return int(self.store.settings.get("localhost.policies.lockout_failed_attempts"))

    def locked_until(self, mailbox_id: int) -> float | None:
        """When the lockout of ``mailbox_id`` ends, or None if it is not locked."""
        if not self.enabled:
            return None
        row = self.store.conn.execute("SELECT until FROM auth_lockout WHERE mailbox_id = ?",
                                      (mailbox_id,)).fetchone()
        if row is None or row[0] <= self.clock():
            return None
        return float(row[0])

    def is_locked(self, mailbox_id: int) -> bool:
        return self.locked_until(mailbox_id) is not None

    def record_failure(self, mailbox_id: int, service: str, client_ip: str = "") -> bool:
        """Count one failed login; True when the mailbox is (now) locked out."""
        if not self.enabled:
            return False
        now = self.clock()
        threshold = self.threshold
        with self.store.transaction() as conn:
            row = conn.execute("SELECT until FROM auth_lockout WHERE mailbox_id = ?",
                               (mailbox_id,)).fetchone()
            if row is not None and row[0] > now:
                return True
            conn.execute("DELETE FROM auth_failure WHERE mailbox_id = ? AND at < ?",
                         (mailbox_id, now - WINDOW))
            conn.execute("INSERT INTO auth_failure (mailbox_id, at, service, client_ip) "
                         "VALUES (?, ?, ?, ?)", (mailbox_id, now, service, client_ip))
            count = conn.execute("SELECT count(*) FROM auth_failure WHERE mailbox_id = ?",
                                 (mailbox_id,)).fetchone()[0]
            if count < threshold:
                return False
            conn.execute("INSERT INTO auth_lockout (mailbox_id, until, at) VALUES (?, ?, ?) "
                         "ON CONFLICT(mailbox_id) DO UPDATE SET until = excluded.until, "
                         "at = excluded.at", (mailbox_id, now + DURATION, now))
            conn.execute("DELETE FROM auth_failure WHERE mailbox_id = ?", (mailbox_id,))
        return True

    def unlock(self, mailbox_id: int) -> None:
        """End a lockout early and forget the failures (administrator action)."""
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM auth_lockout WHERE mailbox_id = ?", (mailbox_id,))
            conn.execute("DELETE FROM auth_failure WHERE mailbox_id = ?", (mailbox_id,))
