"""SASL exchanges, server side, shared by SMTP AUTH (RFC 4954), POP3 AUTH (RFC 5034) and
IMAP AUTHENTICATE: PLAIN, LOGIN and CRAM-MD5, as a pure state machine.

Mechanisms: PLAIN (RFC 4616: ``[authzid] NUL authcid NUL passwd``; a different
authzid is refused, we do not let one user act for another), LOGIN (the de-facto
``Username:``/``Password:`` exchange; an initial response is the user name) and
CRAM-MD5 (RFC 2195: challenge ``<random.time@host>``, response ``user hex-hmac``).
The protocol cores base64-decode every line before it reaches :class:`SaslExchange`
and decide whether plaintext mechanisms are allowed before TLS.

Untrusted input: every byte of the exchange. User names are length-limited and must
be valid UTF-8 without control characters; the result is a :class:`Credentials` to
check (:mod:`postroom.auth.logins`) or :class:`Malformed`, never an exception.
"""

from __future__ import annotations

import os
import time
import unicodedata
from dataclasses import dataclass

MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")
PLAINTEXT_MECHANISMS = frozenset({"PLAIN", "LOGIN"})
MAX_USERNAME = 320
MAX_PASSWORD = 1024


@dataclass(frozen=True)
class Challenge:
    """Send this challenge (base64-encoded by the protocol)."""

    data: bytes


@dataclass(frozen=True)
class Credentials:
    """The exchange is complete: check these. ``secret`` is the password, or for
    CRAM-MD5 and APOP the hex digest the client computed over ``challenge``."""

    mechanism: str
    username: str
    secret: str
    challenge: bytes = b""


@dataclass(frozen=True)
class Malformed:
    """The client's answer cannot be a valid credential."""

    reason: str


Step = Challenge | Credentials | Malformed


def cram_challenge(hostname: str) -> bytes:
    """A fresh ``<random.time@host>`` stamp (RFC 2195 challenge, RFC 1939 APOP banner)."""
    return f"<{os.urandom(8).hex()}.{int(time.time())}@{hostname}>".encode("ascii")


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
            self._challenge = cram_challenge(self.hostname)
            return Challenge(self._challenge)
        return Malformed(f"unsupported mechanism {self.mechanism}")

    def respond(self, data: bytes) -> Step:
        if self.mechanism == "PLAIN":
            return _plain(data)
        if self.mechanism == "LOGIN":
            if self._username is None:
                return self._login_user(data)
            password = text(data, MAX_PASSWORD)
            if password is None:
                return Malformed("password is not valid UTF-8")
            return Credentials("LOGIN", self._username, password)
        if self.mechanism == "CRAM-MD5":
            return digest_credentials("CRAM-MD5", data, self._challenge)
        return Malformed(f"unsupported mechanism {self.mechanism}")

    def _login_user(self, data: bytes) -> Step:
        user = text(data, MAX_USERNAME)
        if not user:
            return Malformed("user name is empty or not valid UTF-8")
        self._username = user
        return Challenge(b"Password:")


def digest_credentials(mechanism: str, data: bytes, challenge: bytes) -> Step:
    """``user hex-digest`` (CRAM-MD5 response, APOP arguments) as credentials."""
    line = text(data, MAX_USERNAME + 40)
    if line is None or " " not in line:
        return Malformed("expected 'user digest'")
    user, _, digest = line.rpartition(" ")
    if not user or len(digest) != 32:
        return Malformed("expected 'user digest'")
    return Credentials(mechanism, user, digest.lower(), challenge)


def text(data: bytes, limit: int) -> str | None:
    """``data`` as UTF-8 text of at most ``limit`` bytes without controls, else None."""
    if len(data) > limit:
        return None
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(unicodedata.category(ch) == "Cc" for ch in decoded):
        return None
    return decoded


def _plain(data: bytes) -> Step:
    parts = data.split(b"\x00")
    if len(parts) != 3:
        return Malformed("PLAIN needs authzid NUL authcid NUL password")
    authzid, authcid, password = (text(p, MAX_PASSWORD) for p in parts)
    if authcid is None or password is None or authzid is None or not authcid:
        return Malformed("PLAIN fields are empty or not valid UTF-8")
    if authzid and authzid != authcid:
        return Malformed("acting for another user is not supported")
    return Credentials("PLAIN", authcid, password)
