"""One IMAP connection: framing, state, login and the command handlers glued over a
socket (manual 6.3.3; RFC 3501 / RFC 9051 §3 states, §6.1-6.2).

States: not authenticated -> authenticated -> selected -> logout (RFC 3501 §3); the
table :data:`ALLOWED` says which commands each state accepts, and anything else is
answered ``BAD`` with the state named, the connection intact. Handlers live in
:mod:`.auth_commands`, :mod:`.mailbox_commands`, :mod:`.message_commands` and
:mod:`.acl_commands`; each
takes the session and the typed command and writes its responses with
:meth:`ImapSession.send` and :meth:`ImapSession.done`.

Store work that may wait on the disk (appends, flag changes, copies, listings) runs in
the service's small thread pool (:meth:`ImapSession.io`), never on the event loop.
Folder listings come from the service's shared :class:`.folder_index.FolderIndexes`
(listed once per folder state, updated incrementally).
A selected folder may be another mailbox's (a public folder): :attr:`ImapSession.place`
says where it lives (:mod:`.places`), :attr:`ImapSession.where` its store owner.
After every command the session compares the selected folder with the store and
announces changes made by other sessions or by delivery (:meth:`sync`); while in IDLE
the service's :class:`.watch.FolderWatch` wakes it within a second of a change.

Abuse: failed logins wait (:func:`postroom.auth.logins.failure_delay`) and after
:data:`MAX_AUTH_FAILURES` the connection closes; :data:`MAX_ERRORS` refused commands
in a row close it too. Untrusted input: every byte, through :mod:`.framing`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from postroom.auth.logins import Identity, LoginChecker
from postroom.connectors.smtp.policy.session import client_ip_text
from postroom.logs import ServiceLogs
from postroom.services.imap import commands as cmd
from postroom.services.imap import mailboxes, policy, wire
from postroom.services.imap.framing import (
    CLOSED,
    NEED_DATA,
    Continuation,
    ImapFraming,
    ProtocolError,
    RawLine,
)
from postroom.services.imap.literal_spool import FileSpool
from postroom.services.imap.message_cache import HeaderCache, MessageCache
from postroom.services.imap.selected import SelectedFolder
from postroom.services.imap.transcript import Transcript
from postroom.store.backends.sqlite.folder_index import FolderIndex, FolderIndexes

if TYPE_CHECKING:
    from postroom.net.listeners import Connection
    from postroom.net.tls import ServerTls
    from postroom.services.imap.places import Place
    from postroom.services.imap.watch import FolderWatch
    from postroom.store import Store

log = logging.getLogger("postroom.imap")
T = TypeVar("T")

MAX_AUTH_FAILURES = 10
MAX_ERRORS = 25
HANDSHAKE_TIMEOUT = 30.0


class State(Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


ANY = frozenset({"CAPABILITY", "NOOP", "LOGOUT", "ID"})

ALLOWED: dict[State, frozenset[str]] = {
    State.NOT_AUTHENTICATED: ANY | {"STARTTLS", "AUTHENTICATE", "LOGIN"},
    State.AUTHENTICATED: ANY | {
        "ENABLE", "SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE",
        "UNSUBSCRIBE", "LIST", "LSUB", "XLIST", "NAMESPACE", "STATUS", "APPEND", "IDLE",
        "GETQUOTAROOT", "GETQUOTA", "COMPRESS", "SETACL", "DELETEACL", "GETACL",
        "LISTRIGHTS", "MYRIGHTS"},
}

ALLOWED[State.SELECTED] = ALLOWED[State.AUTHENTICATED] | {
    "CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "UID EXPUNGE", "SEARCH", "FETCH", "STORE",
    "COPY", "MOVE", "SORT", "THREAD"}
ALLOWED[State.LOGOUT] = frozenset()


HELD = frozenset({"APPEND", "CHECK", "CLOSE", "COPY", "EXAMINE", "EXPUNGE", "FETCH", "LIST",
                  "LSUB", "MOVE", "NOOP", "SEARCH", "SELECT", "SORT", "STATUS", "STORE",
                  "THREAD", "UID EXPUNGE", "UNSELECT"})
"""Commands whose untagged responses wait for their tagged one (:meth:`ImapSession.send`):
none of them waits for the client in between (IDLE, AUTHENTICATE do; STARTTLS and
COMPRESS change the stream after their tagged response)."""

_HANDLERS: dict[str, Any] = {}


def _handlers() -> dict[str, Any]:
    """Every command's handler by name, gathered on first use: the command modules
    import this one, so they cannot be imported at the top (and an import statement
    run at every command cost a few microseconds each time)."""
    from postroom.services.imap import (
        acl_commands,
        auth_commands,
        mailbox_commands,
        message_commands,
    )
    for module in (acl_commands, message_commands, mailbox_commands, auth_commands):
        _HANDLERS.update(module.HANDLERS)       # later modules win a shared name (CHECK)
    return _HANDLERS


@dataclass
class ImapContext:
    """What every session of the service shares."""

    store: Store
    logins: LoginChecker
    logs: ServiceLogs
    tls: ServerTls | None
    hostname: Callable[[], str]
    store_pool: ThreadPoolExecutor
    connection_ids: Callable[[], int]
    watch: FolderWatch
    cache: MessageCache
    failure_delay: float = 1.0
    processes: int = 1            # accept processes sharing the ports (limits divide)
    idle_poll: float = 0.5
    indexes: FolderIndexes = field(default_factory=FolderIndexes)
    # The highest \Recent mark a session of this process claimed, per folder and
    # UIDVALIDITY: once one session has claimed new mail, the others (thousands of
    # IDLE sessions woken together) know without asking the store (see ``recent_above``).
    recent_marks: dict[tuple[str, str, str, int], int] = field(default_factory=dict)
    headers: HeaderCache | None = None


@dataclass
class SessionFlags:
    utf8: bool = False
    condstore: bool = False
    qresync: bool = False
    enabled: set[str] = field(default_factory=set)


class ImapSession:
    """One client connection (see the module docstring)."""

    def __init__(self, ctx: ImapContext, conn: Connection, *, listener: str, client_ip: str,
                 server_ip: str, server_port: int, tls: bool, connections: int) -> None:
        self.ctx = ctx
        self.conn = conn
        self.listener = listener
        self.client_ip = client_ip_text(client_ip)
        self.connections = connections
        self.settings: Any = ctx.store.settings
        self.tls = tls
        self._spools: list[FileSpool] = []    # large APPEND literals on disk
        self.framing = ImapFraming(policy.append_limit(self.settings), spool=self._spool)
        self.log = Transcript(ctx.logs, ctx.connection_ids(), self.client_ip, server_ip,
                              server_port)
        self.state = State.NOT_AUTHENTICATED
        self.identity: Identity | None = None
        self.mailbox_id: int | None = None
        self.selected: SelectedFolder | None = None
        self.place: Place | None = None      # where the selected folder lives
        # \Recent claims made with this session's APPENDs: (mark before, appended UID)
        # by recent_marks' key, for the sync that tells it of its new message.
        self.own_recent: dict[tuple[str, str, str, int], tuple[int, int]] = {}
        self.flags = SessionFlags()
        self.auth_failures = 0
        self.errors = 0
        self._sent = 0
        self._compress: Any = None
        self._decompress: Any = None
        self._read_task: asyncio.Task[bytes] | None = None
        self._held: list[bytes] | None = None   # untagged responses awaiting the tagged one

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        except (ConnectionError, OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("IMAP session from %s failed", self.client_ip)
            with contextlib.suppress(Exception):
                self.write(wire.status("BYE", "internal server error"))
        finally:
            if self._read_task is not None:
                self._read_task.cancel()
            self._remove_spools(self._spools)
            self.log.flush()
            self.conn.close()

    def _spool(self, size: int) -> FileSpool:
        """Where the framing writes an APPEND literal of ``size`` octets (large ones)."""
        spool = FileSpool(self.ctx.store.home.tmp)
        self._spools.append(spool)
        return spool

    def _remove_spools(self, spools: list[Any]) -> None:
        for spool in spools:
            spool.remove()
            if spool in self._spools:
                self._spools.remove(spool)

    async def _run(self) -> None:
        refusal = policy.connect_refusal(self.settings, self.client_ip, self.connections,
                                         self.ctx.processes)
        if refusal is not None:
            self.write(wire.status("BYE", "too many connections, try again later"
                                   if refusal == "too-many-connections" else "access denied",
                                   "UNAVAILABLE"))
            self.log.note(f"connection refused: {refusal}")
            await self.conn.drain()
            return
        caps = " ".join(self.capabilities())
        self.write(wire.status("OK", f"{self.ctx.hostname()} IMAP4rev1 server ready",
                               f"CAPABILITY {caps}"))
        self.log.note(f"connection from {self.client_ip} on {self.listener}")
        while self.state is not State.LOGOUT:
            event = await self.next_event()
            if event is CLOSED:
                return
            if isinstance(event, RawLine):
                self.write(wire.status("BAD", "unexpected line"))
                continue
            assert isinstance(event, cmd.Command)
            try:
                await self.dispatch(event)
            finally:
                self._remove_spools(self.framing.take_spools())
            if self.auth_failures >= MAX_AUTH_FAILURES or self.errors >= MAX_ERRORS:
                self.write(wire.status("BYE", "too many errors, closing"))
                self.log.note("closing: too many errors or failed logins")
                break
        await self.conn.drain()

    async def next_event(self, timeout: float | None = None) -> object:
        """The next command (or raw line); continuation requests are answered here."""
        while True:
            try:
                event = self.framing.next_event()
            except ProtocolError as exc:
                self._remove_spools(self.framing.take_spools())
                self.errors += 1
                if exc.saves and self.selected is not None:
                    self.selected.saved = []        # RFC 5182 §2.1: a failed SAVE empties $
                self.write(exc.reply)
                self.log.command(None, exc.reply.decode("utf-8", "replace").strip(), 0, 0)
                continue
            if isinstance(event, Continuation):
                self.write(event.data)
                continue
            if event is not NEED_DATA:
                return event
            await self.conn.drain()
            try:
                data = await self.read(timeout or policy.idle_timeout(self.settings))
            except TimeoutError:
                self.write(wire.status("BYE", "idle timeout, closing"))
                self.log.note("idle timeout")
                return CLOSED
            self.framing.append_limit = policy.append_limit(self.settings)
            self.framing.receive_data(data)

    async def read(self, timeout: float) -> bytes:
        if self._read_task is not None:
            task, self._read_task = self._read_task, None
            data = await asyncio.wait_for(task, timeout)
        else:
            data = await self.conn.read(timeout)
        return self._inflate(data)

    def start_read(self) -> asyncio.Task[bytes]:
        """A read that may outlive one wait (IDLE waits on it and on the folder watch)."""
        if self._read_task is None:
            self._read_task = asyncio.ensure_future(
                self.conn.read(policy.idle_timeout(self.settings)))
        return self._read_task

    def _inflate(self, data: bytes) -> bytes:
        if self._decompress is not None and data:
            return self._decompress.decompress(data)
        return data

    # -- output -----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        held = self._held
        if held:                        # what send() held back goes first, in one write
            held.append(data)
            data = b"".join(held)
            held.clear()
        self._sent += len(data)
        if self._compress is not None:
            data = self._compress.compress(data) + self._compress.flush(zlib.Z_SYNC_FLUSH)
        self.conn.write(data)

    def send(self, data: bytes | list[bytes]) -> None:
        """Untagged responses: written at once, or during a command of :data:`HELD`
        with its tagged response (one write and one wake-up of the client instead of
        two)."""
        held = self._held
        if held is None:
            self.write(data if isinstance(data, bytes) else b"".join(data))
        elif isinstance(data, bytes):
            held.append(data)
        else:
            held.extend(data)

    def done(self, command: cmd.Command, status: str, text: str,
             code: str | None = None) -> None:
        """The tagged response ending ``command``, and its log lines."""
        folder = self.selected
        if folder is not None and folder.pending_expunge and self.flags.qresync:
            # RFC 7162 §3.2: after this command's MODSEQ values, a HIGHESTMODSEQ below
            # the expunges not yet announced.
            self.write(wire.status("OK", "expunges held back",
                                   f"HIGHESTMODSEQ {folder.held_modseq}"))
        line = wire.tagged(command.tag, status, text, code)
        self.write(line)
        self.log.command(command, line.decode("utf-8", "replace").strip(), self._sent, 0)
        self._sent = 0
        if status == "BAD":
            self.errors += 1
        else:
            self.errors = 0

    def start_compression(self) -> None:
        self._compress = zlib.compressobj(6, zlib.DEFLATED, -15)
        self._decompress = zlib.decompressobj(-15)

    async def io(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.ctx.store_pool, fn, *args)

    async def commit(self, future: Future[T]) -> T:
        """Wait for a change handed to the store's group-commit writer (flags, removals):
        the sessions' changes share one commit, where a store thread each would queue
        one transaction after another on the write lock."""
        return await asyncio.wrap_future(future)

    # -- state ------------------------------------------------------------------------------

    def capabilities(self) -> list[str]:
        caps = ["IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE"]
        settings = self.settings
        if self.state is State.NOT_AUTHENTICATED:
            if not self.tls and self.ctx.tls is not None:
                caps.append("STARTTLS")
            if not policy.plaintext_allowed(settings, self.tls):
                caps.append("LOGINDISABLED")
            caps += [f"AUTH={m}" for m in policy.sasl_mechanisms(settings, self.tls)]
            return caps
        caps += ["NAMESPACE", "UNSELECT", "UIDPLUS", "MOVE", "CHILDREN", "LIST-EXTENDED",
                 "LIST-STATUS", "SPECIAL-USE", "ESEARCH", "SEARCHRES",
                 "SORT", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT", "CONDSTORE",
                 "QRESYNC", "QUOTA", "QUOTA=RES-STORAGE", "BINARY", "MULTIAPPEND", "UTF8=ACCEPT",
                 f"APPENDLIMIT={policy.append_limit(settings)}", "STATUS=SIZE",
                 "COMPRESS=DEFLATE", "ACL", "RIGHTS=texk"]
        if policy.xlist_enabled(settings):
            caps.append("XLIST")
        return list(dict.fromkeys(caps))

    async def dispatch(self, command: cmd.Command) -> None:
        name = command.name
        if name not in ALLOWED[self.state]:
            where = ("log in first" if self.state is State.NOT_AUTHENTICATED else
                     "select a mailbox first" if name in ALLOWED[State.SELECTED] else
                     f"not allowed in the {self.state.value} state")
            self.done(command, "BAD", f"{name}: {where}")
            return
        handler = (_HANDLERS or _handlers()).get(name)
        if handler is None:
            self.done(command, "BAD", f"{name} is not supported")
            return
        if name not in HELD:
            await handler(self, command)
            return
        self._held = []
        try:
            await handler(self, command)
        finally:
            held, self._held = self._held, None
            if held:                    # ended without a tagged response
                self.write(b"".join(held))

    def logged_in(self, identity: Identity, mailbox_id: int) -> None:
        self.identity = identity
        self.mailbox_id = mailbox_id
        self.state = State.AUTHENTICATED
        self.log.username = identity.login

    @property
    def owner(self) -> tuple[str, str]:
        assert self.identity is not None
        return self.identity.postoffice, self.identity.mailbox

    @property
    def where(self) -> tuple[str, str]:
        """(post office, mailbox) holding the selected folder: the user's own, or the
        post office's public folder mailbox (:mod:`.places`)."""
        return self.place.owner if self.place is not None else self.owner

    def select(self, folder: SelectedFolder | None, place: Place | None = None) -> None:
        self.selected = folder
        self.place = place if folder is not None else None
        self.state = State.SELECTED if folder is not None else State.AUTHENTICATED

    async def sync(self, *, expunge: bool = True, quiet: set[int] = frozenset(),
                   force: bool = False, state: tuple[int, int, int] | None = None) -> None:
        """Tell the client what changed in the selected folder since it last heard.

        ``state``: the folder's (uidvalidity, uidnext, highestmodseq) when the caller
        has just read it (the IDLE watch that woke this session), saving one query per
        session when thousands wake together."""
        folder = self.selected
        if folder is None:
            return
        postoffice, mailbox = self.where
        if state is None:
            state = self.selected_state()
        if state is None:
            self.write(wire.status("BYE", "the selected mailbox was deleted"))
            self.state = State.LOGOUT
            return
        if not force and not folder.pending_expunge and \
                (state[1], state[2]) == (folder.uidnext, folder.highestmodseq):
            return
        index = await self.folder_index((postoffice, mailbox, folder.folder), state)
        if index is None:
            self.write(wire.status("BYE", "the selected mailbox was deleted"))
            self.state = State.LOGOUT
            return
        mark = 0
        top = index.uids[-1] if index.uids else 0
        if top > (folder.uids[-1] if folder.uids else 0):      # new mail: who sees \Recent
            mark = await self.recent_above(folder.folder, index.state[0], top,
                                           folder.readonly)
        self.send(folder.sync(index.info, expunge=expunge, condstore=self.flags.condstore,
                              qresync=self.flags.qresync, quiet=quiet, state=index.state,
                              recent_above=mark,
                              touched=index.touched_since(folder.highestmodseq)))

    def selected_state(self) -> tuple[int, int, int] | None:
        """The selected folder's (uidvalidity, uidnext, highestmodseq) as the store has
        it now, read by its row id; None if it was deleted."""
        folder = self.selected
        assert folder is not None
        if folder.folder_id:
            return mailboxes.folder_state_by_id(self.ctx.store, folder.folder_id)
        return mailboxes.folder_state(self.ctx.store, *self.where, folder.folder)

    def selects(self, place: Place) -> bool:
        """Is ``place`` the folder this session has selected?"""
        folder = self.selected
        return folder is not None and place.key == (*self.where, folder.folder)

    async def folder_index(self, key: tuple[str, str, str],
                           state: tuple[int, int, int] | None) -> FolderIndex | None:
        """The shared index of folder ``key`` at ``state`` (just read from the store);
        None if the folder is gone. Kept as it is, or brought up to date with a few
        small reads here (they never wait on a writer: WAL), or listed in full in a
        store thread."""
        indexes = self.ctx.indexes
        if state is None:
            return None
        index = indexes.peek(key, state)
        if index is not None:
            return index
        if indexes.small_update(key, state):
            return indexes.get(self.ctx.store, *key)
        return await self.io(indexes.get, self.ctx.store, *key)

    async def claimed_with_append(self, claim: Future[int], uid: int) -> None:
        """Note the \\Recent claim an APPEND into the selected folder handed to the
        store's writer right after the message (``claim_recent_async`` up to whatever
        the folder holds): it commits with the APPEND, so the sync that follows does
        not wait for a second commit of its own. The claim covers at least ``uid``."""
        folder = self.selected
        try:
            mark = await self.commit(claim)
        except Exception:               # the sync claims as usual
            return
        if folder is None:
            return
        key = (*self.where, folder.folder, folder.uidvalidity)
        self.own_recent[key] = (mark, uid)
        marks = self.ctx.recent_marks
        marks[key] = max(marks.get(key, 0), uid)

    async def recent_above(self, folder: str, uidvalidity: int, top: int,
                           readonly: bool) -> int:
        """The UID above which messages up to ``top`` are \\Recent to this session
        (RFC 3501 §2.3.2: recent to the first session told of them, claimed through the
        store so it holds across sessions and processes; ``readonly``: EXAMINE only
        looks). When a session of this process already
        claimed up to ``top``, the store's mark is at least that and the answer is known
        without a store call: after a delivery only the first woken session asks."""
        key = (*self.where, folder, uidvalidity)
        own = self.own_recent.pop(key, None)
        if own is not None and top <= own[1]:
            return own[0]       # claimed with its APPEND (claimed_with_append)
        marks = self.ctx.recent_marks
        known = marks.get(key, 0)
        if known >= top:
            return known
        if readonly:                    # EXAMINE only looks
            return await self.io(self.ctx.store.messages.recent_mark, *self.where, folder)
        if len(marks) > 10_000:
            marks.clear()
        # Noted before the claim, so that the sessions woken with this one do not all
        # claim too while it is in flight; undone if the claim fails.
        marks[key] = top
        try:
            return await self.commit(self.ctx.store.messages.claim_recent_async(
                *self.where, folder, top))
        except BaseException:
            if marks.get(key) == top:
                marks[key] = known
            raise
