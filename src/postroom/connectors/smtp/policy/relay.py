"""Relay control at RCPT TO (manual 6.2.3.5 Relay, 6.2.3.11 Blocked addresses).

A recipient that is not hosted here is a relay. Relaying is allowed only when
``smtp.relay.enabled`` is on and the client matches one enabled rule: it
authenticated, its IP is in a privileged range, its envelope sender uses a hosted
domain (off by default: trivially spoofed), or its IP logged in to POP3 within the
POP-before-SMTP period. Everything else answers 550 5.7.1, the reply every
open-relay tester expects.

Hosted recipients are checked here too: unknown addresses answer 550 5.1.1 (no
catch-all, catch-alls disabled, the domain disabled, or an address on the blocked
addresses list, which the manual says is refused "as nonexistent"). A recipient that
carries a routing trick (see :mod:`.locality`) is refused with 550 5.7.1 for a client
that may not relay, even at a hosted domain, so no parser difference between us and a
later hop can turn it into a relay.

Untrusted input: the recipient path; the POP login time comes from the store.

Settings read: ``smtp.relay.enabled``, ``smtp.relay.allow_authenticated``,
``smtp.relay.allow_privileged_ips``, ``smtp.relay.privileged_ip_ranges``,
``smtp.relay.allow_local_sender``, ``smtp.relay.pop_before_smtp_enabled``,
``smtp.relay.pop_before_smtp_duration`` (minutes), ``smtp.blocked_addresses``, and
those of :mod:`.locality`.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Iterable

from postroom.connectors.smtp.policy import verdict as v
from postroom.connectors.smtp.policy.access import is_privileged
from postroom.connectors.smtp.policy.locality import Recipient, canonical_domain, hosted_domain
from postroom.connectors.smtp.policy.options import SettingsReader, read
from postroom.connectors.smtp.policy.session import Facts, IPAddress, SessionFacts
from postroom.connectors.smtp.policy.verdict import Verdict
from postroom.store.directory import Directory

CLOCK_SKEW = 60.0
"""Seconds a POP login time may lie in the future (another node's clock) and still count."""


def pop_before_smtp_allowed(last_login_at: float | None, now: float, window: float) -> bool:
    """Whether a POP3 login at ``last_login_at`` still lets its IP relay at ``now``.

    ``window`` is in seconds (the setting is in minutes). A login in the future by
    more than :data:`CLOCK_SKEW` does not count.
    """
    if last_login_at is None or window <= 0:
        return False
    return now - window <= last_login_at <= now + CLOCK_SKEW


class PopLogins:
    """POP-before-SMTP record for one process: the last POP3 login time per client IP.

    The POP3 service calls :meth:`record` after a successful login; the SMTP server
    passes :meth:`last_login` as ``Facts.last_pop_login_at``. When POP3 and SMTP run
    in different processes the store's ``login_record`` table is the record instead.
    Entries older than ``keep`` seconds are dropped as new ones arrive.
    """

    def __init__(self, keep: float = 86_400.0, max_entries: int = 100_000) -> None:
        self._keep = keep
        self._max = max_entries
        self._logins: dict[IPAddress, float] = {}
        self._lock = threading.Lock()

    def record(self, ip: IPAddress, at: float) -> None:
        with self._lock:
            self._logins.pop(ip, None)
            self._logins[ip] = at
            if len(self._logins) > self._max:
                oldest = next(iter(self._logins))
                del self._logins[oldest]
            cutoff = at - self._keep
            while self._logins:
                first_ip, first_at = next(iter(self._logins.items()))
                if first_at >= cutoff:
                    break
                del self._logins[first_ip]

    def last_login(self, ip: IPAddress) -> float | None:
        with self._lock:
            return self._logins.get(ip)


def relay_rule(settings: SettingsReader, directory: Directory, session: SessionFacts,
               facts: Facts, now: float) -> str | None:
    """The first enabled relay rule the client matches, or ``None``."""
    if not read(settings, "smtp.relay.enabled"):
        return None
    if session.is_authenticated and read(settings, "smtp.relay.allow_authenticated"):
        return "authenticated"
    if is_privileged(settings, session.client_ip):
        return "privileged-ip"
    sender = session.mail_from
    if (read(settings, "smtp.relay.allow_local_sender") and sender is not None
            and not sender.is_null and not sender.is_literal):
        domain = canonical_domain(sender.domain)
        if domain and hosted_domain(directory, domain) is not None:
            return "local-sender"
    if read(settings, "smtp.relay.pop_before_smtp_enabled"):
        window = 60.0 * read(settings, "smtp.relay.pop_before_smtp_duration")
        if pop_before_smtp_allowed(facts.last_pop_login_at, now, window):
            return "pop-before-smtp"
    return None


def address_listed(patterns: Iterable[str], address: str) -> str | None:
    """The first pattern matching ``address`` (``user@domain``, ``*@domain``, ``domain``,
    ``@domain``, shell wildcards; case-insensitive), or ``None``."""
    text = address.lower()
    _, _, domain = text.rpartition("@")
    for raw in patterns:
        pattern = raw.strip().lower()
        if not pattern:
            continue
        if pattern.startswith("@"):
            pattern = "*" + pattern
        elif "@" not in pattern:
            if fnmatch.fnmatchcase(domain, pattern):
                return raw
            continue
        if fnmatch.fnmatchcase(text, pattern):
            return raw
    return None


def check_rcpt(settings: SettingsReader, directory: Directory, session: SessionFacts,
               recipient: Recipient, facts: Facts, now: float) -> Verdict | None:
    """Accept a hosted or relayable recipient; refuse everything else."""
    if recipient.kind == "invalid":
        reply = v.BAD_DESTINATION if recipient.reason == "bad-literal" else v.BAD_RECIPIENT
        return Verdict.refuse(reply, recipient.reason or "bad-recipient",
                              detail=recipient.path.raw)
    blocked = address_listed(read(settings, "smtp.blocked_addresses"), recipient.address) \
        if recipient.address else None
    if blocked is not None:
        return Verdict.refuse(v.UNKNOWN_USER, "blocked-recipient", detail=blocked)
    needs_relay = (recipient.kind == "remote" or recipient.trick is not None
                   or recipient.smart_host_relay_only)
    rule = relay_rule(settings, directory, session, facts, now) if needs_relay else None
    if recipient.trick is not None and rule is None:
        return Verdict.refuse(v.RELAY_DENIED, "relay-trick", detail=recipient.trick)
    if recipient.kind == "unknown":
        return Verdict.refuse(v.UNKNOWN_USER, "unknown-user",
                              detail=recipient.reason or recipient.address)
    if recipient.kind == "remote":
        if rule is None:
            return Verdict.refuse(v.RELAY_DENIED, "relay-denied", detail=recipient.address)
        return Verdict.accept(flags=(v.FLAG_RELAY, f"relay-rule:{rule}"))
    if recipient.smart_host_relay_only and rule is None:
        return Verdict.refuse(v.RELAY_DENIED, "relay-denied", detail="smart-host domain")
    flags = [v.FLAG_CATCHALL] if recipient.catch_all else []
    if recipient.smart_host:
        flags.append(v.FLAG_RELAY)
    return Verdict.accept(flags=flags, target=recipient.target)
