"""Secrets kept recoverable under the server key (AES-256-GCM).

Login passwords are stored as Argon2 hashes and never decrypted. CRAM-MD5 and
APOP, however, need the shared secret itself, and POP retrieval needs the remote
password; those are kept encrypted with the server key from ``DIR/secret.key``.
The associated data binds a ciphertext to its row (``mailbox:42``), so copying an
encrypted column from one row to another does not yield a usable secret.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
VERSION = b"\x01"


class SecretError(ValueError):
    """A stored secret could not be decrypted (wrong key, or moved between rows)."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, context: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode())
        return VERSION + nonce + sealed

    def decrypt(self, blob: bytes, context: str) -> str:
        if not blob or blob[:1] != VERSION:
            raise SecretError("unknown secret format")
        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, context.encode()).decode("utf-8")
        except InvalidTag:
            raise SecretError(
                f"secret for {context} does not decrypt under this server key") from None
