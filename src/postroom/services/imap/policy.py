"""IMAP policy: who may connect, which logins are offered, limits (manual 6.3.3.2).

Plain functions of the settings, read afresh per connection or command:

* connect: ``imap.general.access_control_mode`` / ``access_control_list`` (deny list or
  allow-only list, patterns as for SMTP/POP3) and the client connection cap
  (``imap.general.client_connections_limited`` + ``max_client_connections``);
* logins: LOGIN and AUTHENTICATE PLAIN/LOGIN only under TLS unless
  ``imap.security.allow_plaintext_auth_without_tls`` (before that, CAPABILITY shows
  LOGINDISABLED, RFC 3501 §6.2.3); CRAM-MD5 when ``imap.general.cram_md5_enabled`` and
  passwords are recoverable (``messaging_manager.security.encrypt_passwords``);
* the idle timeout (``imap.general.idle_timeout`` when enabled; RFC 9051 asks for at
  least 30 minutes) and the APPENDLIMIT (``imap.general.append_limit``).

Untrusted input: the client IP (from the socket).
"""

from __future__ import annotations

from typing import Any

from postroom.connectors.smtp.policy.access import ip_in
from postroom.services.accept_processes import share

PLAINTEXT_SETTING = "imap.security.allow_plaintext_auth_without_tls"
NO_TIMEOUT = 24 * 3600.0


def _get(settings: Any, key: str, default: Any) -> Any:
    try:
        return settings.get(key)
    except Exception:        # an older catalogue without the option: the safe default
        return default


def connect_refusal(settings: Any, client_ip: str, connections: int,
                    processes: int = 1) -> str | None:
    """Why a new connection is refused (a reason tag for logs), or None."""
    listed = ip_in(_get(settings, "imap.general.access_control_list", []), client_ip)
    if _get(settings, "imap.general.access_control_mode", "deny_listed") == "allow_listed_only":
        if not listed:
            return "ip-not-allowed"
    elif listed:
        return "ip-denied"
    if settings.get("imap.general.client_connections_limited") == "limited" and \
            connections > share(int(settings.get("imap.general.max_client_connections")),
                                processes):
        return "too-many-connections"
    return None


def plaintext_allowed(settings: Any, tls: bool) -> bool:
    return tls or bool(_get(settings, PLAINTEXT_SETTING, False))


def sasl_mechanisms(settings: Any, tls: bool) -> tuple[str, ...]:
    names: list[str] = []
    if plaintext_allowed(settings, tls):
        names += ["PLAIN", "LOGIN"]
    if settings.get("imap.general.cram_md5_enabled") and \
            _get(settings, "messaging_manager.security.encrypt_passwords", False):
        names.append("CRAM-MD5")
    return tuple(names)


def idle_timeout(settings: Any) -> float:
    if settings.get("imap.general.idle_timeout_enabled"):
        return float(settings.get("imap.general.idle_timeout"))
    return NO_TIMEOUT


def append_limit(settings: Any) -> int:
    return int(_get(settings, "imap.general.append_limit", 50 * 1024 * 1024))


def xlist_enabled(settings: Any) -> bool:
    return bool(settings.get("imap.general.xlist_enabled"))
