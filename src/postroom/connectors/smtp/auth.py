"""SMTP AUTH, server side: the SASL exchanges PLAIN, LOGIN and CRAM-MD5 (RFC 4954).

The exchanges themselves (:class:`SaslExchange`) and the check of a login against the
directory, the lockout and the failure delay are shared with POP3 and IMAP and live
in :mod:`postroom.auth` (``sasl``, ``logins``, ``lockout``); this module adds what
is SMTP's own. The protocol core (:mod:`.protocol`) already refuses PLAIN and LOGIN
before TLS unless allowed, and base64-decodes every line.

Who may log in (manual 6.2.3.5 "Authentication method"): with
``smtp.relay.auth_method = mailbox`` the user name is a mailbox login as
:mod:`postroom.auth.logins` resolves it (``mailbox@postoffice``, any mapped SMTP
address, the alternate ``@`` characters of ``pop3.general.alternate_at_characters``);
failures count towards the account lockout (manual 5.8.2). With ``fixed`` one user
name and password (``smtp.relay.auth_fixed_*``) are accepted and the session is
``("", name)``.

Costs and abuse: an Argon2 verify costs about 28 ms, so passwords are checked in a
thread pool of two (never on the event loop); CRAM-MD5 needs the mailbox's
recoverable password (``messaging_manager.security.encrypt_passwords``) and is cheap.
Every failure waits :attr:`Authenticator.failure_delay` seconds, growing with the
session's failures, before its 535, to slow guessing down.

Untrusted input: every byte of the exchange (see :mod:`postroom.auth.sasl`).
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from postroom.auth.logins import Identity, LoginChecker, failure_delay, secret_matches
from postroom.auth.sasl import (
    MAX_PASSWORD,
    MAX_USERNAME,
    MECHANISMS,
    Challenge,
    Credentials,
    Malformed,
    SaslExchange,
    Step,
)

if TYPE_CHECKING:
    from postroom.store import Store

__all__ = [
    "MAX_PASSWORD",
    "MAX_USERNAME",
    "MECHANISMS",
    "Authenticator",
    "Challenge",
    "Credentials",
    "Identity",
    "Malformed",
    "SaslExchange",
    "Step",
]


class Authenticator:
    """Checks :class:`Credentials` against the directory (or the fixed credential)."""

    def __init__(self, store: Store, *, failure_delay: float = 1.0, workers: int = 2) -> None:
        self.store = store
        self.failure_delay = failure_delay
        self.logins = LoginChecker(store, service="smtp", workers=workers)

    def close(self) -> None:
        self.logins.close()

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

    async def verify(self, credentials: Credentials, client_ip: str = "") -> Identity | None:
        """The identity, or None. Never raises for bad credentials."""
        settings = self.store.settings
        if settings.get("smtp.relay.auth_method") == "fixed":
            return self._verify_fixed(credentials)
        result = await self.logins.check(credentials, client_ip)
        return result.identity

    async def fail_delay(self, failures: int) -> None:
        """Wait before answering a failure: ``failure_delay`` times the session's failures
        (at most five times)."""
        await failure_delay(self.failure_delay, failures)

    def _verify_fixed(self, credentials: Credentials) -> Identity | None:
        settings = self.store.settings
        user = settings.get("smtp.relay.auth_fixed_username")
        password = settings.get("smtp.relay.auth_fixed_password")
        if not user or not password or not hmac.compare_digest(
                credentials.username.encode(), str(user).encode()):
            return None
        if not secret_matches(credentials, str(password)):
            return None
        return Identity("", str(user))
