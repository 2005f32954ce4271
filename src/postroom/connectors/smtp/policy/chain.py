"""The inbound SMTP policy: the checks of this package composed per stage.

``InboundPolicy`` is what the inbound server (``connectors/smtp/server.py``) calls at
each stage of a session; every method returns a :class:`~.verdict.Verdict` and never
touches the socket. Order per stage (first refusal wins; flags of accepting checks
are merged into the final accept):

=============  ============================================================================
connect        access list, IPv6, country (access) -> extra checks -> connection limits
helo           EHLO blocking, literal syntax, impersonation (helo) -> extra checks
auth           mechanism enabled, no plaintext before TLS (submission)
mail           AUTH required on this listener (submission) -> blocked sender, spoofing,
               post office address, sender domain resolves (senders) -> PTR (helo)
               -> extra checks
rcpt           recipients per message, hourly limit (limits) -> reported IP (access)
               -> local / unknown / relay (locality, relay) -> inbound AUTH
               (submission) -> domain blacklist (senders) -> extra checks
data           extra checks
end of data    message size, required headers for authenticated senders -> extra checks
failed command drop after N failures, maybe deny the IP (limits)
=============  ============================================================================

The seam: :attr:`InboundPolicy.extra_checks` is a list of objects with any of
``on_connect(session)``, ``on_helo(session, name)``, ``on_mail(session, path, facts)``,
``on_rcpt(session, recipient, facts)`` (a classified :class:`~.locality.Recipient`,
only for recipients the built-in checks accepted), ``on_data(session)``,
``on_end_of_data(session, headers, size)``, each returning a Verdict or None. They run
after the built-in checks of the stage, in list order; greylisting, SPF and DNSBL
plug in here. A check with ``bypassed_by_whitelist = True`` is skipped for
white-listed client IPs (manual 6.2.3.12: no blacklist or SPF checks for them).

Settings are read on every call (``store.settings.get`` is a cached lookup), so a
change applies to the next command. Counters (connections, hourly recipients,
drops) are in-memory state of this object: one per server process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from postroom.connectors.smtp.address import Path
from postroom.connectors.smtp.policy import access, helo, limits, relay, senders, submission
from postroom.connectors.smtp.policy import verdict as v
from postroom.connectors.smtp.policy.locality import Recipient, classify
from postroom.connectors.smtp.policy.options import SettingsReader, read
from postroom.connectors.smtp.policy.session import Facts, SessionFacts
from postroom.connectors.smtp.policy.verdict import ACCEPT, Verdict
from postroom.services.accept_processes import share
from postroom.store.directory import Directory

Headers = Mapping[str, str] | Sequence[tuple[str, str]]
_NO_FACTS = Facts()


def _combine(verdicts: Iterable[Verdict | None], target: str | None = None) -> Verdict:
    """The first refusal, else an accept carrying every flag (and the last target).

    ``verdicts`` is consumed lazily and no further than the first refusal, so the
    checks after it never run (and never query the store)."""
    flags: set[str] = set()
    for verdict in verdicts:
        if verdict is None:
            continue
        if not verdict.accepted:
            return verdict
        flags |= verdict.flags
        if verdict.target is not None:
            target = verdict.target
    if not flags and target is None:
        return ACCEPT
    return Verdict.accept(flags=flags, target=target)


class InboundPolicy:
    """Per-stage decisions for inbound SMTP sessions (see the module docstring)."""

    def __init__(self, settings: SettingsReader, directory: Directory,
                 clock: Callable[[], float] = time.time,
                 extra_checks: Iterable[Any] = ()) -> None:
        self.settings = settings
        self.directory = directory
        self.clock = clock
        self.extra_checks: list[Any] = list(extra_checks)
        self.connections = limits.ConnectionCounter()
        # Accept processes sharing the ports (services/accept_processes.py): each admits
        # its share.
        self.process_count = 1
        self.recipient_rate = limits.RecipientRate(clock)
        self.drops = limits.DropCounter(clock)

    # -- helpers -------------------------------------------------------------------

    def whitelisted(self, session: SessionFacts) -> bool:
        return access.is_whitelisted(self.settings, session.client_ip)

    def privileged(self, session: SessionFacts) -> bool:
        return access.is_privileged(self.settings, session.client_ip)

    def _extras(self, stage: str, session: SessionFacts, *args: Any) -> Iterable[Verdict | None]:
        white: bool | None = None
        for check in list(self.extra_checks):
            method = getattr(check, stage, None)
            if method is None:
                continue
            if getattr(check, "bypassed_by_whitelist", False):
                if white is None:
                    white = self.whitelisted(session)
                if white:
                    continue
            yield method(session, *args)

    def wants_sender_domain_lookup(self, path: Path) -> bool:
        """Whether ``on_mail`` needs ``Facts.sender_domain_resolves`` for this sender."""
        return senders.wants_domain_lookup(self.settings, self.directory, path)

    def wants_ptr_lookup(self, session: SessionFacts) -> bool:
        """Whether ``on_mail`` will look at ``session.ptr_names``."""
        return helo.wants_ptr_lookup(self.settings, session)

    def auth_mechanisms(self, session: SessionFacts) -> tuple[str, ...]:
        """AUTH mechanisms to advertise in the EHLO reply."""
        return submission.auth_mechanisms(self.settings, session)

    # -- stages --------------------------------------------------------------------

    def on_connect(self, session: SessionFacts) -> Verdict:
        """Before the greeting. An accepted session is counted until :meth:`on_disconnect`."""
        def checks() -> Iterable[Verdict | None]:
            yield access.check_connect(self.settings, session)
            yield from self._extras("on_connect", session)

        verdict = _combine(checks())
        if not verdict.accepted:
            return verdict
        exempt = self.privileged(session) or self.whitelisted(session)
        per_ip = None if exempt else self._share(
            read(self.settings, "smtp.inbound.max_connections_per_ip"))
        refusal = self.connections.admit(
            session.client_ip, self._share(read(self.settings, "smtp.inbound.max_connections")),
            per_ip)
        return refusal or verdict

    def _share(self, limit: int) -> int:
        """This process's part of a connection limit (rounded up)."""
        return share(limit, self.process_count)

    def on_disconnect(self, session: SessionFacts) -> None:
        """Call once for every session whose ``on_connect`` was accepted."""
        self.connections.release(session.client_ip)

    def on_helo(self, session: SessionFacts, name: str) -> Verdict:
        def checks() -> Iterable[Verdict | None]:
            yield helo.check_helo(self.settings, session, name)
            yield from self._extras("on_helo", session, name)

        return _combine(checks())

    def on_auth(self, session: SessionFacts, mechanism: str) -> Verdict:
        """Before an AUTH exchange starts (credentials are checked by ``auth/``)."""
        return _combine([submission.check_auth(self.settings, session, mechanism)])

    def on_mail(self, session: SessionFacts, path: Path, facts: Facts = _NO_FACTS) -> Verdict:
        def checks() -> Iterable[Verdict | None]:
            yield submission.check_mail(self.settings, session)
            yield senders.check_mail(self.settings, self.directory, session, path, facts)
            yield helo.check_ptr(self.settings, session)
            yield from self._extras("on_mail", session, path, facts)

        return _combine(checks())

    def classify(self, session: SessionFacts, path: Path) -> Recipient:
        """Where ``path`` goes: hosted, unknown, remote or invalid (see :mod:`.locality`)."""
        return classify(self.settings, self.directory, session, path)

    def on_rcpt(self, session: SessionFacts, path: Path, facts: Facts = _NO_FACTS) -> Verdict:
        """RCPT TO. An accepted recipient counts toward the hourly limit (per sender,
        and per client IP unless white-listed); the server then increments
        ``session.counters.recipients``. Accepts carry the address map ``target`` of
        hosted recipients."""
        settings = self.settings
        white = self.whitelisted(session)

        def checks() -> Iterable[Verdict | None]:
            yield limits.check_recipients_per_message(settings, session)
            yield self.recipient_rate.check(settings, session, count_ip=not white)
            if not white:
                yield access.check_reported_ip(settings, session)
            recipient = self.classify(session, path)
            yield relay.check_rcpt(settings, self.directory, session, recipient, facts,
                                   self.clock())
            yield submission.check_rcpt(settings, self.directory, session, recipient)
            yield senders.check_domain_blacklist(self.directory, session, recipient)
            yield from self._extras("on_rcpt", session, recipient, facts)

        verdict = _combine(checks())
        if verdict.accepted:
            self.recipient_rate.record(settings, session, count_ip=not white)
        return verdict

    def on_data(self, session: SessionFacts) -> Verdict:
        return _combine(self._extras("on_data", session))

    def on_end_of_data(self, session: SessionFacts, headers: Headers, size: int) -> Verdict:
        """After the final dot (or last BDAT): size limit and header fix-ups."""
        settings = self.settings
        limit = read(settings, "smtp.inbound.advertised_max_message_size")
        if limit and size > limit and read(settings, "smtp.inbound.enforce_max_message_size"):
            return Verdict.refuse(v.SIZE_EXCEEDED, "size-exceeded", detail=f"{size} > {limit}")
        flags: list[str] = []
        if session.is_authenticated and read(settings, "smtp.advanced.add_required_headers"):
            names = {name.lower() for name, _ in _header_items(headers)}
            if "message-id" not in names:
                flags.append(v.FLAG_ADD_MESSAGE_ID)
            if "date" not in names:
                flags.append(v.FLAG_ADD_DATE)
        def checks() -> Iterable[Verdict | None]:
            yield Verdict.accept(flags=flags) if flags else None
            yield from self._extras("on_end_of_data", session, headers, size)

        return _combine(checks())

    def on_failed_command(self, session: SessionFacts) -> Verdict:
        """After the server refused a command or recipient and counted it in
        ``session.counters.failed_commands``: drop the client at the limit. With the
        ``add-ip-to-deny-list`` flag the server adds the IP to the access list."""
        verdict = limits.check_failed_commands(self.settings, session, self.drops,
                                               may_auto_block=not self.whitelisted(session))
        return verdict or ACCEPT


def _header_items(headers: Headers) -> Iterable[tuple[str, str]]:
    if isinstance(headers, Mapping):
        return headers.items()
    return headers
