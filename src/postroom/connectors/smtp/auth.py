"""SMTP AUTH, server side: the SASL exchanges PLAIN, LOGIN and CRAM-MD5 (RFC 4954).

Mechanisms: PLAIN (RFC 4616: ``[authzid] NUL authcid NUL passwd``; a different
authzid is refused, we do not let one user act for another), LOGIN (the de-facto
``Username:``/``Password:`` exchange; an initial response is the user name) and
CRAM-MD5 (RFC 2195: challenge ``<random.time@host>``, response ``user hex-hmac``).
The protocol core (:mod:`.protocol`) already refuses PLAIN and LOGIN before TLS
unless allowed, and base64-decodes every line.

Who may log in (manual 6.2.3.5 "Authentication method", 6.3.4.2 "Alternate @
characters"): with ``smtp.relay.auth_method = mailbox`` the user name is
``mailbox@postoffice`` or any SMTP address mapped to the mailbox, with the
characters of ``pop3.general.alternate_at_characters`` accepted in place of ``@``
(the manual defines that list once, for POP; the same old clients send mail);
disabled mailboxes and post offices and mailboxes with ``prevent_authentication``
cannot log in. With ``fixed`` one user name and password
(``smtp.relay.auth_fixed_*``) are accepted and the session is ``("", name)``.

Costs and abuse: an Argon2 verify costs about 28 ms, so passwords are checked in a
thread pool of two (never on the event loop); CRAM-MD5 needs the mailbox's
recoverable password (``messaging_manager.security.encrypt_passwords``) and is cheap.
Every failure waits :attr:`Authenticator.failure_delay` seconds, growing with the
session's failures, before its 535, to slow guessing down.

Untrusted input: every byte of the exchange. User names are length-limited and
must be valid UTF-8 without controls.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from postroom.store import Store

MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")
MAX_USERNAME = 320
MAX_PASSWORD = 1024


@dataclass(frozen=True)
class Identity:
    """Who authenticated: ``(postoffice, mailbox)``, or ``("", name)`` for the fixed
    relay credential. ``login`` is what logs and the envelope show."""

    postoffice: str
    mailbox: str

    @property
    def login(self) -> str:
        return f"{self.mailbox}@{self.postoffice}" if self.postoffice else self.mailbox

    @property
    def facts(self) -> tuple[str, str]:
        return (self.postoffice, self.mailbox)


@dataclass(frozen=True)
class Challenge:
    """Send ``334`` with these bytes (base64-encoded by the caller)."""

    data: bytes


@dataclass(frozen=True)
class Credentials:
    """The exchange is complete: check these. ``secret`` is the password, or for
    CRAM-MD5 the hex digest the client computed over ``challenge``."""

    mechanism: str
    username: str
    secret: str
    challenge: bytes = b""


@dataclass(frozen=True)
class Malformed:
    """The client's answer cannot be a valid credential (RFC 4954: 501)."""

    reason: str


Step = Challenge | Credentials | Malformed


class SaslExchange:
    """One AUTH exchange, pure: feed the initial response, then each answer."""

    def __init__(self, mechanism: str, hostname: str) -> None:
        self.mechanism = mechanism.upper()
        self.hostname = hostname
        self._username: str | None = None
        self._challenge = b""

    def start(self, initial: bytes | None) -> Step:
        if self.mechanism == "PLAIN":
            return Challenge(b"") if initial is None else _plain(initial)
        if self.mechanism == "LOGIN":
            if initial is None:
                return Challenge(b"Username:")
            return self._login_user(initial)
        if self.mechanism == "CRAM-MD5":
            if initial is not None:
                return Malformed("CRAM-MD5 takes no initial response")
            stamp = f"<{os.urandom(8).hex()}.{int(time.time())}@{self.hostname}>"
            self._challenge = stamp.encode("ascii")
            return Challenge(self._challenge)
        return Malformed(f"unsupported mechanism {self.mechanism}")

    def respond(self, data: bytes) -> Step:
        if self.mechanism == "PLAIN":
            return _plain(data)
        if self.mechanism == "LOGIN":
            if self._username is None:
                return self._login_user(data)
            password = _text(data, MAX_PASSWORD)
            if password is None:
                return Malformed("password is not valid UTF-8")
            return Credentials("LOGIN", self._username, password)
        if self.mechanism == "CRAM-MD5":
            text = _text(data, MAX_USERNAME + 40)
            if text is None or " " not in text:
                return Malformed("expected 'user digest'")
            user, _, digest = text.rpartition(" ")
            if not user or len(digest) != 32:
                return Malformed("expected 'user digest'")
            return Credentials("CRAM-MD5", user, digest.lower(), self._challenge)
        return Malformed(f"unsupported mechanism {self.mechanism}")

    def _login_user(self, data: bytes) -> Step:
        user = _text(data, MAX_USERNAME)
        if not user:
            return Malformed("user name is empty or not valid UTF-8")
        self._username = user
        return Challenge(b"Password:")


def _text(data: bytes, limit: int) -> str | None:
    if len(data) > limit:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        return None
    return text


def _plain(data: bytes) -> Step:
    parts = data.split(b"\x00")
    if len(parts) != 3:
        return Malformed("PLAIN needs authzid NUL authcid NUL password")
    authzid, authcid, password = (_text(p, MAX_PASSWORD) for p in parts)
    if authcid is None or password is None or authzid is None or not authcid:
        return Malformed("PLAIN fields are empty or not valid UTF-8")
    if authzid and authzid != authcid:
        return Malformed("acting for another user is not supported")
    return Credentials("PLAIN", authcid, password)


class Authenticator:
    """Checks :class:`Credentials` against the directory (or the fixed credential)."""

    def __init__(self, store: Store, *, failure_delay: float = 1.0, workers: int = 2) -> None:
        self.store = store
        self.failure_delay = failure_delay
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smtp-auth")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def mechanisms(self) -> tuple[str, ...]:
        """What can work at all: CRAM-MD5 only with recoverable passwords."""
        settings = self.store.settings
        names = ["PLAIN", "LOGIN"]
        if settings.get("smtp.general.cram_md5_enabled") and (
            settings.get("messaging_manager.security.encrypt_passwords")
            or settings.get("smtp.relay.auth_method") == "fixed"
        ):
            names.append("CRAM-MD5")
        return tuple(names)

    async def verify(self, credentials: Credentials) -> Identity | None:
        """The identity, or None. Never raises for bad credentials."""
        settings = self.store.settings
        if settings.get("smtp.relay.auth_method") == "fixed":
            return self._verify_fixed(credentials)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._verify_mailbox, credentials)

    async def fail_delay(self, failures: int) -> None:
        """Wait before answering a failure: ``failure_delay`` times the session's failures
        (at most five times)."""
        if self.failure_delay > 0:
            await asyncio.sleep(self.failure_delay * min(max(failures, 1), 5))

    def _verify_fixed(self, credentials: Credentials) -> Identity | None:
        settings = self.store.settings
        user = settings.get("smtp.relay.auth_fixed_username")
        password = settings.get("smtp.relay.auth_fixed_password")
        if not user or not password or not hmac.compare_digest(
                credentials.username.encode(), str(user).encode()):
            return None
        if not _secret_matches(credentials, str(password)):
            return None
        return Identity("", str(user))

    def _verify_mailbox(self, credentials: Credentials) -> Identity | None:
        directory = self.store.directory
        separators = "@" + (self.store.settings.get("pop3.general.alternate_at_characters") or "")
        if credentials.mechanism != "CRAM-MD5":
            box = directory.authenticate(credentials.username, credentials.secret,
                                         separators=separators)  # type: ignore[call-arg]
            return Identity(box.postoffice, box.name) if box is not None else None
        box = directory.find_login(credentials.username,
                                   separators=separators)  # type: ignore[call-arg]
        if box is None or box.options.get("disabled") or box.options.get(
                "prevent_authentication"):
            return None
        try:
            if directory.get_postoffice(box.postoffice).options.get("disabled"):
                return None
        except ValueError:
            return None
        secret = directory.recoverable_secret(box.postoffice, box.name)
        if secret is None or not _secret_matches(credentials, secret):
            return None
        return Identity(box.postoffice, box.name)


def _secret_matches(credentials: Credentials, password: str) -> bool:
    if credentials.mechanism == "CRAM-MD5":
        expected = hmac.new(password.encode("utf-8"), credentials.challenge, "md5").hexdigest()
        return hmac.compare_digest(expected, credentials.secret)
    return hmac.compare_digest(password.encode("utf-8"), credentials.secret.encode("utf-8"))
