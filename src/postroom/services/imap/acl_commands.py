"""The ACL commands (RFC 4314 §3): SETACL, DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS,
advertised as ``ACL`` and ``RIGHTS=texk`` (t, e, x and k are rights of their own).

Every folder has an ACL, kept by the store (:mod:`postroom.store.acl`): SETACL,
DELETEACL, GETACL and LISTRIGHTS need the administer right ``a``, MYRIGHTS any right.
On public folders (``Public Folders/...``, :mod:`.places`) ``a`` belongs by default to
the post office's administrators. On personal folders the owner holds every right,
always: GETACL shows the owner first, LISTRIGHTS shows every right as required for
the owner, and SETACL / DELETEACL naming the owner answer ``NO [CANNOT]``. An owner
(or whoever the owner gave ``a``) grants other mailboxes of the post office rights on
a personal folder with SETACL; they then find it as ``Other Users/<owner>/<folder>``.

Responses (§3.6-3.8): ``* ACL mailbox (identifier rights)*``, ``* LISTRIGHTS mailbox
identifier required optional*`` (each optional right on its own: they are independent),
``* MYRIGHTS mailbox rights``. Rights are shown with the RFC 2086 letters ``c`` and
``d`` added when one of their members (``k x`` / ``t e``) is there (§2.1.1), and
``c``/``d`` in SETACL stand for those members.

Untrusted input: identifiers and rights. A rights string with a letter that is not a
right is a syntax error (``BAD``, §3.1); negative rights (``-name``), unknown
identifiers and identifiers of another post office are refused with ``NO``. An
identifier is a mailbox name of the user's post office or ``anyone``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from postroom.services.imap import commands as cmd
from postroom.services.imap import mailboxes, wire
from postroom.services.imap.places import Place, denied, folder_exists, place_of, rights_of
from postroom.store.acl import ALL_RIGHTS, RIGHTS, AclError, apply, parse_rights, shown

if TYPE_CHECKING:
    from postroom.services.imap.session import ImapSession


def _mailbox(s: ImapSession, place: Place) -> bytes:
    return wire.astring(mailboxes.encode(place.name, s.flags.utf8))


async def _target(s: ImapSession, c: cmd.Command, raw: bytes, need: str) -> Place | None:
    """The place of ``raw`` if it exists and the user holds ``need`` (one of it for
    MYRIGHTS), else None after answering."""
    place = await place_of(s, c, raw)
    if place is None:
        return None
    if place.root or not folder_exists(s.ctx.store, place):
        s.done(c, "NO", f"no mailbox {mailboxes.to_imap(place.name)!r}", "NONEXISTENT")
        return None
    have = await rights_of(s, place)
    if need == "any":
        need = "" if any(r in have for r in "lrikxa") else "l"
    return None if denied(s, c, place, have, need) else place


async def setacl(s: ImapSession, c: cmd.AclCommand) -> None:
    assert c.rights is not None
    try:
        mode, wanted = parse_rights(c.rights.decode("utf-8", "replace"))
    except AclError as exc:
        s.done(c, "BAD", f"SETACL: {exc.message}")
        return
    await _change(s, c, lambda current: apply(current, mode, wanted))


async def deleteacl(s: ImapSession, c: cmd.AclCommand) -> None:
    await _change(s, c, None)


async def _change(s: ImapSession, c: cmd.AclCommand, change: Any) -> None:
    identifier = c.identifier.decode("utf-8", "replace")
    if identifier.startswith("-"):
        s.done(c, "NO", "negative rights are not supported", "CANNOT")
        return
    place = await _target(s, c, c.mailbox, "a")
    if place is None:
        return
    acl = s.ctx.store.acl
    try:
        ident = await s.io(acl.check_identifier, place.postoffice, identifier)
        if ident.lower() == place.mailbox.lower():
            s.done(c, "NO", f"{ident} owns {mailboxes.to_imap(place.name)!r} and always has "
                   "every right", "CANNOT")
            return
        if change is None:
            await s.io(acl.delete_rights, *place.key, ident)
        else:
            current = await s.io(acl.acl, *place.key)
            have = next((r for k, r in current.items() if k.lower() == ident.lower()), "")
            await s.io(acl.set_rights, *place.key, ident, change(have))
    except AclError as exc:
        s.done(c, "NO", exc.message, "CANNOT")
        return
    s.done(c, "OK", f"{c.name} completed")


async def getacl(s: ImapSession, c: cmd.MailboxCommand) -> None:
    place = await _target(s, c, c.mailbox, "a")
    if place is None:
        return
    entries = await s.io(s.ctx.store.acl.acl, *place.key)
    pairs = b"".join(b" " + wire.astring(k) + b" " + wire.astring(shown(v))
                     for k, v in entries.items())
    s.send(wire.untagged(b"ACL " + _mailbox(s, place) + pairs))
    s.done(c, "OK", "GETACL completed")


async def listrights(s: ImapSession, c: cmd.AclCommand) -> None:
    place = await _target(s, c, c.mailbox, "a")
    if place is None:
        return
    identifier = c.identifier.decode("utf-8", "replace")
    try:
        ident = await s.io(s.ctx.store.acl.check_identifier, place.postoffice, identifier)
    except AclError as exc:
        s.done(c, "NO", exc.message, "CANNOT")
        return
    if ident.lower() == place.mailbox.lower():       # the owner of a personal folder
        required, optional = shown(ALL_RIGHTS), []
    else:
        required, optional = "", [*RIGHTS, "c", "d"]
    s.send(wire.untagged(b"LISTRIGHTS " + _mailbox(s, place) + b" " + wire.astring(ident)
                         + b" " + wire.astring(required)
                         + b"".join(b" " + r.encode() for r in optional)))
    s.done(c, "OK", "LISTRIGHTS completed")


async def myrights(s: ImapSession, c: cmd.MailboxCommand) -> None:
    place = await _target(s, c, c.mailbox, "any")
    if place is None:
        return
    have = await rights_of(s, place)
    s.send(wire.untagged(b"MYRIGHTS " + _mailbox(s, place) + b" " + wire.astring(shown(have))))
    s.done(c, "OK", "MYRIGHTS completed")


HANDLERS: dict[str, Any] = {
    "SETACL": setacl, "DELETEACL": deleteacl, "GETACL": getacl, "LISTRIGHTS": listrights,
    "MYRIGHTS": myrights,
}
