"""Envelope sender checks at MAIL FROM (manual 6.2.3.6 Security, 5.4.3 domain blacklist).

In order:

1. The null sender ``<>`` (bounces, RFC 5321 §4.5.5) is always accepted here: refusing
   it breaks delivery status notifications. It skips every check below.
2. Blocked senders: addresses, ``*@domain``, ``@domain`` or bare domains with shell
   wildcards (``*.spam.example``), case-insensitive -> 553 5.7.1 ``blocked-sender``.
3. Address spoofing (``smtp.security.address_spoofing``) for a sender at a hosted
   domain: ``allow_all`` lets anyone; ``authorized_only`` (default) needs AUTH or a
   privileged IP; ``deny_impersonation`` needs AUTH *and* an address mapped to the
   authenticated mailbox -> 553 5.7.1 ``spoofing``.
4. Authenticated senders must use an address of their post office
   (``smtp.security.auth_sender_must_use_postoffice_address``), or with the local
   ``smtp.security.auth_sender_must_use_own_address`` one mapped to their mailbox
   -> 553 5.7.1 ``spoofing``. The fixed relay credential has no post office and is
   not checked.
5. The sender domain must be hosted or resolve in DNS
   (``smtp.security.sender_domain_must_resolve``): ``Facts.sender_domain_resolves``
   False -> 550 5.1.8, None (temporary failure) -> 451 4.4.3. Address literals are
   not looked up.

And at RCPT TO, :func:`check_domain_blacklist`: a hosted domain's own blacklist of
sender domains (5.4.3) -> 550 5.7.1 ``domain-blacklist``.

Untrusted input: the sender path. The sender is only a claim: these checks refuse
obvious forgeries, SPF and DKIM (plugged in through the chain) do the rest.
"""

from __future__ import annotations

from postroom.connectors.smtp.address import Path
from postroom.connectors.smtp.policy import verdict as v
from postroom.connectors.smtp.policy.access import is_privileged
from postroom.connectors.smtp.policy.locality import (
    Recipient,
    canonical_domain,
    hosted_domain,
    is_catch_all,
    lookup,
)
from postroom.connectors.smtp.policy.options import SettingsReader, read
from postroom.connectors.smtp.policy.relay import address_listed
from postroom.connectors.smtp.policy.session import Facts, SessionFacts
from postroom.connectors.smtp.policy.verdict import Verdict
from postroom.store.directory import Directory


def sender_domain(path: Path) -> str | None:
    """The canonical sender domain; the literal as written for address literals."""
    if path.is_null:
        return None
    if path.is_literal:
        return path.domain
    return canonical_domain(path.domain)


def wants_domain_lookup(settings: SettingsReader, directory: Directory, path: Path) -> bool:
    """Whether :func:`check_mail` will need ``Facts.sender_domain_resolves``."""
    if path.is_null or path.is_literal or not read(
            settings, "smtp.security.sender_domain_must_resolve"):
        return False
    domain = canonical_domain(path.domain)
    return domain is not None and hosted_domain(directory, domain) is None


def _owns(directory: Directory, session: SessionFacts, address: str) -> bool:
    """The address is mapped exactly to the authenticated mailbox."""
    assert session.authenticated is not None
    postoffice, mailbox = session.authenticated
    entry = lookup(directory, address)
    return (entry is not None and not is_catch_all(entry)
            and entry.target.lower() == f"[sf:{postoffice}/{mailbox}]".lower())


def _in_postoffice(directory: Directory, session: SessionFacts, address: str) -> bool:
    assert session.authenticated is not None
    entry = lookup(directory, address)
    return entry is not None and entry.postoffice.lower() == session.authenticated[0].lower()


def check_mail(settings: SettingsReader, directory: Directory, session: SessionFacts,
               path: Path, facts: Facts) -> Verdict | None:
    """MAIL FROM checks, in the order of the module docstring."""
    if path.is_null:
        return None
    domain = sender_domain(path)
    if domain is None:
        return Verdict.refuse(v.SENDER_BLOCKED, "bad-sender-domain", detail=path.raw)
    address = f"{path.local}@{domain}"
    listed = address_listed(read(settings, "smtp.blocked_senders"), address)
    if listed is not None:
        return Verdict.refuse(v.SENDER_BLOCKED, "blocked-sender", detail=listed)
    hosted = not path.is_literal and hosted_domain(directory, domain) is not None
    if hosted:
        refusal = _check_spoofing(settings, directory, session, address)
        if refusal is not None:
            return refusal
    if session.authenticated is not None and session.authenticated[0]:
        refusal = _check_authenticated_sender(settings, directory, session, address)
        if refusal is not None:
            return refusal
    if hosted or path.is_literal or not read(settings, "smtp.security.sender_domain_must_resolve"):
        return None
    if facts.sender_domain_resolves is None:
        return Verdict.refuse(v.DNS_TEMPORARY, "sender-domain-dns-failure", detail=domain)
    if not facts.sender_domain_resolves:
        return Verdict.refuse(v.SENDER_DOMAIN_UNRESOLVABLE, "sender-domain-unresolvable",
                              detail=domain)
    return None


def _check_authenticated_sender(settings: SettingsReader, directory: Directory,
                                session: SessionFacts, address: str) -> Verdict | None:
    if read(settings, "smtp.security.auth_sender_must_use_own_address"):
        if not _owns(directory, session, address):
            return Verdict.refuse(v.SPOOFING, "spoofing", detail="not own address")
        return None
    if (read(settings, "smtp.security.auth_sender_must_use_postoffice_address")
            and not _in_postoffice(directory, session, address)):
        return Verdict.refuse(v.SPOOFING, "spoofing", detail="not post office address")
    return None


def _check_spoofing(settings: SettingsReader, directory: Directory, session: SessionFacts,
                    address: str) -> Verdict | None:
    mode = read(settings, "smtp.security.address_spoofing")
    if mode == "allow_all":
        return None
    if mode == "deny_impersonation":
        if session.authenticated is None:
            return Verdict.refuse(v.SPOOFING, "spoofing", detail="hosted domain, no AUTH")
        if session.authenticated[0] and not _owns(directory, session, address):
            return Verdict.refuse(v.SPOOFING, "spoofing", detail="impersonation")
        return None
    if session.authenticated is None and not is_privileged(settings, session.client_ip):
        return Verdict.refuse(v.SPOOFING, "spoofing", detail="hosted domain, unauthorized")
    return None


def check_domain_blacklist(directory: Directory, session: SessionFacts,
                           recipient: Recipient) -> Verdict | None:
    """RCPT stage: the recipient's hosted domain refuses this sender domain (5.4.3)."""
    sender = session.mail_from
    if sender is None or sender.is_null or recipient.kind != "local" or not recipient.domain:
        return None
    record = hosted_domain(directory, recipient.domain)
    if record is None:
        return None
    domain = sender_domain(sender) or ""
    for entry in record.options.get("blacklist") or []:
        blocked = str(entry).lower().rstrip(".")
        if domain == blocked or domain.endswith("." + blocked):
            return Verdict.refuse(v.DOMAIN_BLACKLISTED, "domain-blacklist", detail=blocked)
    return None
