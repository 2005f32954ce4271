"""Recipient expansion: from an envelope's recipients to the final deliveries.

Manual 6.1.1 (the MTA moves messages "based on rules defined in an Address Map
table"), 5.4.2 (domain disabled, catch-all, postmaster and abuse addresses, smart
host), 5.6 (groups: "the email is duplicated and sent to all ... members"; "Group is
disabled ... the email will bounce back indicating that the address is not valid"),
5.7 (lists are handed to the list server, ``[LS:po/list]``).

Pure logic over the directory: no queue, no files. :class:`Expander` turns each
envelope recipient into zero or more :class:`Delivery` records, one per final
recipient, grouped by the connector that will deliver it:

* ``[SMTP:a@d]`` at a domain we do not host stays ``[SMTP:a@d]`` (relay).
* ``[SMTP:a@d]`` at a hosted domain goes through the address map as at RCPT time
  (:mod:`postroom.connectors.smtp.policy.locality` is the SMTP side of the same rules):
  the exact mapping, else a smart-hosted domain stays SMTP, else the domain's
  postmaster/abuse address, else the catch-all (unless
  ``smtp.security.disable_all_catchalls``), else the recipient is unknown (5.1.1).
* ``[SF:po/name]`` is a mailbox, or a group whose members (any kind of address,
  including local SMTP addresses and other groups) are expanded in turn.
* ``[LS:po/list]`` goes to the list server as is (the list must exist).

Guarantees: one delivery per final recipient (case-insensitive), however many
routes lead to it (directly and through groups); a group is expanded once per
message, which also ends cycles (A contains B contains A); nesting deeper than
:data:`MAX_GROUP_DEPTH` fails the remaining recipients with 5.4.6 (routing loop)
instead of recursing. Every directory lookup is made once per message (an
:class:`Expander` lives for one message), so a directory change applies from the
next message on and 1,000 recipients at one domain cost one domain lookup.

Untrusted input: every address (it came from an SMTP client, a drop-folder file or
a group member list). An address the store cannot parse fails with 5.1.3 and never
raises. Failures carry the envelope recipient they came from (``recipient``) and the
address that failed (``address``), for the NDR (:mod:`postroom.mta.ndr`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from postroom.store.addresses import ConnectorAddress, display_address, parse_connector
from postroom.store.directory import (
    Address,
    Directory,
    DirectoryError,
    Domain,
    Group,
    Mailbox,
    MailList,
)

MAX_GROUP_DEPTH = 10

Connector = Literal["SF", "LS", "SMTP"]
T = TypeVar("T")


@dataclass(frozen=True)
class Delivery:
    """One final recipient: ``address`` is a connector address handled by ``connector``."""

    connector: Connector
    address: str            # [SF:po/mailbox], [LS:po/list] or [SMTP:local@domain]
    origin: str             # the envelope recipient it was reached from
    via: str | None = None  # the group it was reached through (the innermost one)

    @property
    def domain(self) -> str:
        """The destination domain of an SMTP delivery ("" for SF and LS)."""
        if self.connector != "SMTP":
            return ""
        return self.address[:-1].rpartition("@")[2].lower()


@dataclass(frozen=True)
class Unresolved:
    """A recipient that cannot be delivered (becomes an NDR line)."""

    recipient: str       # the envelope recipient it came from
    address: str         # the address that failed, for people (bob@example.com)
    status: str          # RFC 3463 enhanced status, e.g. 5.1.1
    diagnostic: str      # e.g. "550 5.1.1 Mailbox unknown"


@dataclass
class Expansion:
    deliveries: list[Delivery] = field(default_factory=list)
    failed: list[Unresolved] = field(default_factory=list)

    def by_connector(self, connector: Connector) -> list[Delivery]:
        return [d for d in self.deliveries if d.connector == connector]

    def smtp_by_domain(self) -> dict[str, list[Delivery]]:
        """Remote deliveries grouped by destination domain, in first-seen order."""
        groups: dict[str, list[Delivery]] = {}
        for delivery in self.by_connector("SMTP"):
            groups.setdefault(delivery.domain, []).append(delivery)
        return groups


_MISSING = object()


class Expander:
    """Expand the recipients of one message (create one per message: it caches)."""

    def __init__(self, directory: Directory, *, catch_alls: bool = True,
                 max_depth: int = MAX_GROUP_DEPTH) -> None:
        self.directory = directory
        self.catch_alls = catch_alls
        self.max_depth = max_depth
        self._cache: dict[tuple[str, str], Any] = {}
        self._result = Expansion()
        self._seen: set[str] = set()          # final deliveries, lower case
        self._groups: set[str] = set()        # groups already expanded
        self._failed: set[str] = set()        # failed addresses, lower case

    def expand(self, recipients: Sequence[str]) -> Expansion:
        for recipient in recipients:
            self._visit(recipient, recipient, 0, None)
        return self._result

    # -- one address -------------------------------------------------------------------

    def _visit(self, address: str, origin: str, depth: int, via: str | None) -> None:
        try:
            parsed = parse_connector(address, "recipient")
        except DirectoryError as exc:
            self._fail(origin, address, "5.1.3", f"501 5.1.3 Bad recipient address syntax "
                                                 f"({exc.message})")
            return
        if depth > self.max_depth:
            self._fail(origin, display_address(str(parsed)), "5.4.6",
                       f"554 5.4.6 Groups nested deeper than {self.max_depth} levels "
                       "(routing loop?)")
            return
        if parsed.connector == "SMTP":
            self._smtp(parsed, origin, depth, via)
        elif parsed.connector == "SF":
            self._sf(parsed, origin, depth, via)
        else:
            self._list(parsed, origin, via)

    def _smtp(self, parsed: ConnectorAddress, origin: str, depth: int, via: str | None) -> None:
        address = str(parsed)
        domain = self._lookup("domain", parsed.domain, self.directory.get_domain)
        if domain is None:
            self._deliver("SMTP", address, origin, via)
            return
        assert isinstance(domain, Domain)
        shown = display_address(address)
        if domain.options.get("disabled"):
            self._fail(origin, shown, "5.1.2", f"550 5.1.2 Domain {domain.display_name} "
                                               "does not accept mail")
            return
        entry = self._lookup("resolve", address, self.directory.resolve)
        if isinstance(entry, Address) and not _is_catch_all(entry):
            self._visit(entry.target, origin, _next(entry.target, depth), via)
            return
        if domain.options.get("smart_host.enabled"):
            self._deliver("SMTP", address, origin, via)
            return
        special = _special_address(domain, parsed.local)
        if special:
            self._visit(special, origin, depth + 1, via)
            return
        if isinstance(entry, Address) and self.catch_alls:
            self._visit(entry.target, origin, _next(entry.target, depth), via)
            return
        self._fail(origin, shown, "5.1.1", "550 5.1.1 Mailbox unknown")

    def _sf(self, parsed: ConnectorAddress, origin: str, depth: int, via: str | None) -> None:
        address = str(parsed)
        key = address.lower()
        group = self._lookup("group", address,
                             lambda _: self.directory.get_group(parsed.postoffice, parsed.name))
        if isinstance(group, Group):
            canonical = f"[SF:{group.postoffice}/{group.name}]"
            if group.options.get("disabled"):
                self._fail(origin, canonical, "5.1.1",
                           "550 5.1.1 Group is disabled: address not valid")
                return
            if key in self._groups:       # already expanded: a duplicate or a cycle
                return
            self._groups.add(key)
            if depth >= self.max_depth:
                self._fail(origin, canonical, "5.4.6",
                           f"554 5.4.6 Groups nested deeper than {self.max_depth} levels "
                           "(routing loop?)")
                return
            for member in group.members:
                self._visit(member, origin, depth + 1, canonical)
            return
        mailbox = self._lookup("mailbox", address,
                               lambda _: self.directory.get_mailbox(parsed.postoffice,
                                                                    parsed.name))
        if isinstance(mailbox, Mailbox):
            self._deliver("SF", mailbox.connector_address, origin, via)
            return
        self._fail(origin, address, "5.1.1", "550 5.1.1 Mailbox unknown")

    def _list(self, parsed: ConnectorAddress, origin: str, via: str | None) -> None:
        address = str(parsed)
        found = self._lookup("list", address,
                             lambda _: self.directory.get_list(parsed.postoffice, parsed.name))
        if isinstance(found, MailList):
            self._deliver("LS", f"[LS:{found.postoffice}/{found.name}]", origin, via)
            return
        self._fail(origin, address, "5.1.1", "550 5.1.1 No such list")

    # -- bookkeeping -------------------------------------------------------------------

    def _lookup(self, kind: str, key: str, fetch: Callable[[str], T]) -> T | None:
        """``fetch(key)`` once per message; a DirectoryError counts as "not found"."""
        cache_key = (kind, key.lower())
        found = self._cache.get(cache_key, _MISSING)
        if found is _MISSING:
            try:
                found = fetch(key)
            except DirectoryError:
                found = None
            self._cache[cache_key] = found
        return found  # type: ignore[return-value]

    def _deliver(self, connector: Connector, address: str, origin: str,
                 via: str | None) -> None:
        key = address.lower()
        if key in self._seen:
            return
        self._seen.add(key)
        self._result.deliveries.append(Delivery(connector, address, origin, via))

    def _fail(self, origin: str, address: str, status: str, diagnostic: str) -> None:
        key = address.lower()
        if key in self._failed:
            return
        self._failed.add(key)
        self._result.failed.append(Unresolved(origin, address, status, diagnostic))


def _next(target: str, depth: int) -> int:
    """Mailbox, group and list targets end a lookup; an SMTP target (a remote catch-all
    or a special address) may lead to another hosted domain, so it counts as a level
    (two domains whose catch-alls point at each other cannot recurse forever)."""
    return depth + 1 if target[:6].upper() == "[SMTP:" else depth


def _is_catch_all(entry: Address) -> bool:
    return entry.address.lower().startswith("[smtp:*@")


def _special_address(domain: Domain, local: str) -> str:
    """postmaster@ and abuse@ a hosted domain, when the domain names where they go."""
    key = {"postmaster": "postmaster_address", "abuse": "abuse_address"}.get(local.lower())
    return str(domain.options.get(key, "") or "") if key else ""


def expand(directory: Directory, recipients: Sequence[str], *,
           catch_alls: bool = True) -> Expansion:
    """Expand ``recipients`` of one message (see the module docstring)."""
    return Expander(directory, catch_alls=catch_alls).expand(recipients)
