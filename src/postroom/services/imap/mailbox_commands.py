"""Commands of the authenticated state (RFC 3501 §6.3, RFC 9051 §6.3): SELECT, EXAMINE,
CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST (LIST-EXTENDED RFC 5258,
SPECIAL-USE RFC 6154, LIST-STATUS RFC 5819, CHILDREN RFC 3348), LSUB, XLIST (manual
6.3.3.2 option), NAMESPACE (RFC 2342), STATUS (STATUS=SIZE RFC 8438), APPEND (UIDPLUS
RFC 4315, MULTIAPPEND RFC 3502, APPENDLIMIT RFC 7889), GETQUOTAROOT / GETQUOTA (RFC 9208,
the mailbox quota of manual 5.5), IDLE (RFC 2177).

Errors name the mailbox and carry the RFC 5530 response code a client can act on:
``NONEXISTENT``, ``ALREADYEXISTS``, ``CANNOT`` (invalid name), ``OVERQUOTA``,
``TRYCREATE`` (APPEND/COPY into a missing mailbox), ``TOOBIG``.

Every mailbox name goes through :mod:`.places` first: personal folders are the
user's own, ``Public Folders/...`` the post office's public folders (RFC 2342 shared
namespace, manual 6.3.6.4), ``Other Users/<mailbox>/...`` what other mailboxes of the
post office shared (RFC 2342 other users' namespace), with the rights of RFC 4314 §4
enforced: SELECT, EXAMINE and STATUS need ``r``, APPEND ``i`` (flags the user may not
set are dropped), LIST shows only folders with ``l``; CREATE, DELETE, RENAME and
SUBSCRIBE of those folders are in :mod:`.shared_commands`. A missing right is
``NO [NOPERM]`` naming it, or ``NONEXISTENT`` when the user may not even see the
folder. A selection without any of ``s w t e`` is read-only; PERMANENTFLAGS lists
only the flags the user may change.

Known limits: public and other users' folders have no quota root for the user
(GETQUOTAROOT names none).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from postroom.services.imap import commands as cmd
from postroom.services.imap import mailboxes, wire
from postroom.services.imap.mailboxes import SEPARATOR
from postroom.services.imap.places import (
    OTHERS,
    PUBLIC,
    ROOT,
    Place,
    denied,
    folder_exists,
    folder_info,
    place_of,
    public_enabled,
    rights_of,
    visible_folders,
)
from postroom.services.imap.selected import Recent, SelectedFolder
from postroom.services.imap.session import State
from postroom.store.messages import (
    CLAIM_ALL,
    AppendResult,
    FolderInfo,
    MessageInfo,
    MessageStoreError,
    QuotaExceeded,
    check_flags,
)

if TYPE_CHECKING:
    from concurrent.futures import Future

    from postroom.services.imap.session import ImapSession

SYSTEM_FLAGS = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"


async def folders(s: ImapSession) -> list[FolderInfo]:
    return await s.io(s.ctx.store.messages.list_folders, *s.owner)


def find(infos: list[FolderInfo], name: str) -> FolderInfo | None:
    return next((f for f in infos if f.name == name), None)


async def select(s: ImapSession, c: cmd.Select) -> None:
    """SELECT / EXAMINE with the CONDSTORE and QRESYNC parameters (RFC 7162; the
    resynchronisation itself is :mod:`.qresync`); ``OK [CLOSED]`` first when they
    replace a selected mailbox (RFC 7162 §3.2.11, RFC 9051 §6.3.2)."""
    if c.qresync is not None and not s.flags.qresync:
        # RFC 7162 3.2.5: BAD, and the selected mailbox (if any) stays selected.
        s.done(c, "BAD", f"{c.name} with QRESYNC needs ENABLE QRESYNC first")
        return
    if s.selected is not None:
        s.select(None)
        s.send(wire.status("OK", "previous mailbox closed", "CLOSED"))
    place = await place_of(s, c, c.mailbox)
    if place is None:
        return
    name = place.folder
    have = await rights_of(s, place)
    if not place.root and denied(s, c, place, have, "r"):
        return
    index = None if place.root else await s.folder_index(
        place.key, mailboxes.folder_state(s.ctx.store, *place.key))
    if index is None:
        s.done(c, "NO", f"no mailbox {mailboxes.to_imap(place.name)!r}", "NONEXISTENT")
        return
    readonly = c.name == "EXAMINE" or not any(r in have for r in "swte")
    uidvalidity, uidnext, highestmodseq = index.state
    folder = SelectedFolder(name, readonly, uidvalidity, uidnext, highestmodseq,
                            folder_id=index.folder_id)
    folder.load(index)
    s.select(folder, place)        # from here on ``s.where`` is the folder's owner
    mark = await s.recent_above(name, uidvalidity, folder.uids[-1] if folder.uids else 0,
                                readonly)
    folder.recent = Recent(folder.uids, mark)
    if c.condstore:
        s.flags.condstore = True
    out = [wire.untagged(f"FLAGS ({SYSTEM_FLAGS})"),
           wire.untagged(f"{folder.exists} EXISTS"),
           wire.untagged(f"{len(folder.recent)} RECENT"),
           wire.status("OK", "permanent flags", "PERMANENTFLAGS (" + (
               "" if readonly else permanent_flags(have)) + ")")]
    unseen = index.first_unseen()
    if unseen is not None:
        out.append(wire.status("OK", f"message {unseen} is the first unseen",
                               f"UNSEEN {unseen}"))
    out += [wire.status("OK", "UIDs valid", f"UIDVALIDITY {uidvalidity}"),
            wire.status("OK", "predicted next UID", f"UIDNEXT {uidnext}"),
            wire.status("OK", "highest", f"HIGHESTMODSEQ {highestmodseq}")]
    if c.qresync is not None and c.qresync.uidvalidity == uidvalidity:
        from postroom.services.imap.qresync import resynchronise
        out += await resynchronise(s, folder, c.qresync)
    s.send(out)
    s.done(c, "OK", f"{c.name} completed", "READ-ONLY" if readonly else "READ-WRITE")


def permanent_flags(have: str) -> str:
    """The flags a user with rights ``have`` may change (RFC 4314 §4: ``s`` \\Seen,
    ``t`` \\Deleted, ``w`` the others and new keywords)."""
    flags = ["\\Answered", "\\Flagged"] if "w" in have else []
    flags += ["\\Deleted"] if "t" in have else []
    flags += ["\\Seen"] if "s" in have else []
    flags += ["\\Draft", "\\*"] if "w" in have else []
    return " ".join(flags)


def allowed_flags(flags: tuple[str, ...] | list[str], have: str) -> list[str]:
    """The flags of an APPEND (or COPY) the user may set; the others are dropped."""
    need = {"\\seen": "s", "\\deleted": "t"}
    return [f for f in flags if need.get(f.lower(), "w") in have]


async def create(s: ImapSession, c: cmd.MailboxCommand) -> None:
    from postroom.services.imap import shared_commands
    place = await place_of(s, c, c.mailbox)
    if place is None:
        return
    if not place.personal:
        await shared_commands.create(s, c, place)
        return
    name = place.folder
    if name == mailboxes.INBOX:
        s.done(c, "NO", "INBOX always exists", "ALREADYEXISTS")
        return
    existing = {f.name for f in await folders(s)}
    if name in existing:
        s.done(c, "NO", f"mailbox {mailboxes.to_imap(name)!r} already exists", "ALREADYEXISTS")
        return
    parts = name.split(SEPARATOR)
    try:
        for i in range(1, len(parts) + 1):      # create missing parents too (RFC 3501 §6.3.3)
            path = SEPARATOR.join(parts[:i])
            if path not in existing:
                await s.io(s.ctx.store.messages.create_folder, *s.owner, path)
                await s.io(mailboxes.set_subscribed, s.ctx.store, *s.owner, path, True)
    except MessageStoreError as exc:
        s.done(c, "NO", f"cannot create {mailboxes.to_imap(name)!r}: {exc.message}", "CANNOT")
        return
    s.done(c, "OK", "CREATE completed")


async def delete(s: ImapSession, c: cmd.MailboxCommand) -> None:
    from postroom.services.imap import shared_commands
    place = await place_of(s, c, c.mailbox)
    if place is None:
        return
    if not place.personal:
        await shared_commands.delete(s, c, place)
        return
    name = place.folder
    infos = await folders(s)
    if find(infos, name) is None:
        s.done(c, "NO", f"no mailbox {mailboxes.to_imap(name)!r}", "NONEXISTENT")
        return
    if any(f.name.startswith(name + SEPARATOR) for f in infos):
        s.done(c, "NO", f"mailbox {mailboxes.to_imap(name)!r} has children", "INUSE")
        return
    try:
        await s.io(s.ctx.store.messages.delete_folder, *s.owner, name)
    except MessageStoreError as exc:
        s.done(c, "NO", exc.message, "CANNOT")
        return
    if s.selected is not None and s.selected.folder == name and s.where == s.owner:
        s.select(None)
    s.done(c, "OK", "DELETE completed")


async def rename(s: ImapSession, c: cmd.Rename) -> None:
    from postroom.services.imap import shared_commands
    old_place = await place_of(s, c, c.mailbox)
    new_place = old_place and await place_of(s, c, c.new_name)
    if old_place is None or new_place is None:
        return
    if not old_place.personal or not new_place.personal:
        await shared_commands.rename(s, c, old_place, new_place)
        return
    old, new = old_place.folder, new_place.folder
    infos = await folders(s)
    if find(infos, old) is None:
        s.done(c, "NO", f"no mailbox {mailboxes.to_imap(old)!r}", "NONEXISTENT")
        return
    if find(infos, new) is not None:
        s.done(c, "NO", f"mailbox {mailboxes.to_imap(new)!r} already exists", "ALREADYEXISTS")
        return
    try:
        if old == mailboxes.INBOX:          # RFC 3501 §6.3.5: move the messages, keep INBOX
            await s.io(s.ctx.store.messages.create_folder, *s.owner, new)
            uids = [m.uid for m in await s.io(s.ctx.store.messages.list_messages, *s.owner,
                                              old)]
            if uids:
                await s.io(s.ctx.store.messages.move, *s.owner, old, uids, new)
        else:
            await s.io(s.ctx.store.messages.rename_folder, *s.owner, old, new)
    except MessageStoreError as exc:
        s.done(c, "NO", exc.message, "CANNOT")
        return
    s.done(c, "OK", "RENAME completed")


async def subscribe(s: ImapSession, c: cmd.MailboxCommand) -> None:
    from postroom.services.imap import shared_commands
    place = await place_of(s, c, c.mailbox)
    if place is None:
        return
    if not place.personal:
        await shared_commands.subscribe(s, c, place)
        return
    name = place.folder
    try:
        await s.io(mailboxes.set_subscribed, s.ctx.store, *s.owner, name,
                   c.name == "SUBSCRIBE")
    except MessageStoreError:
        s.done(c, "NO", f"no mailbox {mailboxes.to_imap(name)!r}", "NONEXISTENT")
        return
    s.done(c, "OK", f"{c.name} completed")


def _attributes(info: FolderInfo, infos: list[FolderInfo], xlist: bool) -> list[str]:
    attrs = []
    children = any(f.name.startswith(info.name + SEPARATOR) for f in infos)
    attrs.append("\\HasChildren" if children else "\\HasNoChildren")
    if info.special_use:
        attrs.append(info.special_use)
    if xlist and info.name == mailboxes.INBOX:
        attrs.append("\\Inbox")
    if info.subscribed:
        attrs.append("\\Subscribed")
    return attrs


async def list_(s: ImapSession, c: cmd.ListCommand) -> None:
    reference = c.reference.decode("utf-8", "replace")
    patterns = [p.decode("utf-8", "replace") for p in c.patterns]
    name = c.name
    if name == "LIST" and patterns == [""] and not c.select_options:
        s.send(wire.untagged(f'LIST (\\Noselect) "{SEPARATOR}" ""'))
        s.done(c, "OK", "LIST completed")
        return
    entries = await s.io(visible_folders, s)
    infos = [info for _, info, _ in entries]
    subscribed_only = name == "LSUB" or "SUBSCRIBED" in c.select_options
    special_only = "SPECIAL-USE" in c.select_options
    returns = set(c.return_options)
    out = []
    for place, info, have in entries:
        if place.kind == ROOT and (name == "LSUB" or subscribed_only or special_only):
            continue
        imap_name = mailboxes.encode(info.name, s.flags.utf8)
        if not any(mailboxes.matches(imap_name, reference, p) for p in patterns):
            continue
        if subscribed_only and not info.subscribed:
            continue
        if special_only and not info.special_use:
            continue
        attrs = _attributes(info, infos, name == "XLIST")
        if place.kind == ROOT:                 # a namespace root (RFC 2342)
            attrs = ["\\Noselect", attrs[0]]
        if name == "LSUB" or ("SUBSCRIBED" not in c.select_options and
                              "SUBSCRIBED" not in returns):
            attrs = [a for a in attrs if a != "\\Subscribed"]
        if name == "LIST" and c.select_options == () and not returns and \
                info.special_use and "SPECIAL-USE" not in returns:
            pass                              # RFC 6154 §3: shown by default
        out.append(wire.untagged(f"{name} ({' '.join(attrs)}) \"{SEPARATOR}\" ".encode()
                                 + wire.astring(imap_name)))
        if "STATUS" in returns and "r" in have:        # RFC 5819 §2: not without rights
            out.append(_status_line(s, place, info, c.status_items, imap_name))
    s.send(out)
    s.done(c, "OK", f"{name} completed")


def _status_line(s: ImapSession, place: Place, info: FolderInfo, items: tuple[str, ...],
                 imap_name: str, unseen: int | None = None) -> bytes:
    values = {"MESSAGES": info.messages, "UIDNEXT": info.uidnext,
              "UIDVALIDITY": info.uidvalidity, "SIZE": info.size,
              "HIGHESTMODSEQ": info.highestmodseq, "RECENT": info.recent, "DELETED": None,
              "UNSEEN": unseen}
    parts = []
    for item in items:
        value = values.get(item)
        if item == "UNSEEN" and value is None:
            value = sum(1 for m in s.ctx.store.messages.list_messages(*place.key)
                        if "\\Seen" not in m.flags)
        if item == "DELETED":
            value = sum(1 for m in s.ctx.store.messages.list_messages(*place.key)
                        if "\\Deleted" in m.flags)
        parts.append(f"{item} {value}")
    return wire.untagged(b"STATUS " + wire.astring(imap_name) + f" ({' '.join(parts)})".encode())


STATUS_ITEMS = frozenset({"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "SIZE",
                          "HIGHESTMODSEQ", "RECENT", "DELETED"})


async def status(s: ImapSession, c: cmd.Status) -> None:
    unknown = [i for i in c.items if i not in STATUS_ITEMS]
    if unknown:
        s.done(c, "BAD", f"unknown STATUS item {unknown[0]}")
        return
    place = await place_of(s, c, c.mailbox)
    if place is None:
        return
    if not place.personal and denied(s, c, place, await rights_of(s, place), "r"):
        return
    info = await s.io(folder_info, s.ctx.store, place)
    if info is None:
        s.done(c, "NO", f"no mailbox {mailboxes.to_imap(place.name)!r}", "NONEXISTENT")
        return
    s.send(await s.io(_status_line, s, place, info, c.items,
                      mailboxes.encode(place.name, s.flags.utf8)))
    s.done(c, "OK", "STATUS completed")


async def append(s: ImapSession, c: cmd.Append) -> None:
    place = await place_of(s, c, c.mailbox)
    if place is None:
        return
    if not folder_exists(s.ctx.store, place):
        s.done(c, "NO", f"no mailbox {mailboxes.to_imap(place.name)!r}", "TRYCREATE")
        return
    have = await rights_of(s, place)
    if denied(s, c, place, have, "i", "TRYCREATE"):
        return
    results = []
    stored: list[tuple[list[str], float]] = []
    refusal: tuple[str, str] | None = None
    into_selected = s.selects(place)
    claim = into_selected and s.selected is not None and not s.selected.readonly
    claimed: Future[int] | None = None
    try:
        for n, message in enumerate(c.messages, 1):
            flags = allowed_flags([f for f in message.flags if f != "\\Recent"], have)
            date = message.date.timestamp() if message.date else time.time()
            future = s.ctx.store.messages.append_async(*place.key, message.data, flags,
                                                       date)
            if claim and n == len(c.messages):
                # Into the selected folder: this session is the first told of the
                # message, so its \Recent claim goes to the writer with it (one
                # commit, not a second one from the sync below).
                claimed = s.ctx.store.messages.claim_recent_async(*place.key, CLAIM_ALL)
            results.append(await asyncio.wrap_future(future))
            stored.append((flags, date))
    except QuotaExceeded as exc:
        refusal = (f"mailbox is full: {exc.message}", "OVERQUOTA")
    except MessageStoreError as exc:
        refusal = (f"{exc.field}: {exc.message}", "CANNOT")
    finally:
        # Spooled messages are in the store now (copied) or refused: their files go
        # before the answer (the session's own clean-up after the command is the net).
        for message in c.messages:
            if isinstance(message.data, Path):
                message.data.unlink(missing_ok=True)
    state = _index_appended(s, place, results, stored)
    headers = s.ctx.headers
    if headers is not None:
        for message, result in zip(c.messages, results, strict=False):
            if result.path and isinstance(message.data, bytes):
                headers.add(result.path, message.data)
    if claimed is not None:
        if refusal is None:
            await s.claimed_with_append(claimed, results[-1].uid)
        else:
            claimed.cancel()
    if refusal is not None:
        s.done(c, "NO", *refusal)
        return
    await s.sync(state=state if into_selected else None)
    uids = ",".join(str(r.uid) for r in results)
    s.done(c, "OK", "APPEND completed", f"APPENDUID {results[0].uidvalidity} {uids}")


def _index_appended(s: ImapSession, place: Place, results: list[AppendResult],
                    stored: list[tuple[list[str], float]]) -> tuple[int, int, int] | None:
    """Tell the shared folder index of the messages just appended, as the store holds
    them (see :meth:`.folder_index.FolderIndexes.advance`), so that the sync after the
    APPEND reads no message rows; the folder's state after them when the index took
    them all (the sync starts from it, as after a STORE)."""
    indexes = s.ctx.indexes
    state = None
    for result, (flags, date) in zip(results, stored, strict=True):
        index = indexes.current(place.key)
        if result.duplicate or index is None or index.state[0] != result.uidvalidity:
            return None
        message = MessageInfo(result.uid, result.size, check_flags(flags), date,
                              result.modseq, result.path)
        state = (result.uidvalidity, result.uid + 1, result.modseq)
        if not indexes.advance(place.key, state, {result.uid: message}):
            return None
    return state


async def namespace(s: ImapSession, c: cmd.Command) -> None:
    """RFC 2342: personal, other users (what others shared with SETACL), shared (the
    public folders, when the post office has them)."""
    shared = f'(("{PUBLIC}{SEPARATOR}" "{SEPARATOR}"))' \
        if await s.io(public_enabled, s.ctx.store, s.owner[0]) else "NIL"
    s.send(wire.untagged(f'NAMESPACE (("" "{SEPARATOR}")) (("{OTHERS}{SEPARATOR}" '
                         f'"{SEPARATOR}")) {shared}'))
    s.done(c, "OK", "NAMESPACE completed")


def _quota_line(s: ImapSession) -> bytes:
    box = s.ctx.store.directory.get_mailbox(*s.owner)
    used, _ = s.ctx.store.messages.usage(*s.owner)
    if box.quota_bytes is None:
        return wire.untagged('QUOTA "" ()')
    return wire.untagged(f'QUOTA "" (STORAGE {(used + 1023) // 1024} '
                         f'{box.quota_bytes // 1024})')


async def getquotaroot(s: ImapSession, c: cmd.MailboxCommand) -> None:
    place = await place_of(s, c, c.mailbox)
    if place is None:
        return
    have = await rights_of(s, place)
    if not folder_exists(s.ctx.store, place) or not have:
        s.done(c, "NO", f"no mailbox {mailboxes.to_imap(place.name)!r}", "NONEXISTENT")
        return
    line = b"QUOTAROOT " + wire.astring(mailboxes.encode(place.name, s.flags.utf8))
    if not place.personal:               # public folders count against no quota
        s.send(wire.untagged(line))
    else:
        s.send([wire.untagged(line + b' ""'), await s.io(_quota_line, s)])
    s.done(c, "OK", "GETQUOTAROOT completed")


async def getquota(s: ImapSession, c: cmd.GetQuota) -> None:
    if c.root != b"":
        s.done(c, "NO", "no such quota root", "NONEXISTENT")
        return
    s.send(await s.io(_quota_line, s))
    s.done(c, "OK", "GETQUOTA completed")


class IdleWakeup:
    """What an IDLE session waits on: set by the folder watch (new mail, flags,
    expunges) or by the client's next line. One future per wait, resolved directly,
    so when a delivery wakes thousands of sessions each resumes in one step (no
    ``asyncio.wait`` and event-waiter tasks in between)."""

    __slots__ = ("_future", "flagged")

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None
        self.flagged = False

    def set(self, _done: object = None) -> None:
        """The watch calls this (and a finished read, through its done-callback)."""
        if _done is None:
            self.flagged = True
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)

    async def wait(self, read: asyncio.Task[bytes]) -> None:
        if self.flagged or read.done():
            return
        self._future = asyncio.get_running_loop().create_future()
        read.add_done_callback(self.set)
        try:
            await self._future
        finally:
            read.remove_done_callback(self.set)
            self._future = None


async def idle(s: ImapSession, c: cmd.Command) -> None:
    """RFC 2177: ``+ idling``; changes as untagged responses until ``DONE``."""
    from postroom.services.imap.framing import CLOSED, RawLine
    s.send(wire.continuation("idling"))
    s.log.command(c, "+ idling", 0, 0)
    folder = s.selected
    wake = IdleWakeup()
    key = (*s.where, folder.folder) if folder else None
    if key is not None:
        s.ctx.watch.add(key, wake)
    s.framing.expect_line(True)
    woken = False
    try:
        while True:
            # Woken by the watch: it has just read the folder's state for every session.
            await s.sync(state=s.ctx.watch.state(key) if woken and key is not None else None)
            await s.conn.drain()
            event = s.framing.next_event()
            if isinstance(event, RawLine):
                break
            if event is CLOSED:
                s.state = State.LOGOUT
                return
            read = s.start_read()
            await wake.wait(read)
            woken, wake.flagged = wake.flagged, False
            if read.done():
                s._read_task = None
                s.framing.receive_data(s._inflate(read.result()))
    except TimeoutError:
        s.state = State.LOGOUT
        s.send(wire.status("BYE", "idle timeout, closing"))
        return
    finally:
        s.framing.expect_line(False)
        if key is not None:
            s.ctx.watch.remove(key, wake)
    if event.data.strip().upper() != b"DONE":
        s.done(c, "BAD", "expected DONE")
        return
    s.done(c, "OK", "IDLE terminated")


HANDLERS: dict[str, Any] = {
    "SELECT": select, "EXAMINE": select, "CREATE": create, "DELETE": delete,
    "RENAME": rename, "SUBSCRIBE": subscribe, "UNSUBSCRIBE": subscribe, "LIST": list_,
    "LSUB": list_, "XLIST": list_, "STATUS": status, "APPEND": append,
    "NAMESPACE": namespace, "GETQUOTAROOT": getquotaroot, "GETQUOTA": getquota,
    "IDLE": idle,
}
