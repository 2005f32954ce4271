"""The shared \\Recent mark (RFC 3501 §2.3.2): each message is claimed as recent by
exactly one IMAP session, also when the sessions live in different processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from postroom.store import Store
from postroom.store.messages import MessageStoreError
from tests.store.helpers import make_mailbox, message


@pytest.fixture
def box(store: Store) -> Store:
    make_mailbox(store)
    return store


def test_claim_returns_the_previous_mark_and_only_rises(box: Store) -> None:
    messages = box.messages
    for n in range(1, 4):
        messages.append("example", "bob", "Inbox", message(n, 500))
    assert messages.recent_mark("example", "bob", "Inbox") == 0
    assert [f.recent for f in messages.list_folders("example", "bob")
            if f.name == "Inbox"] == [3]
    assert messages.claim_recent("example", "bob", "INBOX", 2) == 0      # gets UIDs 1, 2
    assert messages.claim_recent("example", "bob", "Inbox", 1) == 2      # nothing: lower
    assert messages.claim_recent("example", "bob", "Inbox", 99) == 2     # gets UID 3 only
    assert messages.recent_mark("example", "bob", "Inbox") == 3          # clamped to UIDs
    assert [f.recent for f in messages.list_folders("example", "bob")
            if f.name == "Inbox"] == [0]
    messages.append("example", "bob", "Inbox", message(4, 500))
    assert [f.recent for f in messages.list_folders("example", "bob")
            if f.name == "Inbox"] == [1]
    with pytest.raises(MessageStoreError, match="no folder"):
        messages.claim_recent("example", "bob", "Nowhere", 1)


_CLAIMER = """
import json, sys
from postroom.store import Store
store = Store.open(sys.argv[1])
got = []
for upto in range(1, int(sys.argv[2]) + 1):
    mark = store.messages.claim_recent("example", "bob", "Inbox", upto)
    got += range(mark + 1, upto + 1)
store.close()
print(json.dumps(got))
"""


def test_claims_from_several_processes_are_disjoint(box: Store, home: Path) -> None:
    count = 60
    for n in range(1, count + 1):
        box.messages.append("example", "bob", "Inbox", message(n, 300))
    procs = [subprocess.Popen([sys.executable, "-c", _CLAIMER, str(home), str(count)],
                              stdout=subprocess.PIPE, text=True) for _ in range(3)]
    claimed = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    everything = [uid for got in claimed for uid in got]
    assert sorted(everything) == list(range(1, count + 1))     # each UID exactly once
