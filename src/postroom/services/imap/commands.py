"""IMAP commands as typed values, and the parser from a command's bytes (RFC 3501 §6,
RFC 9051 §6, and the extensions the service offers).

:func:`parse_command` reads ``tag SP command-name [SP arguments]`` and calls the parse
function of that command, which returns one of the dataclasses below. A command the
server does not know, or arguments that do not follow the grammar, raise
:class:`ParseError` (sent as tagged ``BAD``; the connection goes on). Sequence sets are
kept as checked text: ``*`` can only be resolved against a session's messages.

Untrusted input: the whole command. Nothing here touches the store or the session.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from postroom.services.imap.arguments import ArgumentError, Reader
from postroom.services.imap.fetch_items import FetchItem, parse_fetch_items
from postroom.store.messages import FlagMode

_TAG = re.compile(rb"[^\x00-\x20\x7f-\xff(){%*\"\\+]+")


class ParseError(ValueError):
    """The command cannot be parsed; answer ``tag BAD [code] text``. ``saves``: it was a
    SEARCH or SORT with ``RETURN (SAVE)``, whose failure empties ``$`` (RFC 5182 §2.1)."""

    def __init__(self, text: str, tag: str | None = None, code: str | None = None,
                 saves: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.tag = tag
        self.code = code
        self.saves = saves


@dataclass(frozen=True)
class Command:
    tag: str
    name: str


@dataclass(frozen=True)
class Simple(Command):
    """CAPABILITY NOOP LOGOUT STARTTLS CHECK CLOSE UNSELECT EXPUNGE IDLE NAMESPACE."""


@dataclass(frozen=True)
class Login(Command):
    username: bytes
    password: bytes


@dataclass(frozen=True)
class Authenticate(Command):
    mechanism: str
    initial: bytes | None       # SASL-IR, base64 text ("=" for empty)


@dataclass(frozen=True)
class Enable(Command):
    capabilities: tuple[str, ...]


@dataclass(frozen=True)
class Compress(Command):
    mechanism: str


@dataclass(frozen=True)
class Qresync:
    """The QRESYNC select parameter (RFC 7162 3.2.5): what the client last knew."""

    uidvalidity: int
    modseq: int
    known_uids: str | None = None                  # a sequence set of UIDs, no "*"
    seq_match: tuple[str, str] | None = None       # known sequence numbers, their UIDs


@dataclass(frozen=True)
class Select(Command):
    """SELECT or EXAMINE, with the CONDSTORE / QRESYNC parameters (RFC 7162)."""

    mailbox: bytes
    condstore: bool = False
    qresync: Qresync | None = None


@dataclass(frozen=True)
class MailboxCommand(Command):
    """CREATE DELETE SUBSCRIBE UNSUBSCRIBE GETQUOTAROOT GETACL MYRIGHTS."""

    mailbox: bytes


@dataclass(frozen=True)
class AclCommand(Command):
    """SETACL, DELETEACL, LISTRIGHTS (RFC 4314 §3.1-3.4): a mailbox, an identifier and,
    for SETACL, the rights (``+``/``-`` prefixed or not; checked by the handler, which
    answers BAD for an unknown right)."""

    mailbox: bytes
    identifier: bytes
    rights: bytes | None = None


@dataclass(frozen=True)
class GetQuota(Command):
    root: bytes


@dataclass(frozen=True)
class Rename(Command):
    mailbox: bytes
    new_name: bytes


@dataclass(frozen=True)
class ListCommand(Command):
    """LIST (with LIST-EXTENDED options, RFC 5258/6154/5819) or LSUB."""

    reference: bytes
    patterns: tuple[bytes, ...]
    select_options: tuple[str, ...] = ()
    return_options: tuple[str, ...] = ()
    status_items: tuple[str, ...] = ()


@dataclass(frozen=True)
class Status(Command):
    mailbox: bytes
    items: tuple[str, ...]


@dataclass(frozen=True)
class AppendMessage:
    flags: tuple[str, ...]
    date: datetime | None
    data: bytes | Path        # a Path: a large message the framing spooled to a file

    @property
    def size(self) -> int:
        if isinstance(self.data, Path):
            try:
                return self.data.stat().st_size
            except OSError:
                return 0
        return len(self.data)


@dataclass(frozen=True)
class Append(Command):
    mailbox: bytes
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True)
class Id(Command):
    parameters: tuple[tuple[str, str | None], ...] | None


@dataclass(frozen=True)
class Fetch(Command):
    uid: bool
    sequence: str
    items: tuple[FetchItem, ...]
    changed_since: int | None = None
    vanished: bool = False


@dataclass(frozen=True)
class Store(Command):
    uid: bool
    sequence: str
    mode: FlagMode              # "replace", "add", "remove"
    silent: bool
    flags: tuple[str, ...]
    unchanged_since: int | None = None


@dataclass(frozen=True)
class Search(Command):
    """SEARCH (and the SORT/THREAD search part): ``key`` is a search-key tree of
    :mod:`postroom.services.imap.search`; ``returns`` the ESEARCH RETURN options or
    None for a classic SEARCH."""

    uid: bool
    charset: str | None
    key: Any
    returns: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Sort(Command):
    uid: bool
    criteria: tuple[str, ...]
    charset: str
    key: Any
    returns: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Thread(Command):
    uid: bool
    algorithm: str
    charset: str
    key: Any


@dataclass(frozen=True)
class CopyMove(Command):
    """COPY or MOVE."""

    uid: bool
    sequence: str
    mailbox: bytes


@dataclass(frozen=True)
class UidExpunge(Command):
    sequence: str


@dataclass(frozen=True)
class Unknown(Command):
    arguments: bytes = field(default=b"")


SIMPLE = frozenset({"CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "CHECK", "CLOSE", "UNSELECT",
                    "EXPUNGE", "IDLE", "NAMESPACE"})
MAILBOX_ONLY = frozenset({"CREATE", "DELETE", "SUBSCRIBE", "UNSUBSCRIBE", "GETQUOTAROOT",
                          "GETACL", "MYRIGHTS"})


def parse_command(data: bytes, spooled: Sequence[Path] = ()) -> Command:
    """One whole command (without its final CRLF) as a typed value; ``spooled``: the
    files the framing wrote APPEND's large literals to, in order."""
    r = Reader(data, spooled=spooled)
    match = _TAG.match(data)
    if not match:
        raise ParseError("expected a tag")
    tag = match.group(0).decode("ascii")
    r.pos = match.end()
    try:
        r.sp()
        name = r.keyword()
        uid = False
        if name == "UID":
            r.sp()
            uid = True
            name = r.keyword()
            if name not in ("FETCH", "STORE", "SEARCH", "COPY", "MOVE", "EXPUNGE", "SORT",
                            "THREAD"):
                raise ParseError(f"UID {name} is not a command", tag)
        command = _parse(r, tag, name, uid)
        r.end()
        return command
    except ArgumentError as exc:
        raise ParseError(exc.text, tag, exc.code) from None
    except ParseError as exc:
        raise ParseError(exc.text, tag, exc.code, exc.saves) from None


def _parse(r: Reader, tag: str, name: str, uid: bool) -> Command:
    if name in SIMPLE and not uid:
        return Simple(tag, name)
    if name in MAILBOX_ONLY:
        r.sp()
        return MailboxCommand(tag, name, r.astring("a mailbox name"))
    parser = _PARSERS.get(name)
    if parser is None:
        raise ParseError(f"unknown command {name}", tag)
    return parser(r, tag, name, uid)


def _login(r: Reader, tag: str, name: str, uid: bool) -> Command:
    r.sp()
    user = r.astring("a user name")
    r.sp()
    return Login(tag, name, user, r.astring("a password"))


def _authenticate(r: Reader, tag: str, name: str, uid: bool) -> Command:
    r.sp()
    mechanism = r.atom("a SASL mechanism").upper()
    initial = None
    if r.take(b" "):
        initial = r.base64()
    return Authenticate(tag, name, mechanism, initial)


def _enable(r: Reader, tag: str, name: str, uid: bool) -> Command:
    caps = []
    while r.take(b" "):
        caps.append(r.keyword())
    if not caps:
        raise ParseError("ENABLE needs at least one capability")
    return Enable(tag, name, tuple(caps))


def _compress(r: Reader, tag: str, name: str, uid: bool) -> Command:
    r.sp()
    return Compress(tag, name, r.keyword())


def _select(r: Reader, tag: str, name: str, uid: bool) -> Command:
    r.sp()
    mailbox = r.astring("a mailbox name")
    condstore, qresync = False, None
    if r.take(b" "):
        def param(r: Reader) -> tuple[str, Qresync | None]:
            key = r.keyword()
            if key == "CONDSTORE":
                return key, None
            if key == "QRESYNC":
                r.sp()
                return key, _one_paren(r, _qresync)
            raise ArgumentError(f"unknown SELECT parameter {key}")
        for key, value in r.parens(param):
            if key == "CONDSTORE":
                condstore = True
            else:
                qresync, condstore = value, True
    return Select(tag, name, mailbox, condstore, qresync)


def _qresync(r: Reader) -> Qresync:
    """``uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data]``."""
    validity = r.nz_number("a UIDVALIDITY")
    if validity > 0xFFFFFFFF:
        raise ArgumentError("QRESYNC UIDVALIDITY is beyond 4294967295")
    r.sp()
    modseq = r.nz_number("a mod-sequence")
    known = seq_match = None
    if r.take(b" ") and not r.peek(b"("):
        known = _no_star(r, "known UIDs")
        if r.take(b" ") and not r.peek(b"("):
            raise ArgumentError(f"expected '(' of the QRESYNC sequence match data{r._where()}")
    if r.peek(b"("):
        def sets(r: Reader) -> tuple[str, str]:
            numbers = _no_star(r, "known sequence set")
            r.sp()
            uids = _no_star(r, "known UID set")
            return numbers, uids
        seq_match = _one_paren(r, sets)
        if _count(seq_match[0]) != _count(seq_match[1]):
            raise ArgumentError("QRESYNC known sequence set and known UID set differ in size")
    return Qresync(validity, modseq, known, seq_match)


def _no_star(r: Reader, what: str) -> str:
    """A sequence set where RFC 7162 forbids ``*`` (and ``$`` makes no sense)."""
    text = r.sequence_set()
    if "*" in text or "$" in text:
        raise ArgumentError(f"QRESYNC {what} may not contain '*' or '$'")
    return text


def _count(text: str) -> int:
    total = 0
    for piece in text.split(","):
        lo, _, hi = piece.partition(":")
        total += abs(int(hi or lo) - int(lo)) + 1
    return total


def _one_paren(r: Reader, inner: Any) -> Any:
    r.expect(b"(", "'('")
    value = inner(r)
    r.expect(b")", "')'")
    return value


def _rename(r: Reader, tag: str, name: str, uid: bool) -> Command:
    r.sp()
    old = r.astring("a mailbox name")
    r.sp()
    return Rename(tag, name, old, r.astring("a new mailbox name"))


def _acl(r: Reader, tag: str, name: str, uid: bool) -> Command:
    r.sp()
    mailbox = r.astring("a mailbox name")
    r.sp()
    identifier = r.astring("an identifier")
    rights = None
    if name == "SETACL":
        r.sp()
        rights = r.astring("rights")
    return AclCommand(tag, name, mailbox, identifier, rights)


def _getquota(r: Reader, tag: str, name: str, uid: bool) -> Command:
    r.sp()
    return GetQuota(tag, name, r.astring("a quota root"))


def _list(r: Reader, tag: str, name: str, uid: bool) -> Command:
    r.sp()
    select: list[str] = []
    if name == "LIST" and r.peek(b"("):
        select = r.parens(Reader.keyword)
        r.sp()
    reference = r.astring("a reference name")
    r.sp()
    if name == "LIST" and r.peek(b"("):
        patterns = r.parens(Reader.list_mailbox, empty=False)
    else:
        patterns = [r.list_mailbox()]
    returns: list[str] = []
    status_items: list[str] = []
    if name == "LIST" and r.take(b" "):
        r.expect(b"RETURN ", "RETURN")

        def option(r: Reader) -> str:
            key = r.keyword()
            if key == "STATUS":
                r.sp()
                status_items.extend(r.parens(Reader.keyword, empty=False))
            return key
        returns = r.parens(option)
    return ListCommand(tag, name, reference, tuple(patterns), tuple(select), tuple(returns),
                       tuple(status_items))


def _status(r: Reader, tag: str, name: str, uid: bool) -> Command:
    r.sp()
    mailbox = r.astring("a mailbox name")
    r.sp()
    return Status(tag, name, mailbox, tuple(r.parens(Reader.keyword, empty=False)))


def _append(r: Reader, tag: str, name: str, uid: bool) -> Command:
    r.sp()
    mailbox = r.astring("a mailbox name")
    messages = []
    while r.take(b" "):              # MULTIAPPEND (RFC 3502): one or more messages
        flags: list[str] = []
        date = None
        if r.peek(b"("):
            flags = r.flag_list()
            r.sp()
        if r.peek(b'"'):
            date = r.date_time()
            r.sp()
        data: bytes | Path
        if r.peek_ci(b"UTF8 ("):     # RFC 6855 APPEND UTF8 (literal8)
            r.pos += 6
            data = r.message_literal()
            r.expect(b")")
        else:
            data = r.message_literal()
        messages.append(AppendMessage(tuple(flags), date, data))
    if not messages:
        raise ParseError("APPEND needs a message literal")
    return Append(tag, name, mailbox, tuple(messages))


def _id(r: Reader, tag: str, name: str, uid: bool) -> Command:
    r.sp()
    if r.peek_ci(b"NIL"):
        r.pos += 3
        return Id(tag, name, None)
    flat = r.parens(Reader.nstring)
    if len(flat) % 2 or len(flat) > 60:
        raise ParseError("ID needs field-value pairs (at most 30)")
    pairs = []
    for i in range(0, len(flat), 2):
        if flat[i] is None:
            raise ParseError("ID field names cannot be NIL")
        value = flat[i + 1]
        pairs.append((flat[i].decode("utf-8", "replace")[:30],
                      None if value is None else value.decode("utf-8", "replace")[:1024]))
    return Id(tag, name, tuple(pairs))


def _fetch(r: Reader, tag: str, name: str, uid: bool) -> Command:
    r.sp()
    sequence = r.sequence_set()
    r.sp()
    items = parse_fetch_items(r)
    changed_since, vanished = None, False
    if r.take(b" "):
        def modifier(r: Reader) -> tuple[str, int | None]:
            key = r.keyword()
            if key == "CHANGEDSINCE":
                r.sp()
                return key, r.number("a mod-sequence")
            if key == "VANISHED":
                return key, None
            raise ArgumentError(f"unknown FETCH modifier {key}")
        for key, value in r.parens(modifier, empty=False):
            if key == "CHANGEDSINCE":
                changed_since = value
            else:
                vanished = True
    if vanished and not (uid and changed_since is not None):
        raise ParseError("VANISHED needs UID FETCH with CHANGEDSINCE")
    return Fetch(tag, "FETCH", uid, sequence, tuple(items), changed_since, vanished)


_FLAG_MODES: dict[str, FlagMode] = {"": "replace", "+": "add", "-": "remove"}


def _store(r: Reader, tag: str, name: str, uid: bool) -> Command:
    r.sp()
    sequence = r.sequence_set()
    r.sp()
    unchanged = None
    if r.peek(b"("):
        def modifier(r: Reader) -> int:
            if r.keyword() != "UNCHANGEDSINCE":
                raise ArgumentError("unknown STORE modifier")
            r.sp()
            return r.number("a mod-sequence")
        unchanged = r.parens(modifier, empty=False)[-1]
        r.sp()
    item = r.keyword()
    match = re.fullmatch(r"([+-]?)FLAGS(\.SILENT)?", item)
    if not match:
        raise ParseError(f"expected FLAGS, +FLAGS or -FLAGS, not {item}")
    mode = _FLAG_MODES[match.group(1)]
    r.sp()
    if r.peek(b"("):
        flags = r.flag_list()
    else:
        flags = [r.flag()]
        while r.take(b" "):
            flags.append(r.flag())
    return Store(tag, "STORE", uid, sequence, mode, bool(match.group(2)), tuple(flags),
                 unchanged)


def _search(r: Reader, tag: str, name: str, uid: bool) -> Command:
    from postroom.services.imap.search_keys import parse_search
    r.sp()
    returns = _returns(r)
    try:
        charset = None
        if r.peek_ci(b"CHARSET "):
            r.pos += 8
            charset = r.astring("a charset").decode("ascii", "replace").upper()
            r.sp()
        command = Search(tag, "SEARCH", uid, charset, parse_search(r), returns)
        r.end()
        return command
    except ArgumentError as exc:
        raise ParseError(exc.text, tag, exc.code, "SAVE" in (returns or ())) from None


def _returns(r: Reader) -> tuple[str, ...] | None:
    """``RETURN (options)`` of SEARCH and SORT (RFC 4731, RFC 5267, RFC 5182 SAVE)."""
    from postroom.services.imap import search_result
    if not r.peek_ci(b"RETURN ("):
        return None
    r.pos += 7
    returns = tuple(r.parens(Reader.keyword))
    r.sp()
    try:
        search_result.check(returns)
    except ValueError as exc:
        raise ParseError(str(exc), saves="SAVE" in returns) from None
    return returns


def _sort(r: Reader, tag: str, name: str, uid: bool) -> Command:
    from postroom.services.imap.search_keys import parse_search
    r.sp()
    returns = _returns(r)
    try:
        criteria = r.parens(Reader.keyword, empty=False)
        r.sp()
        charset = r.astring("a charset").decode("ascii", "replace").upper()
        r.sp()
        command = Sort(tag, "SORT", uid, tuple(criteria), charset, parse_search(r), returns)
        r.end()
        return command
    except ArgumentError as exc:
        raise ParseError(exc.text, tag, exc.code, "SAVE" in (returns or ())) from None


def _thread(r: Reader, tag: str, name: str, uid: bool) -> Command:
    from postroom.services.imap.search_keys import parse_search
    r.sp()
    algorithm = r.keyword()
    r.sp()
    charset = r.astring("a charset").decode("ascii", "replace").upper()
    r.sp()
    return Thread(tag, "THREAD", uid, algorithm, charset, parse_search(r))


def _copy(r: Reader, tag: str, name: str, uid: bool) -> Command:
    r.sp()
    sequence = r.sequence_set()
    r.sp()
    return CopyMove(tag, name, uid, sequence, r.astring("a mailbox name"))


def _expunge(r: Reader, tag: str, name: str, uid: bool) -> Command:
    if not uid:
        return Simple(tag, name)
    r.sp()
    return UidExpunge(tag, "UID EXPUNGE", r.sequence_set())


_PARSERS = {
    "LOGIN": _login, "AUTHENTICATE": _authenticate, "ENABLE": _enable,
    "COMPRESS": _compress, "SELECT": _select, "EXAMINE": _select, "RENAME": _rename,
    "GETQUOTA": _getquota, "SETACL": _acl, "DELETEACL": _acl, "LISTRIGHTS": _acl,
    "LIST": _list, "LSUB": _list, "XLIST": _list, "STATUS": _status,
    "APPEND": _append, "ID": _id, "FETCH": _fetch, "STORE": _store, "SEARCH": _search,
    "SORT": _sort, "THREAD": _thread, "COPY": _copy, "MOVE": _copy, "EXPUNGE": _expunge,
}
