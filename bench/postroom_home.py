"""Postroom data directories for the benchmarks: made once, the same way for each.

Why: the POP3 and IMAP benchmarks each need a fresh data directory with one post
office, mailboxes that hold only the benchmark's messages, and a service listening in
plain text on one loopback port; the SMTP ones drive the ``postroom`` command. Made
here, a benchmark that compares Postroom with Dovecot or Postfix cannot drift from
another in how Postroom is set up. The store is imported only when a directory is
made, so ``--help`` works without the sources on the path.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from common import BenchError

if TYPE_CHECKING:
    from postroom.store import Store

PASSWORD = "Bench-Password-42!"
POSTOFFICE = "bench"


def postroom_cli(binary: str, home: Path, *args: str) -> str:
    """Run ``postroom --home HOME ARGS...``; its output, or :class:`BenchError`."""
    done = subprocess.run([binary, "--home", str(home), *args], capture_output=True,
                          text=True, timeout=120)
    if done.returncode:
        raise BenchError(f"postroom {' '.join(args)} failed ({done.returncode}): "
                         f"{(done.stderr or done.stdout).strip()[-1000:]}")
    return done.stdout


def init_postoffice(binary: str, home: Path, domain: str) -> None:
    """``postroom init`` a data directory with the post office ``benchpo`` hosting ``domain``."""
    postroom_cli(binary, home, "init", "--hostname", "postroom.bench.invalid")
    postroom_cli(binary, home, "postoffice", "create", "benchpo")
    postroom_cli(binary, home, "domain", "create", domain, "-p", "benchpo")


def set_settings(binary: str, home: Path, settings: dict[str, str]) -> None:
    """``postroom settings set KEY VALUE`` for each item, in order."""
    for key, value in settings.items():
        postroom_cli(binary, home, "settings", "set", key, value)


@contextmanager
def new_home(home: Path) -> Iterator[Store]:
    """A fresh data directory (host ``bench.test``) with the post office ``bench``, open."""
    from postroom.store import Store
    from postroom.store.initialise import initialise

    initialise(home, hostname="bench.test")
    with Store.open(home) as store:
        store.directory.create_postoffice(POSTOFFICE)
        yield store


def empty_mailbox(store: Store, name: str) -> None:
    """The mailbox ``name`` with :data:`PASSWORD`, without its welcome message."""
    store.directory.create_mailbox(POSTOFFICE, name, PASSWORD)
    welcome = [m.uid for m in store.messages.list_messages(POSTOFFICE, name, "Inbox")]
    if welcome:
        store.messages.expunge(POSTOFFICE, name, "Inbox", welcome)


def append_all(store: Store, mailbox: str, messages: list[bytes]) -> None:
    """Append ``messages`` to the Inbox in bulk (group commit) and wait for all of them."""
    futures = [store.messages.append_async(POSTOFFICE, mailbox, "Inbox", data)
               for data in messages]
    for future in futures:
        future.result()


def fill_mailboxes(store: Store, users: int, messages: int,
                   make_message: Callable[[int, int], bytes]) -> None:
    """Mailboxes ``u0``... each holding ``messages`` of ``make_message(user, n)``."""
    futures = []
    for user in range(users):
        empty_mailbox(store, f"u{user}")
        futures += [store.messages.append_async(POSTOFFICE, f"u{user}", "Inbox",
                                                make_message(user, n))
                    for n in range(messages)]
    for future in futures:
        future.result()


def listen_plain(store: Store, protocol: str, port: int) -> None:
    """``protocol`` (pop3 or imap) on 127.0.0.1:port only, plain-text logins allowed."""
    settings = store.settings
    settings.set(f"{protocol}.bind", ["127.0.0.1"])
    settings.set(f"{protocol}.port", port)
    settings.set(f"{protocol}.{protocol}s_port", 0)
    settings.set(f"{protocol}.security.allow_plaintext_auth_without_tls", True)
