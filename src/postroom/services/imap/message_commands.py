"""Commands of the selected state (RFC 3501 §6.4, RFC 9051 §6.4): FETCH, STORE, SEARCH
(ESEARCH RFC 4731, SEARCHRES RFC 5182 via :mod:`.search_result`), SORT and THREAD
(RFC 5256), COPY and MOVE (RFC 6851) with UIDPLUS
codes (RFC 4315), EXPUNGE, UID EXPUNGE, CLOSE, UNSELECT (RFC 3691); CONDSTORE
(RFC 7162): MODSEQ items, CHANGEDSINCE, UNCHANGEDSINCE and the MODIFIED code; QRESYNC
(RFC 7162 §3.2): ``UID FETCH ... (CHANGEDSINCE m VANISHED)`` answers ``VANISHED
(EARLIER)`` first (:mod:`.qresync`), every FETCH caused by a flag change carries the
UID, and EXPUNGE / MOVE end with ``OK [HIGHESTMODSEQ n]``.

Message content comes from :class:`.message_cache.MessageCache` (parsed once);
RFC822.SIZE is the CRLF size the POP3 service also uses (``message_crlf_size``), so it
equals the length of ``BODY[]``. Fetching a body part without .PEEK sets ``\\Seen``
(not in a read-only EXAMINE session) and reports the new FLAGS.

Numbers: sequence numbers are the session's (:class:`.selected.SelectedFolder`);
during FETCH, STORE and SEARCH by number, expunges by others are announced only at
the next command that allows it (RFC 3501 §7.4.1).

Rights (RFC 4314 §4) in a public folder (:mod:`.places`): STORE needs ``s`` to change
``\\Seen``, ``t`` for ``\\Deleted``, ``w`` for the other flags (worked out from what
the command would actually change); a body FETCH sets ``\\Seen`` only with ``s``;
EXPUNGE and UID EXPUNGE need ``e`` (CLOSE expunges only with it); COPY and MOVE need
``i`` on the target (the copies lose the flags the user may not set there), MOVE also
``t`` and ``e`` on the source. COPY and MOVE between
the user's folders and public folders go through the store in one transaction
(``target_mailbox``), charging the target mailbox.

Known limits: SEARCH with charsets other than US-ASCII and UTF-8 is refused with
BADCHARSET.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from postroom.services.imap import commands as cmd
from postroom.services.imap import mailboxes, places, search, search_result, sort, wire
from postroom.services.imap.fetch_items import FetchItem
from postroom.services.imap.mailbox_commands import allowed_flags
from postroom.services.imap.message import MessageView
from postroom.services.imap.message_cache import HeaderView
from postroom.services.imap.places import Place, denied, place_of, rights_of
from postroom.services.imap.qresync import vanished_earlier
from postroom.services.imap.search_keys import CHARSETS, resolve
from postroom.services.pop3.maildrop import crlf_sizes
from postroom.store.messages import (
    FlagMode,
    MessageInfo,
    MessageStoreError,
    QuotaExceeded,
    changed_flags,
    check_flags,
)

if TYPE_CHECKING:
    from postroom.services.imap.message_cache import HeaderCache
    from postroom.services.imap.selected import SelectedFolder
    from postroom.services.imap.session import ImapSession

_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def internal_date(ts: float) -> str:
    d = datetime.fromtimestamp(ts, UTC)
    return f'"{d.day:02d}-{_MONTHS[d.month - 1]}-{d.year} {d:%H:%M:%S} +0000"'


def _uids(s: ImapSession, c: cmd.Command, sequence: str, uid: bool) -> list[int] | None:
    assert s.selected is not None
    try:
        return s.selected.resolve(sequence, uid)
    except ValueError as exc:
        s.done(c, "BAD", f"invalid sequence set {sequence!r}: {exc}")
        return None


class Msg:
    """One message as SEARCH, SORT and THREAD see it (:class:`.search.SearchMessage`)."""

    __slots__ = ("_size", "_view", "info", "s", "seq", "uid")

    def __init__(self, s: ImapSession, seq: int, info: MessageInfo) -> None:
        self.s, self.seq, self.uid, self.info = s, seq, info.uid, info
        self._view: MessageView | None = None
        self._size: int | None = None

    @property
    def flags(self) -> tuple[str, ...]:
        assert self.s.selected is not None
        return tuple(self.s.selected.flags(self.uid))

    @property
    def internal_date(self) -> float:
        return self.info.internal_date

    @property
    def modseq(self) -> int:
        return self.info.modseq

    @property
    def size(self) -> int:
        if self._size is None:
            self._size = crlf_sizes(self.s.ctx.store, [self.info.path]).get(
                self.info.path, self.info.size)
        return self._size

    def headers(self) -> MessageView | HeaderView:
        """What SEARCH on a header field needs: the cached header block alone."""
        if self._view is not None or self.s.ctx.headers is None:
            return self.view()
        try:
            return self.s.ctx.headers.get(self.info.path)
        except FileNotFoundError:
            return self.view()

    def view(self) -> MessageView:
        if self._view is None:
            try:
                self._view = self.s.ctx.cache.get(self.info.path)
            except FileNotFoundError:
                self._view = MessageView.parse(b"")
        return self._view


# -- FETCH ------------------------------------------------------------------------------------

async def fetch(s: ImapSession, c: cmd.Fetch) -> None:
    folder = s.selected
    assert folder is not None
    if c.vanished and not s.flags.qresync:
        s.done(c, "BAD", "the VANISHED modifier needs ENABLE QRESYNC first")
        return
    uids = _uids(s, c, c.sequence, c.uid)
    if uids is None:
        return
    items = list(c.items)
    if c.uid and not any(i.name == "UID" for i in items):
        items.insert(0, FetchItem("UID"))
    if c.changed_since is not None or any(i.name == "MODSEQ" for i in items):
        s.flags.condstore = True
        if not any(i.name == "MODSEQ" for i in items):
            items.append(FetchItem("MODSEQ"))
    if c.changed_since is not None:
        known = folder.info
        uids = [u for u in uids if known[u].modseq > c.changed_since]
    if any(i.sets_seen for i in items) and not folder.readonly:
        known = folder.info
        unseen = [u for u in uids if "\\Seen" not in known[u].flags]
        if unseen and (s.place is None or "s" in await rights_of(s, s.place)):
            modseq = await s.commit(s.ctx.store.messages.set_flags_async(
                *s.where, folder.folder, unseen, ["\\Seen"], "add"))
            mine = folder.mine()
            for u in unseen:
                info = mine[u]
                mine[u] = info._replace(
                    flags=tuple(sorted({*info.flags, "\\Seen"})), modseq=modseq)
            if not any(i.name == "FLAGS" for i in items):
                items.append(FetchItem("FLAGS"))
            if s.flags.qresync and not any(i.name == "UID" for i in items):
                items.insert(0, FetchItem("UID"))     # RFC 7162 §3.2: a flag change
    vanished: list[bytes] = []
    if c.vanished and c.changed_since is not None:
        # RFC 7162 §3.2.6: the set's expunged UIDs first; "*" reaches up to UIDNEXT-1,
        # where the last messages may have been.
        largest = max(folder.uids[-1] if folder.uids else 0, folder.uidnext - 1)
        wanted = search.SequenceSet.parse(c.sequence, largest)
        vanished = await vanished_earlier(s, folder, c.changed_since, wanted.ranges)
    try:
        if _fetch_is_cheap(s, uids, items):
            out, missing = _render_all(s, uids, items)
        else:
            out, missing = await s.io(_render_all, s, uids, items)
    except ValueError as exc:
        s.done(c, "BAD", str(exc))
        return
    s.send(vanished + out)
    await s.sync(expunge=c.uid)
    if missing:
        s.done(c, "NO", "some messages were expunged meanwhile", "EXPUNGEISSUED")
    elif any(isinstance(x, _UnknownCte) for x in out):
        s.done(c, "NO", "unknown content transfer encoding", "UNKNOWN-CTE")
    else:
        s.done(c, "OK", f"{'UID ' if c.uid else ''}FETCH completed")


class _UnknownCte(bytes):
    pass


INLINE_MESSAGES = 64
INLINE_OCTETS = 1024 * 1024
INLINE_SEARCH = 2000
INLINE_READS = 24
"""Uncached messages an inline FETCH or SEARCH may still read: a small file read from
the page cache costs less than the round trip to a store thread. 24 lets a message-list
page (20 headers) of messages not yet parsed render on the loop, about 1-2 ms; in a
store thread the same FETCH waited 16-18 ms behind the others (bench/imap_load.py's
mix, 20 clients)."""
INLINE_READ_OCTETS = 256 * 1024


def _fetch_is_cheap(s: ImapSession, uids: list[int], items: list[FetchItem]) -> bool:
    """Render on the event loop rather than in the store pool: a FETCH of a few
    messages whose parsed views are (nearly all) cached reads (almost) no file, and
    handing pure Python work to a thread only adds a round trip (the GIL runs one of
    them at a time)."""
    if all(i.name in _METADATA for i in items):
        return True
    if len(uids) > INLINE_MESSAGES:
        return False
    folder = s.selected
    assert folder is not None
    cache, info = s.ctx.cache, folder.info
    if sum(info[u].size for u in uids) > INLINE_OCTETS:
        return False
    return _few_reads(info[u] for u in uids if not cache.has(info[u].path))


def _search_is_cheap(s: ImapSession, key: Any) -> bool:
    """SEARCH on the event loop (see :func:`_fetch_is_cheap`): keys on metadata alone,
    or header keys in a folder of modest size whose headers are (nearly all) cached."""
    if not search.needs_view(key):
        return True
    folder = s.selected
    assert folder is not None
    if folder.exists > INLINE_SEARCH or _needs_body(key):
        return False
    headers, cache, info = s.ctx.headers, s.ctx.cache, folder.info
    return _few_reads(
        info[u] for u in folder.uids
        if not ((headers is not None and headers.has(info[u].path)) or
                cache.has(info[u].path)))


def _few_reads(uncached: Iterable[MessageInfo]) -> bool:
    octets = 0
    for reads, message in enumerate(uncached, 1):
        octets += message.size
        if reads > INLINE_READS or octets > INLINE_READ_OCTETS:
            return False
    return True


def _needs_body(key: Any) -> bool:
    return search.uses(key, (search.Body, search.Text))


def _render_all(s: ImapSession, uids: list[int], items: list[FetchItem],
                ) -> tuple[list[bytes], bool]:
    folder = s.selected
    assert folder is not None
    if all(i.name in _METADATA for i in items):
        return _render_metadata(s, uids, items), False
    plan = _Plan.of(items)
    sizes: dict[str, int] = {}
    if plan.wants_size and not plan.needs_view:
        # A cached view knows its CRLF size; the others from the store's record (when
        # another item needs the view anyway, its size costs no second read).
        cache = s.ctx.cache
        known = folder.info
        need = [known[u].path for u in uids if not cache.has(known[u].path)]
        if need:
            sizes = crlf_sizes(s.ctx.store, need)
    out: list[bytes] = []
    missing = False
    known = folder.info
    for uid in uids:
        seq = folder.seq(uid)
        info = known[uid]
        try:
            out.append(_render(s, seq or 0, info, plan, sizes))
        except FileNotFoundError:
            missing = True
        except _CteError:
            out.append(_UnknownCte(b""))
    return [x for x in out if not isinstance(x, _UnknownCte)] + \
        [x for x in out if isinstance(x, _UnknownCte)][:1], missing


class _CteError(Exception):
    pass


_METADATA = frozenset({"UID", "FLAGS", "MODSEQ"})


def _render_metadata(s: ImapSession, uids: list[int], items: list[FetchItem]) -> list[bytes]:
    """FETCH of UID / FLAGS / MODSEQ only (what clients ask for every message of a big
    folder when they sync): no message file, one formatted line per message."""
    folder = s.selected
    assert folder is not None
    info, recent, seq_of = folder.info, folder.recent, folder.seq
    names = [i.name for i in items]
    responses = [i.response_name() for i in items]
    out: list[bytes] = []
    append = out.append
    # Sequence numbers: ``uids`` is in UID order, so walk the session's list once.
    position = {uid: n for n, uid in enumerate(folder.uids, 1)} if len(uids) > 64 else None
    for uid in uids:
        seq = position[uid] if position is not None else seq_of(uid)
        m = info[uid]
        parts = []
        for name, response in zip(names, responses, strict=True):
            if name == "UID":
                parts.append(f"{response} {uid}")
            elif name == "FLAGS":
                flags = " ".join(m.flags)
                if uid in recent:
                    flags = f"{flags} \\Recent" if flags else "\\Recent"
                parts.append(f"{response} ({flags})")
            else:
                parts.append(f"{response} ({m.modseq})")
        append(f"* {seq} FETCH ({' '.join(parts)})\r\n".encode())
    return out


_NO_VIEW = frozenset({"UID", "FLAGS", "INTERNALDATE", "MODSEQ", "RFC822.SIZE"})
"""FETCH items answered without the message's parsed view (RFC822.SIZE when its size
is known otherwise)."""


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What a FETCH renders, worked out once per command rather than per message:
    each item's name and response prefix (``NAME ``), and whether the message's
    parsed view is needed (always, or only for a size not known otherwise)."""

    items: list[tuple[str, bytes, FetchItem]]
    needs_view: bool
    wants_size: bool

    @classmethod
    def of(cls, items: list[FetchItem]) -> _Plan:
        names = {i.name for i in items}
        return cls([(i.name, i.response_name().encode() + b" ", i) for i in items],
                   not names <= _NO_VIEW, "RFC822.SIZE" in names)


def _render(s: ImapSession, seq: int, info: MessageInfo, plan: _Plan,
            sizes: dict[str, int]) -> bytes:
    folder = s.selected
    assert folder is not None
    size = sizes.get(info.path)
    view: MessageView | None = None
    if plan.needs_view or (plan.wants_size and not size):
        view = s.ctx.cache.get(info.path)
    parts: list[bytes] = []
    for name, prefix, item in plan.items:
        if name == "UID":
            value = b"%d" % info.uid
        elif name == "FLAGS":
            value = wire.flag_list(folder.flags(info.uid))
        elif name == "BODY" and item.section is not None:
            assert view is not None
            value = _partial(view.section(item.section) or b"", item.partial)
        elif name == "INTERNALDATE":
            value = internal_date(info.internal_date).encode()
        elif name == "RFC822.SIZE":
            value = b"%d" % (size or view.size)  # type: ignore[union-attr]
        elif name == "MODSEQ":
            value = b"(%d)" % info.modseq
        else:
            assert view is not None
            value = _view_item(view, item)
        parts.append(prefix + value)
    return b"* %d FETCH (" % seq + b" ".join(parts) + b")\r\n"


def _view_item(view: MessageView, item: FetchItem) -> bytes:
    """The value of a FETCH item taken from the parsed message (raises
    :class:`_CteError` for a part whose transfer encoding cannot be undone)."""
    name = item.name
    if name == "ENVELOPE":
        return view.envelope().encode()
    if name == "BODYSTRUCTURE":
        return view.bodystructure(True).encode()
    if name == "BODY":
        return view.bodystructure(False).encode()
    if name in ("RFC822", "RFC822.HEADER", "RFC822.TEXT"):
        spec = {"RFC822": "", "RFC822.HEADER": "HEADER", "RFC822.TEXT": "TEXT"}[name]
        return wire.literal(view.section(spec) or b"")
    if name == "BINARY.SIZE":
        size = view.binary_size(item.section or "")
        if size is None:
            raise _CteError
        return str(size).encode()
    if name == "BINARY":
        data = view.binary(item.section or "")
        if data is None:
            raise _CteError
        chunk = data if item.partial is None else \
            data[item.partial[0]:item.partial[0] + item.partial[1]]
        return (b"~{%d}\r\n" % len(chunk) + chunk) if b"\x00" in chunk else \
            wire.literal(chunk)
    raise ValueError(f"unknown FETCH item {name}")


def _partial(data: bytes, partial: tuple[int, int] | None) -> bytes:
    if partial is not None:
        data = data[partial[0]:partial[0] + partial[1]]
    return wire.literal(data)


# -- STORE ------------------------------------------------------------------------------------

async def store(s: ImapSession, c: cmd.Store) -> None:
    folder = s.selected
    assert folder is not None
    if folder.readonly:
        s.done(c, "NO", "mailbox is read-only (EXAMINE)", "READ-ONLY")
        return
    uids = _uids(s, c, c.sequence, c.uid)
    if uids is None:
        return
    try:
        flags = list(check_flags(f for f in c.flags if f.lower() != "\\recent"))
    except MessageStoreError as exc:
        s.done(c, "BAD", exc.message)
        return
    if s.place is not None and not s.place.personal:
        need = _rights_needed(folder, uids, flags, c.mode)
        if denied(s, c, s.place, await rights_of(s, s.place), need):
            return
    modified: list[int] = []
    if c.unchanged_since is not None:
        s.flags.condstore = True
        known = folder.info
        modified = [u for u in uids if known[u].modseq > c.unchanged_since]
        uids = [u for u in uids if u not in modified]
    state = None
    if uids:
        modseq = await s.commit(s.ctx.store.messages.set_flags_async(
            *s.where, folder.folder, uids, flags, c.mode))
        state = _index_stored(s, uids, set(flags), c.mode, modseq)
    await s.sync(expunge=c.uid, quiet=set(uids), force=True, state=state)
    if not c.silent:
        out = []
        for uid in uids:
            seq = folder.seq(uid)
            if seq is None or uid not in folder.info:
                continue
            extra = f" MODSEQ ({folder.info[uid].modseq})" if s.flags.condstore else ""
            uid_part = f"UID {uid} " if c.uid or s.flags.qresync else ""   # RFC 7162 §3.2
            out.append(wire.untagged(f"{seq} FETCH ({uid_part}FLAGS "
                                     f"({' '.join(folder.flags(uid))}){extra})"))
        s.send(out)
    if modified:
        numbers = modified if c.uid else [folder.seq(u) or 0 for u in modified]
        s.done(c, "OK", "conditional STORE failed for some messages",
               f"MODIFIED {search.SequenceSet.of(numbers)}")
        return
    s.done(c, "OK", f"{'UID ' if c.uid else ''}STORE completed")


def _index_stored(s: ImapSession, uids: list[int], wanted: set[str], mode: FlagMode,
                   modseq: int) -> tuple[int, int, int] | None:
    """Tell the shared folder index what this STORE changed, as the store's writer did
    it (:meth:`.folder_index.FolderIndexes.advance`: only when nothing else changed
    the folder meanwhile), so that the sync after it reads no message rows. Returns
    the folder's state after the change when the index took it: the sync after the
    STORE starts from it instead of asking the store (a change by someone else in the
    meantime is told at the next command, which RFC 3501 §5.2 allows)."""
    folder = s.selected
    assert folder is not None
    key = (*s.where, folder.folder)
    index = s.ctx.indexes.current(key)
    if index is None or modseq != index.state[2] + 1:
        return None
    changed = {}
    for uid in uids:
        message = index.info.get(uid)
        if message is None:
            continue
        current = set(message.flags)
        new = changed_flags(current, wanted, mode)
        if new != current:
            changed[uid] = message._replace(flags=tuple(sorted(new)), modseq=modseq)
    state = (index.state[0], index.state[1], modseq)
    return state if changed and s.ctx.indexes.advance(key, state, changed) else None


def _rights_needed(folder: Any, uids: list[int], flags: list[str], mode: FlagMode,
                   ) -> str:
    """The rights a STORE needs for the flags it would really change (RFC 4314 §4)."""
    wanted = set(flags)
    changed: set[str] = set()
    known = folder.info
    for uid in uids:
        old = set(known[uid].flags)
        changed |= old ^ changed_flags(old, wanted, mode)
    need = {"s" if f == "\\Seen" else "t" if f == "\\Deleted" else "w" for f in changed}
    return "".join(sorted(need))


# -- SEARCH, SORT, THREAD ------------------------------------------------------------------

def _messages(s: ImapSession) -> list[Msg]:
    folder = s.selected
    assert folder is not None
    info = folder.info
    return [Msg(s, i + 1, info[u]) for i, u in enumerate(folder.uids)]


def _resolve(s: ImapSession, key: Any) -> Any:
    folder = s.selected
    assert folder is not None
    largest_uid = folder.uids[-1] if folder.uids else 0
    return resolve(key, folder.exists, largest_uid,
                   search.SequenceSet.of(folder.saved_uids()))


def _select(s: ImapSession, key: Any) -> list[Msg]:
    resolved = _resolve(s, key)
    found = _select_by_header(s, resolved)
    if found is not None:
        return found
    match = search.matcher(resolved)
    return [m for m in _messages(s) if match(m)]


def _header_road(s: ImapSession, key: Any,
                 ) -> tuple[SelectedFolder, HeaderCache, search.Header] | None:
    """The selected folder, the header cache and ``key`` when ``key`` is a search on one
    header field that the cache can answer; None otherwise."""
    folder, headers = s.selected, s.ctx.headers
    if isinstance(key, search.Header) and key.substring and headers is not None \
            and folder is not None:
        return folder, headers, key
    return None


def _select_by_header(s: ImapSession, key: Any, max_reads: int | None = None,
                      ) -> list[Msg] | None:
    """SEARCH on one header field, the commonest search (a client's quick filter, a
    list view's search box), answered by the header cache in one loop, with a
    :class:`Msg` only for the messages found: the same answers as the general matcher
    in a fraction of its time. None when ``key`` is not such a search, or when more
    than ``max_reads`` headers would have to be read from their files."""
    road = _header_road(s, key)
    if road is None:
        return None
    folder, headers, key = road
    found = headers.search(map(folder.info.__getitem__, folder.uids), key.name,
                           key.substring.casefold(), max_reads)
    if found is None:
        return None
    return [Msg(s, n + 1, m) for n, m in found]


def _uids_by_header(s: ImapSession, key: Any, max_reads: int | None = None,
                    ) -> list[int] | None:
    """:func:`_select_by_header` as UIDs, with the header cache's answers per folder
    (:meth:`~.message_cache.HeaderCache.search_uids`): a search repeated on a folder
    looks only at the messages appended since. None as for :func:`_select_by_header`."""
    road = _header_road(s, key)
    if road is None:
        return None
    folder, headers, key = road
    return headers.search_uids((*s.where, folder.folder, folder.uidvalidity), folder.uids,
                               folder.info, key.name, key.substring.casefold(), max_reads)


def _has_modseq(key: Any) -> bool:
    return search.uses(key, search.ModSeq)


def _refuse_search(s: ImapSession, c: cmd.Search | cmd.Sort, status: str, text: str,
                   code: str | None = None) -> None:
    """A SEARCH or SORT that fails; with RETURN (SAVE) ``$`` becomes empty (RFC 5182
    §2.1), so a pipelined ``STORE $ ...`` cannot act on an older result."""
    if c.returns is not None and "SAVE" in c.returns and s.selected is not None:
        s.selected.saved = []
    s.done(c, status, text, code)


def _save(s: ImapSession, c: cmd.Search | cmd.Sort, uids: list[int]) -> None:
    if c.returns is not None and "SAVE" in c.returns and s.selected is not None:
        s.selected.saved = search_result.to_save(c.returns, uids)


async def search_(s: ImapSession, c: cmd.Search) -> None:
    if c.charset is not None and c.charset not in CHARSETS:
        _refuse_search(s, c, "NO", f"charset {c.charset} is not supported",
                       "BADCHARSET (US-ASCII UTF-8)")
        return
    folder = s.selected
    try:
        resolved = _resolve(s, c.key)
        uids = _uids_by_header(s, resolved, INLINE_READS) \
            if folder is not None and folder.exists <= INLINE_SEARCH else None
        if uids is None and _header_road(s, resolved) is not None:
            # In a store thread, still by the header cache's kept answers: a big folder
            # searched again costs set operations, and a first search after a start
            # loads the folder's cache file there, not on the event loop.
            uids = await s.io(_uids_by_header, s, resolved)
        if uids is None:
            found = _select(s, c.key) if _search_is_cheap(s, c.key) else \
                await s.io(_select, s, c.key)
    except ValueError as exc:
        _refuse_search(s, c, "BAD", f"invalid search: {exc}")
        return
    if uids is not None:          # one header field: no MODSEQ in the key
        assert folder is not None
        numbers = uids if c.uid else [folder.seq(uid) or 0 for uid in uids]
        modseq = None
    else:
        uids = [m.uid for m in found]
        numbers = uids if c.uid else [m.seq for m in found]
        modseq = max((m.modseq for m in found), default=0) if _has_modseq(c.key) else None
    if modseq is not None:
        s.flags.condstore = True
    _save(s, c, uids)
    if c.returns is None:
        line = "SEARCH" + "".join(f" {n}" for n in numbers)
        if modseq and numbers:
            line += f" (MODSEQ {modseq})"
        s.send(wire.untagged(line))
    elif search_result.answers(c.returns):
        s.send(wire.untagged(search_result.esearch(c.tag, c.uid, c.returns, numbers,
                                                   modseq=modseq)))
    await s.sync(expunge=c.uid)
    s.done(c, "OK", f"{'UID ' if c.uid else ''}SEARCH completed")


async def sort_(s: ImapSession, c: cmd.Sort) -> None:
    if c.charset not in CHARSETS:
        _refuse_search(s, c, "NO", f"charset {c.charset} is not supported",
                       "BADCHARSET (US-ASCII UTF-8)")
        return

    def run() -> list[int]:
        return sort.sort(c.criteria, _select(s, c.key), lambda m: m.uid)
    try:
        uids = await s.io(run)
    except ValueError as exc:
        _refuse_search(s, c, "BAD", f"invalid SORT: {exc}")
        return
    folder = s.selected
    assert folder is not None
    numbers = uids if c.uid else [folder.seq(u) or 0 for u in uids]
    _save(s, c, uids)
    if c.returns is None:
        s.send(wire.untagged("SORT" + "".join(f" {n}" for n in numbers)))
    elif search_result.answers(c.returns):
        s.send(wire.untagged(search_result.esearch(c.tag, c.uid, c.returns, numbers,
                                                   sorted_order=True)))
    await s.sync(expunge=c.uid)
    s.done(c, "OK", f"{'UID ' if c.uid else ''}SORT completed")


async def thread_(s: ImapSession, c: cmd.Thread) -> None:
    if c.charset not in CHARSETS:
        s.done(c, "NO", f"charset {c.charset} is not supported",
               "BADCHARSET (US-ASCII UTF-8)")
        return

    def run() -> str:
        found = _select(s, c.key)
        return sort.thread(c.algorithm, found, (lambda m: m.uid) if c.uid else (lambda m: m.seq))
    try:
        text = await s.io(run)
    except ValueError as exc:
        s.done(c, "BAD", f"invalid THREAD: {exc}")
        return
    s.send(wire.untagged(f"THREAD {text}" if text else "THREAD"))
    await s.sync(expunge=c.uid)
    s.done(c, "OK", f"{'UID ' if c.uid else ''}THREAD completed")


# -- COPY, MOVE, EXPUNGE, CLOSE ------------------------------------------------------------

async def copy_move(s: ImapSession, c: cmd.CopyMove) -> None:
    folder = s.selected
    assert folder is not None
    uids = _uids(s, c, c.sequence, c.uid)
    if uids is None:
        return
    place = await place_of(s, c, c.mailbox)
    if place is None:
        return
    target_state = places.folder_state(s.ctx.store, place)
    if target_state is None:
        s.done(c, "NO", f"no mailbox {mailboxes.to_imap(place.name)!r}", "TRYCREATE")
        return
    target_rights = await rights_of(s, place)
    if denied(s, c, place, target_rights, "i", "TRYCREATE"):
        return
    if c.name == "MOVE" and folder.readonly:
        s.done(c, "NO", "mailbox is read-only (EXAMINE)", "READ-ONLY")
        return
    if c.name == "MOVE" and s.place is not None and \
            denied(s, c, s.place, await rights_of(s, s.place), "te"):
        return
    target = place.folder
    across = place.owner != s.where          # between personal and public folders
    if not uids:
        s.done(c, "OK", f"{c.name} completed (no messages)")
        return
    if target == folder.folder and c.name == "MOVE" and not across:
        s.done(c, "NO", "cannot move messages into the same mailbox", "CANNOT")
        return
    try:
        operation = s.ctx.store.messages.move if c.name == "MOVE" else s.ctx.store.messages.copy
        if target == folder.folder and not across:
            mapping = {}
            for uid in uids:
                data = await s.io(s.ctx.store.messages.read, *s.where, folder.folder, uid)
                result = await s.io(s.ctx.store.messages.append, *s.where, target, data,
                                    folder.info[uid].flags, folder.info[uid].internal_date)
                mapping[uid] = result.uid
        else:
            mapping = await s.io(operation, *s.where, folder.folder, uids, target,
                                 place.mailbox if across else None)
    except QuotaExceeded as exc:
        s.done(c, "NO", f"mailbox is full: {exc.message}", "OVERQUOTA")
        return
    except MessageStoreError as exc:
        s.done(c, "NO", exc.message, "CANNOT")
        return
    known = folder.info
    await _drop_flags(s, place, target_rights,
                      [(known[u].flags, new) for u, new in mapping.items()])
    code = None
    if mapping:
        src = search.SequenceSet.of(sorted(mapping))
        dst = ",".join(str(mapping[u]) for u in sorted(mapping))
        code = f"COPYUID {target_state[0]} {src} {dst}"
    if c.name == "MOVE":
        if code:
            s.send(wire.status("OK", "moved", code))
        await s.sync(expunge=True, force=True)
        s.done(c, "OK", f"{'UID ' if c.uid else ''}MOVE completed", _highest(s))
    else:
        await s.sync(expunge=c.uid)
        s.done(c, "OK", f"{'UID ' if c.uid else ''}COPY completed", code)


async def _drop_flags(s: ImapSession, place: Place, have: str,
                      copied: list[tuple[tuple[str, ...], int]]) -> None:
    """Take off the copies the flags the user may not set in the target (RFC 4314 §4,
    as APPEND does): the store copies every flag."""
    if place.personal:
        return
    doomed = {f for flags, _ in copied for f in flags} - set(allowed_flags(
        [f for flags, _ in copied for f in flags], have))
    if doomed:
        await s.commit(s.ctx.store.messages.set_flags_async(
            *place.key, [uid for _, uid in copied], sorted(doomed), "remove"))


async def _expunge_deleted(s: ImapSession, only: set[int] | None,
                          ) -> tuple[int, int, int] | None:
    """Remove the messages marked \\Deleted (of ``only``, if given); the folder's state
    after the removal when the shared index took it (see :func:`_index_stored`)."""
    folder = s.selected
    assert folder is not None
    # The folder's index at its current state: brought up to date here when only a few
    # changes happened since (the usual case), in a store thread otherwise.
    index = await s.folder_index((*s.where, folder.folder), s.selected_state())
    if index is None:
        return None
    doomed = [m.uid for m in index.info.values() if "\\Deleted" in m.flags
              and (only is None or m.uid in only)]
    if not doomed:
        return None
    removal = await s.commit(s.ctx.store.messages.expunge_async(*s.where, folder.folder,
                                                               doomed))
    current = s.ctx.indexes.current((*s.where, folder.folder))
    if removal.uids and current is not None:   # the sync after it then reads no rows
        state = (current.state[0], current.state[1], removal.modseq)
        if s.ctx.indexes.advance((*s.where, folder.folder), state, {}, removal.uids):
            return state
    return None


async def expunge(s: ImapSession, c: cmd.Command) -> None:
    folder = s.selected
    assert folder is not None
    if folder.readonly:
        s.done(c, "NO", "mailbox is read-only (EXAMINE)", "READ-ONLY")
        return
    if s.place is not None and denied(s, c, s.place, await rights_of(s, s.place), "e"):
        return
    only = None
    if isinstance(c, cmd.UidExpunge):
        uids = _uids(s, c, c.sequence, True)
        if uids is None:
            return
        only = set(uids)
    state = await _expunge_deleted(s, only)
    await s.sync(expunge=True, force=True, state=state)
    s.done(c, "OK", f"{c.name} completed", _highest(s))


def _highest(s: ImapSession) -> str | None:
    """``HIGHESTMODSEQ n`` for the tagged OK of EXPUNGE and MOVE under QRESYNC: the
    VANISHED responses carry no mod-sequence, this tells the client where it stands
    (RFC 7162 §3.2.7, §3.2.9)."""
    folder = s.selected
    if not s.flags.qresync or folder is None or folder.pending_expunge:
        return None
    return f"HIGHESTMODSEQ {folder.highestmodseq}"


async def close(s: ImapSession, c: cmd.Command) -> None:
    folder = s.selected
    assert folder is not None
    if c.name == "CLOSE" and not folder.readonly and \
            (s.place is None or "e" in await rights_of(s, s.place)):
        await _expunge_deleted(s, None)
    s.select(None)
    s.done(c, "OK", f"{c.name} completed")


async def check(s: ImapSession, c: cmd.Command) -> None:
    await s.sync()
    s.done(c, "OK", "CHECK completed")


HANDLERS: dict[str, Any] = {
    "FETCH": fetch, "STORE": store, "SEARCH": search_, "SORT": sort_, "THREAD": thread_,
    "COPY": copy_move, "MOVE": copy_move, "EXPUNGE": expunge, "UID EXPUNGE": expunge,
    "CLOSE": close, "UNSELECT": close, "CHECK": check,
}

