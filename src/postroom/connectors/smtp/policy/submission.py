"""Authentication requirements (manual 6.2.3.3 "Requires connections to authenticate",
6.2.3.7 Inbound Authentication, 6.2.3.2 CRAM-MD5/NTLM; RFC 6409 submission, RFC 8314
implicit TLS, RFC 4954 AUTH).

* AUTH mechanisms: PLAIN and LOGIN send the password in the clear, so before TLS they
  are neither advertised nor accepted (538 5.7.11), except from loopback or with the
  local setting ``smtp.security.allow_plaintext_auth_without_tls``. CRAM-MD5 follows
  ``smtp.general.cram_md5_enabled``. NTLM is not offered (NTLMv1 is broken, and the
  manual's setting defaults off).
* MAIL stage: on the submission listeners (587, and 465 with implicit TLS) a client
  must authenticate before MAIL when ``smtp.inbound.submission_requires_auth`` is on
  (default); on port 25 when ``smtp.inbound.port_requires_auth`` is on -> 530 5.7.0.
  Privileged IPs (trusted to relay without AUTH) are exempt, e.g. a web server's
  scripts.
* RCPT stage, ``smtp.advanced.inbound_authentication``: ``all`` requires AUTH for
  every hosted recipient; ``per_postoffice`` when the recipient's post office has
  ``restrictions.require_authenticated_inbound`` -> 530 5.7.0. Privileged IPs are
  exempt here too.
"""

from __future__ import annotations

from postroom.connectors.smtp.policy import verdict as v
from postroom.connectors.smtp.policy.access import is_privileged
from postroom.connectors.smtp.policy.locality import Recipient
from postroom.connectors.smtp.policy.options import SettingsReader, read
from postroom.connectors.smtp.policy.session import SessionFacts
from postroom.connectors.smtp.policy.verdict import Verdict
from postroom.store.directory import Directory, DirectoryError

PLAINTEXT_MECHANISMS = frozenset({"PLAIN", "LOGIN"})


def plaintext_auth_allowed(settings: SettingsReader, session: SessionFacts) -> bool:
    return (session.tls or session.client_ip.is_loopback
            or bool(read(settings, "smtp.security.allow_plaintext_auth_without_tls")))


def auth_mechanisms(settings: SettingsReader, session: SessionFacts) -> tuple[str, ...]:
    """The mechanisms to advertise in EHLO now."""
    mechanisms: list[str] = []
    if plaintext_auth_allowed(settings, session):
        mechanisms += ["PLAIN", "LOGIN"]
    if read(settings, "smtp.general.cram_md5_enabled"):
        mechanisms.append("CRAM-MD5")
    return tuple(mechanisms)


def check_auth(settings: SettingsReader, session: SessionFacts, mechanism: str) -> Verdict | None:
    name = mechanism.upper()
    if name in PLAINTEXT_MECHANISMS:
        if not plaintext_auth_allowed(settings, session):
            return Verdict.refuse(v.ENCRYPTION_REQUIRED, "plaintext-auth-without-tls",
                                  detail=name)
        return None
    if name not in auth_mechanisms(settings, session):
        return Verdict.refuse(v.MECHANISM_DISABLED, "auth-mechanism-disabled", detail=name)
    return None


def auth_required(settings: SettingsReader, session: SessionFacts) -> bool:
    """Whether this listener requires AUTH before MAIL (privileged IPs aside)."""
    if session.listener == "mx":
        return bool(read(settings, "smtp.inbound.port_requires_auth"))
    return bool(read(settings, "smtp.inbound.submission_requires_auth"))


def check_mail(settings: SettingsReader, session: SessionFacts) -> Verdict | None:
    if session.is_authenticated or not auth_required(settings, session):
        return None
    if is_privileged(settings, session.client_ip):
        return None
    return Verdict.refuse(v.AUTH_REQUIRED, "auth-required", detail=session.listener)


def check_rcpt(settings: SettingsReader, directory: Directory, session: SessionFacts,
               recipient: Recipient) -> Verdict | None:
    if session.is_authenticated or recipient.kind != "local":
        return None
    mode = read(settings, "smtp.advanced.inbound_authentication")
    if mode == "none" or is_privileged(settings, session.client_ip):
        return None
    if mode == "per_postoffice":
        if not recipient.postoffice:
            return None
        try:
            office = directory.get_postoffice(recipient.postoffice)
        except DirectoryError:
            return None
        if not office.options.get("restrictions.require_authenticated_inbound"):
            return None
    return Verdict.refuse(v.AUTH_REQUIRED, "inbound-auth-required",
                          detail=recipient.postoffice or "")
