"""Server-side TLS for every listener: one ``SSLContext`` from ``DIR/tls/cert.pem`` and
``key.pem``, reloaded in place when the administrator replaces the files.

Used by SMTP (STARTTLS, RFC 3207, and implicit TLS on the submission port 465,
RFC 8314 §3.3), and later POP3S, IMAPS and HTTPS. Protocol floor is TLS 1.2
(RFC 8996 deprecates 1.0 and 1.1); ciphers are OpenSSL's defaults for that floor.

Reloading: :meth:`ServerTls.reload_if_changed` compares the files' modification
times and sizes and calls ``load_cert_chain`` on the *same* context, so listeners
created with it (``loop.create_server(ssl=...)``) hand the new certificate to the
next handshake without a restart. A pair that does not load (half-copied, key not
matching) is refused with a logged error and the previous certificate stays.

Untrusted input: none here (the files are the administrator's); the handshake
bytes are parsed by OpenSSL.

Known limits: one certificate for all names (no SNI selection yet).
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

log = logging.getLogger("postroom.tls")


class TlsError(RuntimeError):
    """The certificate or key cannot be used; the message names the file."""


class ServerTls:
    """The server's TLS context for ``cert_file`` / ``key_file`` (see the module docstring)."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self._stamp: tuple[tuple[int, int], tuple[int, int]] | None = None
        self.context = self._new_context()
        self._load()

    @staticmethod
    def _new_context() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
        context.options |= ssl.OP_NO_RENEGOTIATION
        return context

    def _file_stamp(self) -> tuple[tuple[int, int], tuple[int, int]]:
        stats = []
        for path in (self.cert_file, self.key_file):
            try:
                st = path.stat()
            except OSError as exc:
                raise TlsError(f"{path}: {exc.strerror}") from None
            stats.append((st.st_mtime_ns, st.st_size))
        return stats[0], stats[1]

    def _load(self) -> None:
        stamp = self._file_stamp()
        try:
            self.context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(f"{self.cert_file} / {self.key_file}: {exc}") from None
        self._stamp = stamp

    def reload_if_changed(self) -> bool:
        """Load the files again if they changed; True when a new certificate is in use."""
        try:
            if self._file_stamp() == self._stamp:
                return False
            self._load()
        except TlsError as exc:
            log.error("keeping the previous certificate: %s", exc)
            return False
        log.info("loaded new certificate from %s", self.cert_file)
        return True

    def hostname(self) -> str | None:
        """The certificate's first DNS name (or its common name), for the banner."""
        try:
            cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        except (OSError, ValueError):
            return None
        try:
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            dns_names = names.value.get_values_for_type(x509.DNSName)
            if dns_names:
                return dns_names[0]
        except x509.ExtensionNotFound:
            pass
        common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(common[0].value) if common else None


def describe(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """``"TLSv1.3 TLS_AES_256_GCM_SHA384"`` for logs and the Received header."""
    if ssl_object is None:
        return None
    cipher = ssl_object.cipher()
    version = ssl_object.version() or "TLS"
    return f"{version} {cipher[0]}" if cipher else version
