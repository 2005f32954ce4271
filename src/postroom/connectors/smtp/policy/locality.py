"""Is this recipient ours? Classifying an RCPT TO path against the directory.

Manual 6.2.3.5 (a relay is any recipient not hosted here), 6.2.3.6 (disable all
catchalls; domain literals for the server's own IPs), 5.4.2 (domain disabled,
catch-all, postmaster and abuse addresses, smart host for a backup MX), RFC 5321
§4.1.1.3 (source routes), §4.1.3 (address literals), §4.5.1 (``<postmaster>``).

Untrusted input: the whole path. The classic open-relay tricks all try to make a
remote recipient look local (or the reverse), so the rules are strict:

* The domain is compared in one canonical form: ASCII labels in lower case, U-labels
  encoded with IDNA 2008 *without* UTS 46 mapping, so full-width or other look-alike
  characters never fold into a hosted domain. A trailing dot or an empty label makes
  the path invalid rather than "probably ours".
* A local part holding ``%`` (percent hack), ``!`` (bang path) or, quoted, ``@`` is a
  routing request; at a hosted domain it counts as local only when that exact address
  is mapped, never through a catch-all. :attr:`Recipient.trick` names the trick so the
  relay check can refuse it for clients that may not relay.
* A source route (``@hop:user@domain``) is always a trick; the mailbox after it is
  classified as if the route were absent (RFC 5321 says to ignore routes).
* An address literal is ours when its IP is the one the client connected to or an
  extra IP of 6.2.3.6. With domain literals allowed its local part is then looked up
  in the default mail domain; with them off it is invalid for everyone (relaying it
  would loop back to us). Literals of loopback, unspecified, multicast, link-local or
  reserved addresses that are not ours are invalid for everyone too; other literals
  are remote (relaying to an IP).

The directory lookups are ``get_domain`` and ``resolve`` (exact address, then the
domain's catch-all ``[SMTP:*@domain]``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

import idna

from postroom.connectors.smtp.address import Path
from postroom.connectors.smtp.policy.access import ip_in_setting
from postroom.connectors.smtp.policy.options import SettingsReader, read
from postroom.connectors.smtp.policy.session import SessionFacts, client_address
from postroom.store.directory import Address, Directory, DirectoryError, Domain

Kind = Literal["local", "unknown", "remote", "invalid"]


@dataclass(frozen=True)
class Recipient:
    """A classified recipient.

    ``kind``: ``local`` (hosted and deliverable: ``target`` is the address map target,
    or ``None`` for a smart-hosted domain or an unmapped ``<postmaster>``), ``unknown``
    (hosted domain, no such address), ``remote`` (relaying needed) or ``invalid``.
    ``address`` is ``local@canonical-domain`` (empty for ``<postmaster>``).
    """

    kind: Kind
    path: Path
    address: str = ""
    domain: str = ""
    target: str | None = None
    postoffice: str | None = None
    catch_all: bool = False
    smart_host: bool = False
    smart_host_relay_only: bool = False
    trick: str | None = None
    reason: str = ""


@lru_cache(maxsize=4096)
def canonical_domain(domain: str) -> str | None:
    """``domain`` in lower-case ASCII (strict IDNA 2008), or ``None`` if not a valid name.

    Cached: each message asks it three times (sender at MAIL, twice; each recipient),
    mostly for the same few domains, and the label checks cost more than the lookup."""
    if not domain or len(domain) > 253 or domain.startswith("["):
        return None
    labels = domain.split(".")
    out = []
    for label in labels:
        if not label:
            return None   # trailing dot, leading dot or ".."
        if label.isascii():
            if not all(ch.isalnum() or ch == "-" for ch in label) or label[0] == "-" \
                    or label[-1] == "-" or len(label) > 63:
                return None
            out.append(label.lower())
            continue
        try:
            encoded = idna.alabel(label).decode("ascii")  # one label: U+3002 is no dot
        except (idna.IDNAError, UnicodeError):
            return None
        if "." in encoded or len(encoded) > 63:
            return None
        out.append(encoded)
    return ".".join(out)


def hosted_domain(directory: Directory, domain: str) -> Domain | None:
    """The hosted domain record for a canonical domain name, or ``None``."""
    try:
        return directory.get_domain(domain)
    except DirectoryError:
        return None


def lookup(directory: Directory, address: str) -> Address | None:
    """``directory.resolve`` that treats an address the store cannot parse as unmapped."""
    try:
        return directory.resolve(address)
    except DirectoryError:
        return None


def is_catch_all(entry: Address) -> bool:
    return entry.address.lower().startswith("[smtp:*@")


def local_part_trick(path: Path) -> str | None:
    """The routing trick hidden in a local part, if any."""
    if "@" in path.local:
        return "quoted-at"
    if path.has_percent_hack:
        return "percent-hack"
    if path.has_bang_path:
        return "bang-path"
    return None


def classify(settings: SettingsReader, directory: Directory, session: SessionFacts,
             path: Path) -> Recipient:
    """Classify ``path`` (see the module docstring for the rules)."""
    if path.is_null:
        return Recipient("invalid", path, reason="empty-recipient")
    if path.is_postmaster:
        return _postmaster(settings, directory, path)
    result = _classify_mailbox(settings, directory, session, path)
    if path.source_route:
        return replace(result, trick="source-route")
    return result


def _default_domain(settings: SettingsReader) -> str | None:
    for key in ("smtp.general.default_mail_domain_name", "smtp.general.local_domain_name"):
        name = canonical_domain(str(read(settings, key) or ""))
        if name:
            return name
    return None


def _postmaster(settings: SettingsReader, directory: Directory, path: Path) -> Recipient:
    """``<postmaster>`` must always be accepted (RFC 5321 §4.5.1)."""
    domain = _default_domain(settings)
    entry = lookup(directory, f"postmaster@{domain}") if domain else None
    return Recipient("local", path, domain=domain or "",
                     target=entry.target if entry else None,
                     postoffice=entry.postoffice if entry else None)


def _literal_is_ours(settings: SettingsReader, session: SessionFacts, path: Path) -> bool:
    literal = path.literal_ip
    if literal is None:
        return False
    ip = client_address(literal)
    if session.server_ip is not None and ip == session.server_ip:
        return True
    return ip_in_setting(settings, "smtp.security.domain_literal_extra_ips", ip)


def _classify_mailbox(settings: SettingsReader, directory: Directory, session: SessionFacts,
                      path: Path) -> Recipient:
    if path.is_literal:
        literal = path.literal_ip
        if literal is None:
            return Recipient("invalid", path, reason="bad-literal", trick="ip-literal")
        ip = client_address(literal)
        if _literal_is_ours(settings, session, path):
            if not read(settings, "smtp.security.allow_domain_literals"):
                return Recipient("invalid", path, reason="bad-literal", trick="ip-literal")
            domain = _default_domain(settings)
            if domain is None:
                return Recipient("unknown", path, reason="no-default-domain")
            return _hosted(settings, directory, path, domain)
        if not ip.is_global and (ip.is_loopback or ip.is_unspecified or ip.is_multicast
                                 or ip.is_reserved or ip.is_link_local):
            return Recipient("invalid", path, reason="bad-literal", trick="ip-literal")
        return Recipient("remote", path, address=f"{path.local}@{path.domain}",
                         domain=path.domain, trick="ip-literal")
    domain = canonical_domain(path.domain)
    if domain is None:
        return Recipient("invalid", path, reason="bad-domain")
    return _hosted(settings, directory, path, domain)


def _hosted(settings: SettingsReader, directory: Directory, path: Path,
            domain: str) -> Recipient:
    address = f"{path.local}@{domain}"
    trick = local_part_trick(path)
    record = hosted_domain(directory, domain)
    if record is None:
        return Recipient("remote", path, address=address, domain=domain, trick=trick)
    base = Recipient("unknown", path, address=address, domain=domain,
                     postoffice=record.postoffice)
    if record.options.get("disabled"):
        return replace(base, reason="domain-disabled")
    entry = lookup(directory, address)
    if entry is not None and not is_catch_all(entry):
        return replace(base, kind="local", target=entry.target, postoffice=entry.postoffice)
    if trick is not None:
        return replace(base, trick=trick, reason=trick)
    if record.options.get("smart_host.enabled"):
        return replace(base, kind="local", smart_host=True, smart_host_relay_only=bool(
            record.options.get("smart_host.authenticated_relay_only")))
    special = _special_address(directory, record, path.local)
    if special is not None:
        return replace(base, kind="local", target=special.target, postoffice=special.postoffice)
    if entry is not None:
        if read(settings, "smtp.security.disable_all_catchalls"):
            return replace(base, reason="catchall-disabled")
        return replace(base, kind="local", target=entry.target, postoffice=entry.postoffice,
                       catch_all=True)
    return replace(base, reason="unknown-user")


def _special_address(directory: Directory, record: Domain, local: str) -> Address | None:
    """postmaster@ and abuse@ a hosted domain, when the domain names where they go."""
    key = {"postmaster": "postmaster_address", "abuse": "abuse_address"}.get(local.lower())
    configured = str(record.options.get(key, "") or "") if key else ""
    if not configured:
        return None
    entry = lookup(directory, configured)
    if entry is not None:
        return entry
    return Address(address=f"[SMTP:{local}@{record.name}]", target=f"[SMTP:{configured}]",
                   postoffice=record.postoffice)
