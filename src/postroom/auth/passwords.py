"""Password hashing for logins (Argon2id).

Parameters follow the measurements in DEPENDENCIES.md: ``time_cost=2,
memory_cost=19456 KiB, parallelism=1`` verifies in about 28 ms here, which keeps
logins cheap for the server and a stolen database expensive to attack. Hashes
made with older parameters verify and report that they need a rehash, so the
login path can upgrade them transparently.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing or malformed hash never matches."""
    if not stored_hash:
        return False
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)
