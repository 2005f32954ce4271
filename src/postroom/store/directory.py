"""The directory: post offices, domains, mailboxes, the address map, groups and lists.

Manual chapter 5 (5.3 post offices, 5.4 domains, 5.5 mailboxes, 5.6 groups,
5.7 lists). This module is the contract; ``backends/sqlite/directory/`` is the
embedded implementation. Every method validates its input and raises
:class:`DirectoryError` naming the field, leaving the store unchanged.

Names and addresses:

* A mailbox logs in as ``mailbox@postoffice`` or as any SMTP address mapped to it.
* The address map keys are connector addresses ``[SMTP:local@domain]``; targets are
  ``[SF:postoffice/mailbox]`` (a mailbox or a group, which the post office connector
  expands), or ``[LS:postoffice/list]`` (a list). A catch-all is ``[SMTP:*@domain]``.
* Domains are stored in their ASCII (punycode) form; records also carry the
  Unicode form for display.

A post office's public folders live in one hidden mailbox, :data:`PUBLIC_ROOT`,
created on first use by :meth:`Directory.public_root`; it has no password, no
address and no quota, and ``list_mailboxes`` (hence counts, CSV export, post office
quotas) leaves it out.

Per-object options are dictionaries validated by the option sets in
:mod:`postroom.settings.objects`; records carry the effective options (defaults
merged with what was set).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

DEFAULT_MAILBOX_TYPE = "USER"
MAILBOX_TYPES = ("USER", "ADMIN", "SYSADMIN")
ADMIN_TYPES = ("ADMIN", "SYSADMIN")      # post office administrators (public folder ACLs)
# The mailbox holding a post office's public folders (manual 6.3.6.4 "Pubroot"). Its
# brackets can never appear in a mailbox name (store.addresses) nor in a login, so it
# cannot be created, mapped to or logged into; the directory never lists it.
PUBLIC_ROOT = "[Pubroot]"


class DirectoryError(ValueError):
    """Refused directory change or lookup; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class PostOffice:
    id: int
    name: str
    options: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class Domain:
    id: int
    name: str            # ASCII / punycode, lower case
    display_name: str    # Unicode form
    postoffice: str
    options: dict[str, Any]


@dataclass(frozen=True)
class Mailbox:
    id: int
    postoffice: str
    name: str
    type: str                    # USER | ADMIN | SYSADMIN
    quota_bytes: int | None      # None: unlimited
    used_bytes: int
    message_count: int
    options: dict[str, Any]
    created_at: float
    has_recoverable_secret: bool = False

    @property
    def login(self) -> str:
        return f"{self.name}@{self.postoffice}"

    @property
    def connector_address(self) -> str:
        return f"[SF:{self.postoffice}/{self.name}]"


@dataclass(frozen=True)
class Address:
    address: str      # e.g. [SMTP:bob@example.com]
    target: str       # e.g. [SF:example/bob]
    postoffice: str


@dataclass(frozen=True)
class Group:
    id: int
    postoffice: str
    name: str
    options: dict[str, Any]
    members: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MailList:
    id: int
    postoffice: str
    name: str
    options: dict[str, Any]


@dataclass(frozen=True)
class PopRetrieval:
    id: int
    postoffice: str
    mailbox: str
    options: dict[str, Any]


class Directory(Protocol):
    """What connectors, services and the admin tools may ask of the directory."""

    # Post offices (5.3)
    def create_postoffice(self, name: str,
                          options: Mapping[str, Any] | None = None) -> PostOffice: ...
    def get_postoffice(self, name: str) -> PostOffice: ...
    def list_postoffices(self) -> list[PostOffice]: ...
    def update_postoffice(self, name: str, options: Mapping[str, Any]) -> PostOffice: ...
    def delete_postoffice(self, name: str, *, force: bool = False) -> None: ...

    # Domains (5.4)
    def create_domain(self, name: str, postoffice: str,
                      options: Mapping[str, Any] | None = None) -> Domain: ...
    def get_domain(self, name: str) -> Domain: ...
    def list_domains(self, postoffice: str | None = None) -> list[Domain]: ...
    def update_domain(self, name: str, options: Mapping[str, Any]) -> Domain: ...
    def delete_domain(self, name: str) -> None: ...

    # Mailboxes (5.5)
    def create_mailbox(self, postoffice: str, name: str, password: str, *,
                       quota_bytes: int | None = ..., type: str = DEFAULT_MAILBOX_TYPE,
                       options: Mapping[str, Any] | None = None) -> Mailbox: ...
    def get_mailbox(self, postoffice: str, name: str) -> Mailbox: ...
    def list_mailboxes(self, postoffice: str) -> list[Mailbox]: ...
    def update_mailbox(self, postoffice: str, name: str, *,
                       options: Mapping[str, Any] | None = None,
                       quota_bytes: int | None = ..., type: str | None = None) -> Mailbox: ...
    def set_password(self, postoffice: str, name: str, password: str) -> None: ...
    def delete_mailbox(self, postoffice: str, name: str) -> None: ...
    def authenticate(self, login: str, password: str) -> Mailbox | None: ...
    def find_login(self, login: str) -> Mailbox | None: ...
    def recoverable_secret(self, postoffice: str, name: str) -> str | None: ...
    def public_root(self, postoffice: str) -> Mailbox:
        """The post office's public folder mailbox (:data:`PUBLIC_ROOT`), created on
        first use."""

    # Address map
    def add_address(self, address: str, target: str) -> Address: ...
    def delete_address(self, address: str) -> None: ...
    def list_addresses(self, *, postoffice: str | None = None,
                       target: str | None = None) -> list[Address]: ...
    def resolve(self, address: str) -> Address | None: ...

    # Groups (5.6)
    def create_group(self, postoffice: str, name: str,
                     options: Mapping[str, Any] | None = None) -> Group: ...
    def get_group(self, postoffice: str, name: str) -> Group: ...
    def list_groups(self, postoffice: str) -> list[Group]: ...
    def add_group_member(self, postoffice: str, name: str, member: str) -> Group: ...
    def remove_group_member(self, postoffice: str, name: str, member: str) -> Group: ...
    def delete_group(self, postoffice: str, name: str) -> None: ...

    # Lists (5.7)
    def create_list(self, postoffice: str, name: str,
                    options: Mapping[str, Any] | None = None) -> MailList: ...
    def get_list(self, postoffice: str, name: str) -> MailList: ...
    def list_lists(self, postoffice: str) -> list[MailList]: ...
    def update_list(self, postoffice: str, name: str, options: Mapping[str, Any]) -> MailList: ...
    def delete_list(self, postoffice: str, name: str) -> None: ...

    # POP retrieval entries (5.5.8), stored for the POP retrieval connector
    def add_pop_retrieval(self, postoffice: str, mailbox: str, options: Mapping[str, Any],
                          password: str) -> PopRetrieval: ...
    def list_pop_retrieval(self, postoffice: str, mailbox: str) -> list[PopRetrieval]: ...
    def delete_pop_retrieval(self, entry_id: int) -> None: ...
