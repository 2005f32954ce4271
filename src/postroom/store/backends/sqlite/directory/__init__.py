"""The directory in the embedded SQLite store (implements ``postroom.store.directory``).

Manual chapter 5: 5.3 post offices, 5.4 domains, 5.5 mailboxes (5.5.4 the address
map, 5.5.8 POP retrieval entries), 5.6 groups, 5.7 lists; 5.2.3 and 5.2.4 for the
server-wide mailbox defaults. One module per concept, composed into one class:

* :mod:`.postoffices`, :mod:`.domains`, :mod:`.mailboxes` (with logins),
  :mod:`.address_map`, :mod:`.groups`, :mod:`.lists`, :mod:`.pop_retrieval`
* :mod:`.public_root`: the hidden mailbox of a post office's public folders
* :mod:`.rows`: shared lookups and row -> record conversion
* :mod:`.options`: per-object option documents, secret options sealed

Names, addresses and option values are untrusted (CLI, CSV import, web admin): they
are checked by :mod:`postroom.store.addresses` and the option sets of
:mod:`postroom.settings.objects` before anything is written, and every change runs in
one ``BEGIN IMMEDIATE`` transaction, so a refused call changes nothing.

The parts are mixins over :class:`~.rows.DirectoryRows` rather than separate objects
because the contract (``postroom.store.directory.Directory``) is one flat interface
and every part needs the same store, lookups and records; what one part does to
another's rows (a deleted mailbox leaves the address map and its groups) goes through
plain functions taking the connection, so it joins the caller's transaction.

Known limits: a post office's or domain's records are re-read on every call (no cache);
fine for administration and logins, callers on hot paths should cache.
"""

from __future__ import annotations

from postroom.store.backends.sqlite.directory.address_map import AddressMap
from postroom.store.backends.sqlite.directory.domains import Domains
from postroom.store.backends.sqlite.directory.groups import Groups
from postroom.store.backends.sqlite.directory.lists import Lists
from postroom.store.backends.sqlite.directory.mailboxes import Mailboxes
from postroom.store.backends.sqlite.directory.pop_retrieval import PopRetrievals
from postroom.store.backends.sqlite.directory.postoffices import PostOffices
from postroom.store.backends.sqlite.directory.public_root import PublicRoot

__all__ = ["SqliteDirectory"]


class SqliteDirectory(PostOffices, Domains, Mailboxes, AddressMap, Groups, Lists,
                      PopRetrievals, PublicRoot):
    """Post offices, domains, mailboxes, the address map, groups, lists, POP retrieval,
    the hidden public folder mailbox."""
