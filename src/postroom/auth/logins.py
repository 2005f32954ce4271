"""Checking a login, for every service: who the name means, whether the secret is right,
whether the account may log in, and the lockout (manual 5.8.1, 5.8.2, 6.3.4.2).

Login names (manual 6.3.4.2 "Alternate @ characters", 5.8.1 "Default post office"):
``mailbox@postoffice`` or any SMTP address mapped to the mailbox; the characters of
``pop3.general.alternate_at_characters`` are accepted in place of ``@`` (the manual
defines the list once, for POP; the same old clients send mail and read IMAP); a bare
``mailbox`` is resolved against ``localhost.general.default_postoffice`` when
``localhost.general.default_postoffice_enabled`` is on. Disabled mailboxes, mailboxes
with ``prevent_authentication`` and mailboxes of a disabled post office cannot log in.

Secrets: a password (USER/PASS, PLAIN, LOGIN, IMAP LOGIN) is verified against the
Argon2 hash, about 28 ms, so :class:`LoginChecker` runs every check in a small thread
pool and never on the event loop. Challenge-response mechanisms (CRAM-MD5, RFC 2195;
APOP, RFC 1939 §7) need the mailbox's recoverable password
(``messaging_manager.security.encrypt_passwords``); without one they fail.

Lockout (:mod:`.lockout`): a locked mailbox is refused before its password is
checked; each failure of an existing mailbox counts. :func:`failure_delay` is the
wait before a service answers a failure, growing with the session's failures, to
slow guessing down.

Untrusted input: the user name and secret; both arrive already length-checked and
decoded (:mod:`.sasl`). Comparisons of digests are constant-time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from postroom.auth.lockout import Lockout
from postroom.auth.sasl import Credentials

if TYPE_CHECKING:
    from postroom.store import Store
    from postroom.store.directory import Mailbox

DIGEST_MECHANISMS = frozenset({"CRAM-MD5", "APOP"})


@dataclass(frozen=True)
class Identity:
    """Who authenticated: ``(postoffice, mailbox)``, or ``("", name)`` for a fixed
    credential (the SMTP relay user). ``login`` is what logs and envelopes show."""

    postoffice: str
    mailbox: str

    @property
    def login(self) -> str:
        return f"{self.mailbox}@{self.postoffice}" if self.postoffice else self.mailbox

    @property
    def facts(self) -> tuple[str, str]:
        return (self.postoffice, self.mailbox)


@dataclass(frozen=True)
class LoginResult:
    """The outcome of one check. ``reason`` is for logs only: clients get one answer
    for every failure. Reasons: ``ok``, ``bad-credentials``, ``locked``, ``disabled``."""

    identity: Identity | None
    reason: str
    mailbox_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.identity is not None


def login_separators(settings: Any) -> str:
    """``@`` and the alternate ``@`` characters."""
    return "@" + str(settings.get("pop3.general.alternate_at_characters") or "")


def qualify(settings: Any, username: str) -> str:
    """Add the default post office to a bare mailbox name when that is enabled."""
    if any(sep in username for sep in login_separators(settings)):
        return username
    if settings.get("localhost.general.default_postoffice_enabled"):
        default = str(settings.get("localhost.general.default_postoffice") or "")
        if default:
            return f"{username}@{default}"
    return username


def secret_matches(credentials: Credentials, password: str) -> bool:
    """Whether ``credentials`` prove knowledge of ``password`` (constant-time)."""
    if credentials.mechanism == "CRAM-MD5":
        expected = hmac.new(password.encode("utf-8"), credentials.challenge, "md5").hexdigest()
        return hmac.compare_digest(expected, credentials.secret)
    if credentials.mechanism == "APOP":
        expected = hashlib.md5(credentials.challenge + password.encode("utf-8"),
                               usedforsecurity=False).hexdigest()
        return hmac.compare_digest(expected, credentials.secret)
    return hmac.compare_digest(password.encode("utf-8"), credentials.secret.encode("utf-8"))


async def failure_delay(base: float, failures: int) -> None:
    """Wait ``base`` times the session's failures (at most five times) before a refusal."""
    if base > 0:
        await asyncio.sleep(base * min(max(failures, 1), 5))


def record_login(store: Any, mailbox_id: int, service: str, client_ip: str,
                 at: float) -> None:
    """A successful login: one ``login_record`` row per mailbox, service and client IP
    (POP-before-SMTP, manual 6.2.3.5) and the mailbox's "last login" (blocking: call
    it off the event loop)."""
    with store.transaction() as conn:
        conn.execute("INSERT INTO login_record (mailbox_id, service, client_ip, at) "
                     "VALUES (?, ?, ?, ?) ON CONFLICT(mailbox_id, service, client_ip) "
                     "DO UPDATE SET at = excluded.at", (mailbox_id, service, client_ip, at))
        conn.execute("UPDATE mailbox SET last_login_at = ? WHERE id = ?", (at, mailbox_id))


def last_login_from(store: Any, client_ip: str, service_prefix: str) -> float | None:
    """When a mailbox last logged in from ``client_ip`` to a service whose name starts
    with ``service_prefix`` (``pop`` for POP-before-SMTP); None if never."""
    row = store.conn.execute(
        "SELECT max(at) FROM login_record WHERE client_ip = ? AND service LIKE ?",
        (client_ip, f"{service_prefix}%")).fetchone()
    return row[0] if row else None


class LoginChecker:
    """Checks :class:`~postroom.auth.sasl.Credentials` against the directory.

    ``service`` names the service in the lockout record (``smtp``, ``pop3``, ``imap``).
    """

    def __init__(self, store: Store, *, service: str, workers: int = 2,
                 lockout: Lockout | None = None) -> None:
        self.store = store
        self.service = service
        self.lockout = lockout or Lockout(store)
        self._pool = ThreadPoolExecutor(max_workers=workers,
                                        thread_name_prefix=f"{service}-auth")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def digest_mechanisms_work(self) -> bool:
        """Whether mailboxes have recoverable passwords (needed by CRAM-MD5 and APOP)."""
        return bool(self.store.settings.get("messaging_manager.security.encrypt_passwords"))

    def resolve(self, username: str) -> Mailbox | None:
        """The mailbox a login name means (see the module docstring), or None."""
        settings = self.store.settings
        return self.store.directory.find_login(  # type: ignore[call-arg]
            qualify(settings, username), separators=login_separators(settings))

    async def check(self, credentials: Credentials, client_ip: str = "") -> LoginResult:
        """Check off the event loop. Never raises for bad credentials."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.check_now, credentials, client_ip)

    def check_now(self, credentials: Credentials, client_ip: str = "") -> LoginResult:
        """The blocking check (runs in the pool)."""
        if credentials.mechanism in DIGEST_MECHANISMS:
            return self._check_digest(credentials, client_ip)
        return self._check_password(credentials, client_ip)

    def _check_password(self, credentials: Credentials, client_ip: str) -> LoginResult:
        settings = self.store.settings
        lockout = self.lockout
        box = None
        if lockout.enabled:
            box = self.resolve(credentials.username)
            if box is not None and lockout.is_locked(box.id):
                return LoginResult(None, "locked", box.id)
        found = self.store.directory.authenticate(  # type: ignore[call-arg]
            qualify(settings, credentials.username), credentials.secret,
            separators=login_separators(settings))
        if found is not None:
            return LoginResult(Identity(found.postoffice, found.name), "ok", found.id)
        if box is not None:
            locked = lockout.record_failure(box.id, self.service, client_ip)
            return LoginResult(None, "locked" if locked else "bad-credentials", box.id)
        return LoginResult(None, "bad-credentials")

    def _check_digest(self, credentials: Credentials, client_ip: str) -> LoginResult:
        box = self.resolve(credentials.username)
        if box is None:
            return LoginResult(None, "bad-credentials")
        if self.lockout.is_locked(box.id):
            return LoginResult(None, "locked", box.id)
        directory = self.store.directory
        allowed = not (box.options.get("disabled") or box.options.get("prevent_authentication"))
        if allowed:
            try:
                allowed = not directory.get_postoffice(box.postoffice).options.get("disabled")
            except ValueError:
                allowed = False
        secret = directory.recoverable_secret(box.postoffice, box.name) if allowed else None
        if secret is not None and secret_matches(credentials, secret):
            return LoginResult(Identity(box.postoffice, box.name), "ok", box.id)
        locked = self.lockout.record_failure(box.id, self.service, client_ip)
        if locked:
            return LoginResult(None, "locked", box.id)
        return LoginResult(None, "bad-credentials" if allowed else "disabled", box.id)
