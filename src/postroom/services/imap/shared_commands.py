"""CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE of public folders (manual 6.3.6.4)
and of folders other users shared (RFC 4314 §4 rights; RFC 3501 §6.3.3-6.3.7).

Public folders are folders of the post office's hidden mailbox
(:data:`~postroom.store.directory.PUBLIC_ROOT`, made on the first CREATE), other
users' folders are folders of their mailboxes, so these commands are the personal
ones aimed at another mailbox, with the rights checked first:

* CREATE needs ``k`` on the nearest existing parent (on ``Public Folders`` itself:
  the default public rights, which every mailbox of the post office has; on
  ``Other Users/<mailbox>``: none, only owners make top-level folders). Missing
  parents are created too; each new folder inherits the explicit ACL of the folder it
  was created under (none: the default ACL).
* DELETE needs ``x``; a folder with children is refused (``[INUSE]``), as for
  personal folders.
* RENAME needs ``x`` on the old name and ``k`` on the new name's parent, and stays in
  one namespace: moving a folder between the personal and the public folders is
  refused with ``[CANNOT]`` (it would change who owns the messages); so is a move
  into another mailbox.
* SUBSCRIBE / UNSUBSCRIBE are the user's own (store table ``folder_unsubscribed``):
  every public or shared folder starts out subscribed, so it shows in LSUB at once.

Namespace roots (``Public Folders``, ``Other Users``, ``Other Users/<mailbox>``)
cannot be created, deleted or renamed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from postroom.services.imap import commands as cmd
from postroom.services.imap import mailboxes
from postroom.services.imap.mailboxes import SEPARATOR
from postroom.services.imap.places import SHARED, Place, denied, rights, shown
from postroom.store.acl import AclError
from postroom.store.messages import MessageStoreError

if TYPE_CHECKING:
    from postroom.services.imap.session import ImapSession


def _names(s: ImapSession, place: Place) -> set[str]:
    try:
        return {f.name for f in s.ctx.store.messages.list_folders(*place.owner)}
    except MessageStoreError:
        return set()                     # the hidden mailbox does not exist yet


def _parent(place: Place, existing: set[str]) -> Place:
    """The nearest existing ancestor of ``place`` (the namespace root if none)."""
    parts = place.folder.split(SEPARATOR)
    for i in range(len(parts) - 1, 0, -1):
        path = SEPARATOR.join(parts[:i])
        if path in existing:
            return Place(place.kind, place.postoffice, place.mailbox, path, place.prefix)
    return Place(place.kind, place.postoffice, place.mailbox, "", place.prefix)


def _rights(s: ImapSession, place: Place) -> str:
    return rights(s.ctx.store, place, s.owner[1])


def _root_refused(s: ImapSession, c: cmd.Command, *places: Place) -> bool:
    if any(p.root for p in places):
        root = next(p for p in places if p.root)
        s.done(c, "NO", f"{shown(s, root)!r} is a namespace root, not a folder", "CANNOT")
        return True
    return False


async def create(s: ImapSession, c: cmd.Command, place: Place) -> None:
    if _root_refused(s, c, place):
        return
    existing = await s.io(_names, s, place)
    if place.folder in existing:
        have = await s.io(_rights, s, place)
        if "l" in have:
            s.done(c, "NO", f"mailbox {shown(s, place)!r} already exists", "ALREADYEXISTS")
        else:
            s.done(c, "NO", f"cannot create {shown(s, place)!r}", "NOPERM")
        return
    parent = _parent(place, existing)
    if denied(s, c, parent, await s.io(_rights, s, parent), "k"):
        return
    store = s.ctx.store
    try:
        if place.kind == SHARED:
            await s.io(store.directory.public_root, place.postoffice)
        parts = place.folder.split(SEPARATOR)
        for i in range(1, len(parts) + 1):
            path = SEPARATOR.join(parts[:i])
            if path in existing:
                continue
            await s.io(store.messages.create_folder, *place.owner, path)
            if not parent.root:
                await s.io(store.acl.copy_entries, *place.owner, parent.folder, path)
    except MessageStoreError as exc:
        s.done(c, "NO", f"cannot create {shown(s, place)!r}: {exc.message}", "CANNOT")
        return
    s.done(c, "OK", "CREATE completed")


async def _removable(s: ImapSession, c: cmd.Command, place: Place) -> set[str] | None:
    """The folder names of ``place``'s mailbox when the user may remove ``place``
    (the delete right, x); None when the command was answered NO."""
    existing = await s.io(_names, s, place)
    have = await s.io(_rights, s, place) if place.folder in existing else ""
    return None if denied(s, c, place, have, "x") else existing


async def delete(s: ImapSession, c: cmd.Command, place: Place) -> None:
    if _root_refused(s, c, place):
        return
    existing = await _removable(s, c, place)
    if existing is None:
        return
    if any(n.startswith(place.folder + SEPARATOR) for n in existing):
        s.done(c, "NO", f"mailbox {shown(s, place)!r} has children", "INUSE")
        return
    try:
        await s.io(s.ctx.store.messages.delete_folder, *place.key)
    except MessageStoreError as exc:
        s.done(c, "NO", exc.message, "CANNOT")
        return
    if s.selected is not None and s.selected.folder == place.folder and \
            s.where == place.owner:
        s.select(None)
    s.done(c, "OK", "DELETE completed")


async def rename(s: ImapSession, c: cmd.Rename, old: Place, new: Place) -> None:
    if old.owner != new.owner:
        s.done(c, "NO", f"cannot move {shown(s, old)!r} to {shown(s, new)!r}: a folder "
               "stays in its mailbox (personal, public or another user's)", "CANNOT")
        return
    if _root_refused(s, c, old, new):
        return
    existing = await _removable(s, c, old)
    if existing is None:
        return
    if new.folder in existing:
        s.done(c, "NO", f"mailbox {shown(s, new)!r} already exists", "ALREADYEXISTS")
        return
    parent = _parent(new, existing - {old.folder})
    if denied(s, c, parent, await s.io(_rights, s, parent), "k"):
        return
    try:
        await s.io(s.ctx.store.messages.rename_folder, *old.key, new.folder)
    except MessageStoreError as exc:
        s.done(c, "NO", exc.message, "CANNOT")
        return
    s.done(c, "OK", "RENAME completed")


async def subscribe(s: ImapSession, c: cmd.Command, place: Place) -> None:
    if _root_refused(s, c, place):
        return
    have = await s.io(_rights, s, place)
    if denied(s, c, place, have, "l"):
        return
    try:
        await s.io(s.ctx.store.acl.set_subscribed, *place.key, s.owner[1],
                   c.name == "SUBSCRIBE")
    except AclError:
        s.done(c, "NO", f"no mailbox {mailboxes.to_imap(place.name)!r}", "NONEXISTENT")
        return
    s.done(c, "OK", f"{c.name} completed")
