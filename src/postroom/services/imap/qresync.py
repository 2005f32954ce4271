"""Quick mailbox resynchronisation (QRESYNC, RFC 7162 §3.2): what a client that
comes back with the UIDVALIDITY and mod-sequence it last knew is told.

``SELECT mailbox (QRESYNC (uidvalidity modseq [known-uids] [(seqs uids)]))`` with a
matching UIDVALIDITY answers, after the usual SELECT responses, one
``* VANISHED (EARLIER) uid-set`` for the messages removed since ``modseq`` (only
those among ``known-uids`` when given) and a ``* n FETCH (UID u FLAGS (...) MODSEQ
(m))`` for every message changed since (likewise limited), so the client needs no
other round trip (§3.2.5). ``UID FETCH set items (CHANGEDSINCE m VANISHED)`` gives the
same ``VANISHED (EARLIER)`` for the UIDs of ``set`` before its FETCH responses
(§3.2.6). What was removed comes from the message store's records
(:meth:`~postroom.store.messages.MessageStore.expunged_since`).

Every UID reported here is one the session no longer holds: one expunged while the
SELECT was being answered is left to the next ``VANISHED`` (without EARLIER), which
lowers the client's message count, so the client never counts a removal twice.

Known limits: the message sequence match data is checked but not used: the store
keeps a record of every removal, so the server never has to guess which UIDs are
gone (for removals from before those records, the store answers with every absent
UID, a superset RFC 7162 allows).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import TYPE_CHECKING

from postroom.services.imap import commands as cmd
from postroom.services.imap import wire
from postroom.services.imap.search import SequenceSet
from postroom.services.imap.selected import SelectedFolder

if TYPE_CHECKING:
    from postroom.services.imap.session import ImapSession

Ranges = Sequence[tuple[int, int]]


async def vanished_earlier(s: ImapSession, folder: SelectedFolder, since: int,
                           within: Ranges | None) -> list[bytes]:
    """``* VANISHED (EARLIER) uid-set`` for what left the folder after mod-sequence
    ``since`` (within the ``within`` UID ranges, if given); nothing if nothing did."""
    found = await s.io(s.ctx.store.messages.expunged_since, *s.where, folder.folder, since,
                       None if within is None else list(within))
    found = without(found, folder.uids)
    if not found:
        return []
    return [wire.untagged(f"VANISHED (EARLIER) {SequenceSet(tuple(found))}")]


async def resynchronise(s: ImapSession, folder: SelectedFolder, params: cmd.Qresync,
                        ) -> list[bytes]:
    """The responses of RFC 7162 §3.2.5 for a SELECT whose UIDVALIDITY matched."""
    known = None
    if params.known_uids is not None:
        known = SequenceSet.parse(params.known_uids, 1)
    out = await vanished_earlier(s, folder, params.modseq,
                                 None if known is None else known.ranges)
    info, since = folder.info, params.modseq
    for n, uid in enumerate(folder.uids, 1):
        m = info[uid]
        if m.modseq > since and (known is None or uid in known):
            out.append(wire.untagged(
                f"{n} FETCH (UID {uid} FLAGS ({' '.join(folder.flags(uid))}) "
                f"MODSEQ ({m.modseq}))"))
    return out


def without(ranges: Ranges, present: list[int]) -> list[tuple[int, int]]:
    """``ranges`` less the UIDs of ``present`` (sorted): the session's own messages."""
    out: list[tuple[int, int]] = []
    for lo, hi in ranges:
        i = bisect_left(present, lo)
        while i < len(present) and present[i] <= hi:
            if present[i] > lo:
                out.append((lo, present[i] - 1))
            lo = present[i] + 1
            i += 1
        if lo <= hi:
            out.append((lo, hi))
    return out
