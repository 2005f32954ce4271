"""Access control lists of folders (RFC 4314) and who sees which shared folder (the
contract).

Manual 6.3.6.4 and the post office option ``message_store.public_folders``: "Anything
placed in this folder (...\\Post Offices\\[Post Office Name]\\Pubroot) will become
visible to all other mailboxes in the post office." Postroom keeps a post office's
public folders as the folders of one reserved mailbox,
:data:`postroom.store.directory.PUBLIC_ROOT`, so messages, flags, UIDs, MODSEQ,
quotas and IDLE wake-ups are the message store's, unchanged; this part adds only who
may do what with them. ``backends/sqlite/acl.py`` is the embedded implementation.

Rights are RFC 4314 §2.1's letters :data:`RIGHTS` (``lrswipkxtea``). Identifiers are
mailbox names of the folder's post office and ``anyone``; negative rights
(``-name``) and groups are not offered. A user's rights on a folder are the union
of the entries naming its mailbox and ``anyone`` (§2).

Default ACLs (a folder without entries has one; the first change writes it out, then
applies the change):

* a public folder: ``anyone`` gets :data:`PUBLIC_DEFAULT` (``lrswipkxte``: every
  mailbox of the post office reads and writes, as the manual says), and the post
  office's administrators (mailbox type ADMIN or SYSADMIN, manual 5.5.3) get ``a``
  as well;
* a personal folder: only its owner, who always holds every right whatever the
  entries say (an owner cannot lock themselves out: RFC 4314 §2 lets the server fix
  an identifier's rights, and LISTRIGHTS shows them as required). The owner may grant
  other mailboxes of the post office rights on it (IMAP "Other Users/<owner>/...").

A post office's folders are never visible from another post office: identifiers are
resolved inside the folder's post office, and callers only ever ask about folders of
the user's own post office.

Untrusted input: identifiers and rights strings from IMAP clients; both are checked
here (:class:`AclError` names the field) before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

RIGHTS = "lrswipkxtea"
ALL_RIGHTS = RIGHTS
PUBLIC_DEFAULT = "lrswipkxte"
ANYONE = "anyone"
# RFC 4314 §2.1.1: the RFC 2086 rights "c" and "d" stand for the "create" (k x) and
# "delete" (t e) sets; a rights list holding any member is shown with the letter too.
OBSOLETE = {"c": "kx", "d": "te"}


class AclError(ValueError):
    """Refused ACL change or lookup; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_rights(text: str) -> tuple[str, str]:
    """``(mode, rights)`` of a SETACL rights string: mode ``+`` adds, ``-`` removes,
    ``""`` replaces; ``c`` and ``d`` become their sets. AclError on any other letter
    (RFC 4314 §3.1: an unrecognised right is an error)."""
    mode = text[:1] if text[:1] in ("+", "-") else ""
    letters = text[len(mode):]
    out: set[str] = set()
    for ch in letters:
        if ch in RIGHTS:
            out.add(ch)
        elif ch in OBSOLETE:
            out.update(OBSOLETE[ch])
        else:
            raise AclError("rights", f"{ch!r} is not a right (rights are {RIGHTS} and c, d)")
    return mode, canonical(out)


def canonical(rights: Iterable[str]) -> str:
    """Rights in :data:`RIGHTS` order, without duplicates or obsolete letters."""
    have = set(rights)
    return "".join(ch for ch in RIGHTS if ch in have)


def apply(current: str, mode: str, rights: str) -> str:
    """The rights after a SETACL of ``mode`` (see :func:`parse_rights`)."""
    if mode == "+":
        return canonical(current + rights)
    if mode == "-":
        return canonical(ch for ch in current if ch not in rights)
    return canonical(rights)


def shown(rights: str) -> str:
    """Rights as MYRIGHTS and ACL responses show them: with ``c`` / ``d`` added when a
    member of their set is there (RFC 4314 §2.1.1, for RFC 2086 clients)."""
    extra = "".join(letter for letter, members in OBSOLETE.items()
                    if any(ch in rights for ch in members))
    return canonical(rights) + extra


class FolderAcl(Protocol):
    """ACL entries of folders; names are post office / mailbox / folder names."""

    def acl(self, postoffice: str, mailbox: str, folder: str) -> dict[str, str]:
        """The effective ACL (the entries, else the default), identifier -> rights;
        identifiers with no rights are left out."""

    def rights(self, postoffice: str, mailbox: str, folder: str, user: str) -> str:
        """What mailbox ``user`` of the same post office may do with the folder."""

    def rights_by_folder(self, postoffice: str, mailbox: str, user: str) -> dict[str, str]:
        """:meth:`rights` for every folder of the mailbox, in one go (LIST)."""

    def shared_with(self, postoffice: str, user: str) -> dict[tuple[str, str], str]:
        """(mailbox, folder) -> rights of every folder other mailboxes of the post
        office granted ``user`` (or ``anyone``) a right on, the public folders aside
        (the IMAP "Other Users" namespace)."""

    def set_rights(self, postoffice: str, mailbox: str, folder: str, identifier: str,
                   rights: str) -> None:
        """Give ``identifier`` exactly ``rights`` (canonical letters; ``""``: none)."""

    def delete_rights(self, postoffice: str, mailbox: str, folder: str,
                      identifier: str) -> None:
        """Remove ``identifier``'s entry (DELETEACL)."""

    def copy_entries(self, postoffice: str, mailbox: str, source: str, target: str) -> None:
        """Give folder ``target`` the explicit entries of ``source`` (a new public
        folder inherits its parent's ACL); nothing when ``source`` has none."""

    def check_identifier(self, postoffice: str, identifier: str) -> str:
        """The identifier as stored (``anyone`` or the mailbox's name), or AclError."""

    def subscribed(self, postoffice: str, mailbox: str, user: str) -> set[str]:
        """Which folders of ``mailbox`` (another mailbox: the public folders) ``user``
        is subscribed to; all of them unless ``user`` unsubscribed."""

    def set_subscribed(self, postoffice: str, mailbox: str, folder: str, user: str,
                       subscribed: bool) -> None: ...
