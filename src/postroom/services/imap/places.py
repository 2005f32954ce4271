"""Where an IMAP mailbox name lives, and what the user may do there (RFC 2342
NAMESPACE, RFC 4314 ACL §4; manual 6.3.6.4 public folders).

Every name a client sends is first turned into a :class:`Place`: the store's
(post office, mailbox, folder) triple the message store, the folder index and the
IDLE watch are keyed by, plus the namespace it came from:

* personal: ``INBOX``, ``Sent Items`` ... -> the user's own mailbox;
* shared: ``Public Folders/<folder>`` -> folder ``<folder>`` of the post office's hidden
  public mailbox (:data:`~postroom.store.directory.PUBLIC_ROOT`), only while the post
  office's ``message_store.public_folders`` option is on. Every user of the post office
  gets the same triple, so one session's APPEND is another's EXISTS, through the
  store's ordinary change tracking. Another post office has another hidden mailbox:
  its public folders cannot be named from here at all.
* other users: ``Other Users/<mailbox>/<folder>`` -> folder ``<folder>`` of mailbox
  ``<mailbox>`` of the user's own post office, which its owner shared with SETACL.
  The hidden public mailbox and the user's own mailbox cannot be named this way.

``Public Folders`` (while public folders are on), ``Other Users`` and
``Other Users/<mailbox>`` are namespace roots (``\\Noselect``, listed when they
have something to show); personal folders whose names begin with ``Public Folders``
or ``Other Users`` are not shown while those names belong to a namespace.

Rights (:func:`rights`): the owner holds every right on personal folders; public
folders ask the store's ACL (:mod:`postroom.store.acl`). :func:`denied` answers a
command that lacks a right the way RFC 4314 §4 and §6 ask: ``NO [NOPERM]`` naming the
right when the user may at least see the folder (``l``), else exactly the answer a
nonexistent folder gets, so ACLs do not reveal which folders exist.

Settings read: the post office option ``message_store.public_folders`` (per command,
one cached directory read).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from postroom.services.imap import mailboxes
from postroom.services.imap.mailboxes import SEPARATOR, MailboxNameError
from postroom.store.acl import ALL_RIGHTS, PUBLIC_DEFAULT, AclError
from postroom.store.directory import ADMIN_TYPES, PUBLIC_ROOT, DirectoryError
from postroom.store.messages import FolderInfo, MessageStoreError

if TYPE_CHECKING:
    from postroom.services.imap import commands as cmd
    from postroom.services.imap.session import ImapSession
    from postroom.store import Store

PUBLIC = "Public Folders"
OTHERS = "Other Users"
PERSONAL, SHARED, OTHER, ROOT = "personal", "shared", "other", "root"
RIGHT_NAMES = {"l": "lookup", "r": "read", "s": "keep seen", "w": "write", "i": "insert",
               "p": "post", "k": "create mailboxes", "x": "delete mailbox",
               "t": "delete messages", "e": "expunge", "a": "administer"}


@dataclass(frozen=True)
class Place:
    kind: str            # PERSONAL, SHARED (public), OTHER (users) or ROOT (listing only)
    postoffice: str
    mailbox: str         # the store mailbox holding the folder
    folder: str          # its store folder name; "" for a namespace root
    prefix: str = ""     # what the client puts before ``folder``

    @property
    def key(self) -> tuple[str, str, str]:
        return self.postoffice, self.mailbox, self.folder

    @property
    def owner(self) -> tuple[str, str]:
        return self.postoffice, self.mailbox

    @property
    def name(self) -> str:
        """The name in the client's terms (store style: ``Inbox``, not ``INBOX``)."""
        return self.prefix + self.folder if self.folder else self.prefix.rstrip(SEPARATOR)

    @property
    def root(self) -> bool:
        return not self.folder

    @property
    def personal(self) -> bool:
        return self.kind == PERSONAL


def public_enabled(store: Store, postoffice: str) -> bool:
    try:
        po = store.directory.get_postoffice(postoffice)
    except DirectoryError:
        return False
    return bool(po.options.get("message_store.public_folders"))


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + SEPARATOR)


def locate(s: ImapSession, name: str) -> Place:
    postoffice, user = s.owner
    if _under(name, PUBLIC) and public_enabled(s.ctx.store, postoffice):
        return Place(SHARED, postoffice, PUBLIC_ROOT, name[len(PUBLIC) + 1:],
                     PUBLIC + SEPARATOR)
    if _under(name, OTHERS):
        owner, _, folder = name[len(OTHERS) + 1:].partition(SEPARATOR)
        prefix = f"{OTHERS}{SEPARATOR}{owner}{SEPARATOR}" if owner else OTHERS + SEPARATOR
        if owner.lower() in (user.lower(), PUBLIC_ROOT.lower()):
            owner = ""                   # names nothing: answers as a missing folder
        return Place(OTHER, postoffice, owner, folder, prefix)
    return Place(PERSONAL, postoffice, user, name)


async def place_of(s: ImapSession, c: cmd.Command, raw: bytes) -> Place | None:
    """The place a client's mailbox name names, or None after answering NO [CANNOT]."""
    try:
        name = mailboxes.decode(raw, s.flags.utf8)
    except MailboxNameError as exc:
        s.done(c, "NO", f"{raw.decode('utf-8', 'replace')!r}: {exc}", "CANNOT")
        return None
    if _under(name, PUBLIC):
        return await s.io(locate, s, name)          # reads the post office's option
    return locate(s, name)


def shown(s: ImapSession, place: Place) -> str:
    return mailboxes.to_imap(place.name)


def root_rights(store: Store, postoffice: str, user: str) -> str:
    """Rights on the public namespace's root (what CREATE of a top-level public folder
    needs ``k`` of): the default public ACL (store.acl), which cannot be changed.
    Other users' roots give none: only their owners make top-level folders."""
    try:
        box = store.directory.get_mailbox(postoffice, user)
    except DirectoryError:
        return ""
    return PUBLIC_DEFAULT + ("a" if box.type in ADMIN_TYPES else "")


def rights(store: Store, place: Place, user: str) -> str:
    """``user``'s rights on ``place``; "" when the folder does not exist."""
    if place.personal:
        return ALL_RIGHTS
    if place.root:
        return root_rights(store, place.postoffice, user) if place.kind == SHARED else ""
    if not place.mailbox:
        return ""
    try:
        return store.acl.rights(place.postoffice, place.mailbox, place.folder, user)
    except AclError:
        return ""


async def rights_of(s: ImapSession, place: Place) -> str:
    if place.personal:
        return ALL_RIGHTS
    return await s.io(rights, s.ctx.store, place, s.owner[1])


def denied(s: ImapSession, c: cmd.Command, place: Place, have: str, need: str,
           missing: str = "NONEXISTENT") -> bool:
    """Answer and return True unless ``have`` holds every right of ``need``."""
    lacking = [r for r in need if r not in have]
    if not lacking:
        return False
    if "l" not in have:
        s.done(c, "NO", f"no mailbox {shown(s, place)!r}", missing)
    else:
        names = ", ".join(f"{RIGHT_NAMES[r]} ({r})" for r in lacking)
        s.done(c, "NO", f"{c.name} {shown(s, place)!r}: you lack the {names} right",
               "NOPERM")
    return True


def folder_state(store: Store, place: Place) -> tuple[int, int, int] | None:
    """(UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) of the folder, None if there is none. One
    indexed read (not the counts :func:`folder_info` gathers over the whole mailbox),
    cheap enough for the event loop."""
    if place.root or not place.mailbox:
        return None
    return mailboxes.folder_state(store, *place.key)


def folder_exists(store: Store, place: Place) -> bool:
    return folder_state(store, place) is not None


def folder_info(store: Store, place: Place) -> FolderInfo | None:
    """The folder's listing entry, or None if it does not exist."""
    if place.root or not place.mailbox:
        return None
    try:
        infos = store.messages.list_folders(*place.owner, only=place.folder)
    except MessageStoreError:
        return None                    # no public folder was ever created
    return next((f for f in infos if f.name == place.folder), None)


def _root(name: str) -> tuple[Place, FolderInfo, str]:
    return (Place(ROOT, "", "", "", name + SEPARATOR),
            FolderInfo(name, 0, 0, 0, 0, 0, False, None), "")


def visible_folders(s: ImapSession) -> list[tuple[Place, FolderInfo, str]]:
    """Every folder the user may list (``l``), named as the client names them, with
    the user's own subscription state and rights, and the namespace roots above them
    (kind ROOT); run in the store pool."""
    store = s.ctx.store
    postoffice, user = s.owner
    public = public_enabled(store, postoffice)
    out = []
    for info in store.messages.list_folders(postoffice, user):
        if (public and _under(info.name, PUBLIC)) or _under(info.name, OTHERS):
            continue                   # hidden behind a namespace
        out.append((Place(PERSONAL, postoffice, user, info.name), info, ALL_RIGHTS))
    shared = store.acl.shared_with(postoffice, user)
    owners = sorted({owner for owner, _ in shared}, key=str.lower)
    if owners:
        out.append(_root(OTHERS))
    for owner in owners:
        out.append(_root(f"{OTHERS}{SEPARATOR}{owner}"))
        prefix = f"{OTHERS}{SEPARATOR}{owner}{SEPARATOR}"
        out += _others_folders(s, Place(OTHER, postoffice, owner, "", prefix),
                               {f: r for (o, f), r in shared.items() if o == owner})
    if public:
        out.append(_root(PUBLIC))
        try:
            infos = store.messages.list_folders(postoffice, PUBLIC_ROOT)
        except MessageStoreError:
            infos = []
        if infos:
            allowed = store.acl.rights_by_folder(postoffice, PUBLIC_ROOT, user)
            out += _others_folders(s, Place(SHARED, postoffice, PUBLIC_ROOT, "",
                                            PUBLIC + SEPARATOR), allowed, infos)
    return out


def _others_folders(s: ImapSession, base: Place, allowed: dict[str, str],
                    infos: list[FolderInfo] | None = None,
                    ) -> list[tuple[Place, FolderInfo, str]]:
    """The folders of another mailbox (``base``) the user may list."""
    store, user = s.ctx.store, s.owner[1]
    if infos is None:
        infos = store.messages.list_folders(*base.owner)
    subscribed = store.acl.subscribed(base.postoffice, base.mailbox, user)
    out = []
    for info in infos:
        have = allowed.get(info.name, "")
        if "l" not in have:
            continue
        place = dataclasses.replace(base, folder=info.name)
        out.append((place, dataclasses.replace(info, name=place.name, special_use=None,
                                               subscribed=info.name in subscribed), have))
    return out
