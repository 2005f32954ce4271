"""The name this server calls itself: in greetings (SMTP 220, POP3 +OK, IMAP OK),
EHLO, Received lines, NDRs and notices.

One rule for every service (manual 6.2.3.2 "Local domain name"): the setting
``smtp.general.local_domain_name`` when set, else the name in the server's TLS
certificate (what clients verify against), else the system's host name.
"""

from __future__ import annotations

from typing import Any

from postroom.net.tls import ServerTls, TlsError
from postroom.store.datadir import host_name

_certificates: dict[str, tuple[float, str | None]] = {}


def server_hostname(settings: Any, tls: ServerTls | None) -> str:
    """The name, for a service that holds its certificate already."""
    configured = str(settings.get("smtp.general.local_domain_name") or "").strip()
    if configured:
        return configured
    return (tls.hostname() if tls is not None else None) or host_name()


def store_hostname(store: Any) -> str:
    """The name, for code without a loaded certificate (NDRs, notices): the
    certificate's name is read once per certificate file change."""
    configured = str(store.settings.get("smtp.general.local_domain_name") or "").strip()
    if configured:
        return configured
    cert = store.home.cert_file
    try:
        stamp = cert.stat().st_mtime
    except OSError:
        return host_name()
    cached = _certificates.get(str(cert))
    if cached is None or cached[0] != stamp:
        try:
            name = ServerTls(cert, store.home.key_file).hostname()
        except TlsError:
            name = None
        cached = _certificates[str(cert)] = (stamp, name)
    return cached[1] or host_name()
