"""The client's name: HELO/EHLO (manual 6.2.3.6 EHLO Blocking, new in v9) and the PTR
record check (6.2.3.6 PTR Record Check), RFC 5321 §4.1.1.1 and §4.1.3.

HELO/EHLO stage:

* A name on ``smtp.security.ehlo_block_strings`` (case-insensitive; an entry with
  ``*`` or ``?`` is a shell wildcard, otherwise the whole name must match, so
  ``ylmf-pc`` does not block ``mail.ylmf-pc.example``) -> 554 5.7.1, connection
  dropped, as the manual says "drop these connections".
* An address literal must be a valid one (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``)
  -> else 501 5.5.4.
* A name claiming to be this server (its local or default mail domain name, or a
  literal of the address the client connected to) from a client that is not
  privileged -> 550 5.7.1 ``helo-impersonation``; local setting
  ``smtp.security.reject_helo_impersonation`` (on).

The PTR check runs at MAIL FROM, not at connect: the manual applies it only to
connections that have not authenticated, and AUTH comes after EHLO. Loopback,
private and link-local clients are not checked, nor are privileged IPs. ``reject``
answers 550 5.7.25 (RFC 7372) without a PTR and 451 4.4.3 on a DNS failure;
``flag_spam`` accepts with the ``no-ptr`` flag for the spam filter.

Untrusted input: the HELO name and the reverse DNS answer (its mere existence is
all the manual asks for; the name is not validated against forward DNS).
"""

from __future__ import annotations

import fnmatch
import ipaddress

from postroom.connectors.smtp.policy import verdict as v
from postroom.connectors.smtp.policy.access import is_local_network, is_privileged
from postroom.connectors.smtp.policy.options import SettingsReader, read
from postroom.connectors.smtp.policy.session import IPAddress, SessionFacts, client_address
from postroom.connectors.smtp.policy.verdict import Verdict


def helo_literal(name: str) -> IPAddress | None:
    """The IP of an address-literal HELO argument; ValueError if it is a bad literal."""
    if not name.startswith("["):
        return None
    if not name.endswith("]"):
        raise ValueError("unbalanced brackets")
    inner = name[1:-1]
    if inner.lower().startswith("ipv6:"):
        return client_address(ipaddress.IPv6Address(inner[5:]))
    return ipaddress.IPv4Address(inner)


def blocked_by(patterns: list[str], name: str) -> str | None:
    text = name.strip().lower()
    for raw in patterns:
        pattern = raw.strip().lower()
        if not pattern:
            continue
        if any(ch in pattern for ch in "*?["):
            if fnmatch.fnmatchcase(text, pattern):
                return raw
        elif text == pattern:
            return raw
    return None


def _server_names(settings: SettingsReader) -> set[str]:
    names = set()
    for key in ("smtp.general.local_domain_name", "smtp.general.default_mail_domain_name"):
        value = str(read(settings, key) or "").strip().lower().rstrip(".")
        if value:
            names.add(value)
    return names


def check_helo(settings: SettingsReader, session: SessionFacts, name: str) -> Verdict | None:
    listed = blocked_by(read(settings, "smtp.security.ehlo_block_strings"), name)
    if listed is not None:
        return Verdict.refuse(v.HELO_BLOCKED, "ehlo-blocked", detail=listed, drop=True)
    try:
        literal = helo_literal(name)
    except ValueError:
        return Verdict.refuse(v.HELO_SYNTAX, "helo-syntax", detail=name)
    if not read(settings, "smtp.security.reject_helo_impersonation"):
        return None
    if session.is_authenticated or is_privileged(settings, session.client_ip):
        return None
    if literal is not None:
        claims_us = session.server_ip is not None and literal == session.server_ip \
            and literal != session.client_ip
    else:
        claims_us = name.strip().lower().rstrip(".") in _server_names(settings)
    if claims_us:
        return Verdict.refuse(v.HELO_IMPERSONATION, "helo-impersonation", detail=name)
    return None


def ptr_exempt(settings: SettingsReader, session: SessionFacts) -> bool:
    return (session.is_authenticated or is_local_network(session.client_ip)
            or is_privileged(settings, session.client_ip))


def wants_ptr_lookup(settings: SettingsReader, session: SessionFacts) -> bool:
    """Whether :func:`check_ptr` will look at ``session.ptr_names``."""
    return read(settings, "smtp.security.ptr_check") != "off" and not ptr_exempt(
        settings, session)


def check_ptr(settings: SettingsReader, session: SessionFacts) -> Verdict | None:
    mode = read(settings, "smtp.security.ptr_check")
    if mode == "off" or ptr_exempt(settings, session):
        return None
    if session.ptr_lookup_failed or session.ptr_names is None:
        if mode == "reject":
            return Verdict.refuse(v.DNS_TEMPORARY, "ptr-dns-failure",
                                  detail=str(session.client_ip))
        return None
    if session.ptr_names:
        return None
    if mode == "reject":
        return Verdict.refuse(v.NO_PTR, "no-ptr", detail=str(session.client_ip))
    return Verdict.accept(flags=(v.FLAG_NO_PTR,))
