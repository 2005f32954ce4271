"""POP3 policy: who may connect, which logins are offered, timeouts (manual 6.3.4.2-3).

Plain functions of the settings (anything with ``get(key)``), read afresh for every
connection or command so that ``postroom settings set`` applies at once:

* connect: ``pop3.general.access_control_mode`` / ``access_control_list`` (the IP list
  is a deny list, or the only addresses allowed; patterns as for SMTP: addresses,
  CIDR ranges, ``a.b.*.*``), and ``pop3.general.max_connections``;
* logins: USER/PASS and the plaintext SASL mechanisms (PLAIN, LOGIN) only under TLS
  unless ``pop3.security.allow_plaintext_auth_without_tls``; with
  ``pop3.general.apop_enabled`` ("force clients to enable APOP") USER/PASS and
  PLAIN/LOGIN are refused and APOP is required; APOP and CRAM-MD5
  (``pop3.general.cram_md5_enabled``) need recoverable passwords
  (``messaging_manager.security.encrypt_passwords``); NTLM is not offered (NTLMv1 is
  broken; the manual's option stays off);
* the greeting (``pop3.advanced.alternate_welcome_*``) and the idle timeout: the
  shorter of ``pop3.general.idle_timeout`` (when enabled) and
  ``pop3.advanced.inactivity_timeout``.

Untrusted input: the client IP (from the socket).
"""

from __future__ import annotations

from typing import Any

from postroom.connectors.smtp.policy.access import ip_in_setting
from postroom.services.accept_processes import share

PLAINTEXT_SETTING = "pop3.security.allow_plaintext_auth_without_tls"


def connect_refusal(settings: Any, client_ip: str, connections: int,
                    processes: int = 1) -> str | None:
    """Why a new connection is refused (a reason tag for logs), or None. With several
    accept processes each admits its share of the maximum."""
    listed = ip_in_setting(settings, "pop3.general.access_control_list", client_ip)
    if settings.get("pop3.general.access_control_mode") == "allow_listed_only":
        if not listed:
            return "ip-not-allowed"
    elif listed:
        return "ip-denied"
    if connections > share(int(settings.get("pop3.general.max_connections")), processes):
        return "too-many-connections"
    return None


def plaintext_allowed(settings: Any, tls: bool) -> bool:
    """Whether passwords may be sent in the clear on this connection now."""
    if tls:
        return True
    try:
        return bool(settings.get(PLAINTEXT_SETTING))
    except Exception:   # an older catalogue without the option: the safe answer
        return False


def apop_required(settings: Any) -> bool:
    return bool(settings.get("pop3.general.apop_enabled"))


def digests_possible(settings: Any) -> bool:
    return bool(settings.get("messaging_manager.security.encrypt_passwords"))


def user_pass_allowed(settings: Any, tls: bool) -> bool:
    return not apop_required(settings) and plaintext_allowed(settings, tls)


def apop_offered(settings: Any) -> bool:
    return digests_possible(settings)


def sasl_mechanisms(settings: Any, tls: bool) -> tuple[str, ...]:
    """The AUTH mechanisms usable now, in the order CAPA lists them."""
    names: list[str] = []
    if user_pass_allowed(settings, tls):
        names += ["PLAIN", "LOGIN"]
    if settings.get("pop3.general.cram_md5_enabled") and digests_possible(settings):
        names.append("CRAM-MD5")
    return tuple(names)


def greeting(settings: Any, hostname: str) -> str:
    if settings.get("pop3.advanced.alternate_welcome_enabled"):
        text = str(settings.get("pop3.advanced.alternate_welcome_text") or "").strip()
        if text:
            return text
    return f"{hostname} POP3 server ready"


def idle_timeout(settings: Any) -> float:
    timeout = float(settings.get("pop3.advanced.inactivity_timeout"))
    if settings.get("pop3.general.idle_timeout_enabled"):
        timeout = min(timeout, float(settings.get("pop3.general.idle_timeout")))
    return timeout
