"""The selected mailbox as one session sees it (RFC 3501 §2.3.1.2, §7.4.1; RFC 9051 §7.5.1).

Message sequence numbers belong to the session: :class:`SelectedFolder` keeps the UIDs
the client was told of, in order, with their flags and mod-sequences. :meth:`sync`
compares a fresh listing from the store with that list and returns the untagged
responses that bring the client up to date, in an order that keeps numbers right:
``EXPUNGE`` for each vanished message from the highest number down (each number is
the one the client holds at that moment) or, once the client enabled QRESYNC, one
``VANISHED uid-set`` (RFC 7162 §3.2.10), then ``EXISTS`` for new messages (and
``RECENT``), then ``FETCH (UID FLAGS ...)`` for changed flags (with ``MODSEQ`` once
CONDSTORE is on). During FETCH, STORE and SEARCH by sequence number expunges are held
back (RFC 3501 §7.4.1) and announced at the next command that allows them; a QRESYNC
client meanwhile ends each command with ``OK [HIGHESTMODSEQ n]``, ``n`` the
:attr:`SelectedFolder.held_modseq` below the held-back expunges, so a
resynchronisation from the highest MODSEQ it saw cannot miss them (RFC 7162 §3.2).

Known limits: the listing is the folder's whole index, shared by the sessions of the
service (:mod:`.folder_index`); the cheap ``folder_state`` check (UIDNEXT,
HIGHESTMODSEQ) skips it when nothing changed.
``\\Recent`` is shared through the store (RFC 3501 §2.3.2): the session that claims
a message first (:meth:`.session.ImapSession.recent_above`) has it in :attr:`recent`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from postroom.services.imap import wire
from postroom.services.imap.search import SequenceSet
from postroom.store.messages import MessageInfo

if TYPE_CHECKING:
    from postroom.store.backends.sqlite.folder_index import FolderIndex


class Recent:
    """The UIDs that are \\Recent to a session: those of its view above the store's
    recent mark at SELECT (the top of its UID list: claims only rise, RFC 3501
    §2.3.2), then those added as new mail is claimed, less those expunged. Kept as a
    range while it is one: the first SELECT of a folder of 100,000 new messages made a
    set of all of them (7 ms here)."""

    def __init__(self, uids: list[int] | None = None, mark: int = 0) -> None:
        self._low, self._high = mark, (uids[-1] if uids else mark)
        self._count = len(uids) - bisect.bisect_right(uids, mark) if uids else 0
        self._added: set[int] = set()
        self._gone: set[int] = set()

    def __contains__(self, uid: object) -> bool:
        if isinstance(uid, int) and self._low < uid <= self._high:
            return uid not in self._gone
        return uid in self._added

    def __len__(self) -> int:
        return self._count - len(self._gone) + len(self._added)

    def add(self, uid: int) -> None:
        """A new message, above every UID of the view (so above the range)."""
        self._added.add(uid)

    def discard(self, uid: int) -> None:
        if self._low < uid <= self._high:
            self._gone.add(uid)
        else:
            self._added.discard(uid)


@dataclass
class SelectedFolder:
    folder: str               # store name
    readonly: bool
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    uids: list[int] = field(default_factory=list)
    recent: Recent = field(default_factory=Recent)
    pending_expunge: bool = False
    held_modseq: int = 0      # HIGHESTMODSEQ when expunges were first held back
    saved: list[int] = field(default_factory=list)   # SEARCHRES ``$``, as UIDs (RFC 5182)
    folder_id: int = 0        # the store's row: each command's change check reads it by id
    _source: FolderIndex | None = field(default=None, init=False, repr=False)
    _own: dict[int, MessageInfo] | None = field(default_factory=dict, init=False,
                                                repr=False)

    def load(self, index: FolderIndex) -> None:
        """Start from a folder index: its UIDs copied, its info shared until this view
        changes (:meth:`mine`). A SELECT then costs neither a copy of 100,000 entries
        nor, for an index read from a snapshot, making them (:mod:`.folder_index`)."""
        self.uids = list(index.uids)
        self._source, self._own = index, None

    @property
    def info(self) -> Mapping[int, MessageInfo]:
        """UID -> info of the messages this view holds (read-only: :meth:`mine`)."""
        own = self._own
        if own is not None:
            return own
        assert self._source is not None
        return MappingProxyType(self._source.info)

    def mine(self) -> dict[int, MessageInfo]:
        """The view's own info mapping, to change (copied from the index the first
        time: the index is shared and immutable)."""
        own = self._own
        if own is None:
            assert self._source is not None
            own = self._own = dict(self._source.info)
            self._source = None
        return own

    def seq(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    @property
    def exists(self) -> int:
        return len(self.uids)

    def resolve(self, sequence: str, uid: bool) -> list[int]:
        """The UIDs a sequence set names (in UID order); RFC 9051 §9 ``*`` semantics."""
        if sequence == "$":
            return self.saved_uids()
        if not uid and sequence.isdigit():      # one message, the commonest set
            n = int(sequence)
            if not 0 < n <= len(self.uids):
                raise ValueError(f"message number {n} does not exist")
            return [self.uids[n - 1]]
        if uid:
            largest = self.uids[-1] if self.uids else 0
            wanted = SequenceSet.parse(sequence, largest)
            # A UID range names the UIDs that exist within it.
            out: list[int] = []
            for lo, hi in wanted.ranges:
                out += self.uids[bisect.bisect_left(self.uids, lo):
                                 bisect.bisect_right(self.uids, hi)]
            return out
        wanted = SequenceSet.parse(sequence, len(self.uids))
        if wanted.ranges and wanted.ranges[-1][1] > len(self.uids):
            raise ValueError(f"message number {wanted.ranges[-1][1]} does not exist")
        return [self.uids[n - 1] for n in wanted.values(len(self.uids))]

    def saved_uids(self) -> list[int]:
        """``$``: the saved search result without the messages expunged since (UIDs are
        never reused, so leaving them out here is removing them, RFC 5182 §2.1)."""
        info = self.info
        self.saved = [u for u in self.saved if u in info]
        return self.saved

    def sync(self, current: Mapping[int, MessageInfo], *, expunge: bool, condstore: bool,
             qresync: bool = False, quiet: set[int] = frozenset(),
             state: tuple[int, int, int] | None = None,
             recent_above: int = 0, touched: list[int] | None = None) -> list[bytes]:
        """Untagged responses for what changed (``current``: UID -> info of every
        message now in the folder); the view is updated to match. New messages above
        UID ``recent_above`` (the store's recent mark before this session claimed them)
        are \\Recent to this session.

        ``touched``: the only UIDs that can differ from the view (the shared index's log
        since this view's HIGHESTMODSEQ, :meth:`.folder_index.FolderIndex.touched_since`):
        then only those are compared, not the whole folder. Not used while expunges are
        held back (those are not in the log past this view's HIGHESTMODSEQ)."""
        out: list[bytes] = []
        if touched is not None and self.pending_expunge:
            touched = None
        if touched is None:
            gone = [u for u in self.uids if u not in current]
            candidates: Iterable[int] = current
        else:
            mine, there = self.info, current
            candidates = sorted({u for u in touched if u in there})
            gone = sorted({u for u in touched if u in mine and u not in there})
        if gone:
            if expunge and qresync:
                out.append(wire.untagged(f"VANISHED {SequenceSet.of(gone)}"))
                self.forget(gone)
                self.pending_expunge = False
            elif expunge:
                for uid in reversed(gone):
                    n = self.seq(uid)
                    assert n is not None
                    out.append(wire.untagged(f"{n} EXPUNGE"))
                    del self.uids[n - 1]
                    self.mine().pop(uid, None)
                    self.recent.discard(uid)
                self.pending_expunge = False
            else:
                if not self.pending_expunge:
                    self.held_modseq = self.highestmodseq
                self.pending_expunge = True
        else:
            self.pending_expunge = False
        last = self.uids[-1] if self.uids else 0
        new = sorted(u for u in candidates if u > last and u not in self.info)
        info = self.info
        for uid in candidates:
            message = current[uid]
            old = info.get(uid)
            if old is None or old is message:
                continue
            if old.flags != message.flags or old.modseq != message.modseq:
                self.mine()[uid] = message
                if old.flags != message.flags and uid not in quiet:
                    n = self.seq(uid)
                    extra = f" MODSEQ ({message.modseq})" if condstore else ""
                    out.append(wire.untagged(
                        f"{n} FETCH (UID {uid} FLAGS ({' '.join(self.flags(uid))}){extra})"))
        if new:
            for uid in new:
                self.uids.append(uid)
                self.mine()[uid] = current[uid]
                if uid > recent_above:
                    self.recent.add(uid)
            out.append(wire.untagged(f"{len(self.uids)} EXISTS"))
            out.append(wire.untagged(f"{len(self.recent)} RECENT"))
        if state is not None:
            _, self.uidnext, self.highestmodseq = state
        return out

    def forget(self, gone: list[int]) -> None:
        """Drop expunged UIDs from the view (all at once: one pass over the list)."""
        doomed = set(gone)
        self.uids = [u for u in self.uids if u not in doomed]
        info = self.mine()
        for uid in doomed:
            info.pop(uid, None)
            self.recent.discard(uid)

    def flags(self, uid: int) -> list[str]:
        flags = list(self.info[uid].flags)
        if uid in self.recent:
            flags.append("\\Recent")
        return flags
