"""Folder ACLs (RFC 4314), the hidden public folder mailbox and copies between mailboxes:
what the IMAP public folders rely on from the store."""

from __future__ import annotations

import pytest

from postroom.store import Store
from postroom.store.acl import AclError, apply, parse_rights, shown
from postroom.store.directory import PUBLIC_ROOT, DirectoryError
from tests.servers import PASSWORD
from tests.store.helpers import message


@pytest.fixture
def po(store: Store) -> Store:
    d = store.directory
    d.create_postoffice("example")
    d.create_mailbox("example", "bob", PASSWORD, type="ADMIN")
    d.create_mailbox("example", "alice", PASSWORD)
    d.public_root("example")
    store.messages.create_folder("example", PUBLIC_ROOT, "Sales")
    return store


def test_rights_strings() -> None:
    assert parse_rights("lrc") == ("", "lrkx")
    assert parse_rights("+d") == ("+", "te")
    assert parse_rights("-") == ("-", "")
    assert apply("lrswi", "-", "si") == "lrw"
    assert apply("lr", "+", "a") == "lra"
    assert shown("lrswipkxtea") == "lrswipkxteacd"
    assert shown("lrt") == "lrtd"
    with pytest.raises(AclError, match="'z' is not a right"):
        parse_rights("lz")


def test_public_folders_default_to_everyone_writing_and_admins_administering(
        po: Store) -> None:
    acl = po.acl
    assert acl.acl("example", PUBLIC_ROOT, "Sales") == {"anyone": "lrswipkxte",
                                                        "bob": "lrswipkxtea"}
    assert acl.rights("example", PUBLIC_ROOT, "Sales", "alice") == "lrswipkxte"
    assert acl.rights("example", PUBLIC_ROOT, "Sales", "BOB") == "lrswipkxtea"
    assert acl.rights_by_folder("example", PUBLIC_ROOT, "alice") == {"Sales": "lrswipkxte"}
    # Personal folders: the owner alone, always with every right.
    assert acl.acl("example", "alice", "Inbox") == {"alice": "lrswipkxtea"}
    assert acl.rights("example", "alice", "Inbox", "alice") == "lrswipkxtea"
    assert acl.rights("example", "alice", "Inbox", "bob") == ""


def test_changes_write_out_the_defaults_and_never_fall_back_to_them(po: Store) -> None:
    acl = po.acl
    acl.set_rights("example", PUBLIC_ROOT, "Sales", "alice", "lr")
    assert acl.acl("example", PUBLIC_ROOT, "Sales") == {
        "anyone": "lrswipkxte", "alice": "lr", "bob": "lrswipkxtea"}
    for ident in ("anyone", "alice", "bob"):
        acl.delete_rights("example", PUBLIC_ROOT, "Sales", ident)
    assert acl.acl("example", PUBLIC_ROOT, "Sales") == {}
    assert acl.rights("example", PUBLIC_ROOT, "Sales", "bob") == ""
    acl.set_rights("example", PUBLIC_ROOT, "Sales", "Alice", "lrs")
    assert acl.acl("example", PUBLIC_ROOT, "Sales") == {"alice": "lrs"}


def test_identifiers_are_mailboxes_of_the_same_post_office(po: Store) -> None:
    po.directory.create_postoffice("other")
    po.directory.create_mailbox("other", "carol", PASSWORD)
    acl = po.acl
    assert acl.check_identifier("example", "ANYONE") == "anyone"
    assert acl.check_identifier("example", "ALICE") == "alice"
    for bad in ("carol", PUBLIC_ROOT, "-alice", ""):
        with pytest.raises(AclError):
            acl.check_identifier("example", bad)
    with pytest.raises(AclError, match="rights"):
        acl.set_rights("example", PUBLIC_ROOT, "Sales", "alice", "lz")


def test_acl_follows_the_folder_and_forgets_deleted_mailboxes(po: Store) -> None:
    acl = po.acl
    acl.set_rights("example", PUBLIC_ROOT, "Sales", "alice", "lr")
    po.messages.rename_folder("example", PUBLIC_ROOT, "Sales", "Sales 2026")
    assert acl.acl("example", PUBLIC_ROOT, "Sales 2026")["alice"] == "lr"
    po.directory.delete_mailbox("example", "alice")
    po.directory.create_mailbox("example", "alice", PASSWORD)
    assert "alice" not in acl.acl("example", PUBLIC_ROOT, "Sales 2026")
    po.messages.delete_folder("example", PUBLIC_ROOT, "Sales 2026")
    po.messages.create_folder("example", PUBLIC_ROOT, "Sales 2026")
    assert po.conn.execute("SELECT COUNT(*) FROM folder_acl").fetchone()[0] == 0


def test_subscriptions_of_public_folders_are_per_mailbox(po: Store) -> None:
    acl = po.acl
    assert acl.subscribed("example", PUBLIC_ROOT, "alice") == {"Sales"}
    acl.set_subscribed("example", PUBLIC_ROOT, "Sales", "alice", False)
    assert acl.subscribed("example", PUBLIC_ROOT, "alice") == set()
    assert acl.subscribed("example", PUBLIC_ROOT, "bob") == {"Sales"}
    acl.set_subscribed("example", PUBLIC_ROOT, "Sales", "alice", True)
    assert acl.subscribed("example", PUBLIC_ROOT, "alice") == {"Sales"}


def test_the_public_root_is_hidden_and_cannot_log_in(po: Store) -> None:
    d = po.directory
    assert d.public_root("example").id == d.public_root("example").id
    assert [b.name for b in d.list_mailboxes("example")] == ["alice", "bob"]
    assert d.find_login(f"{PUBLIC_ROOT}@example") is None
    assert d.authenticate(f"{PUBLIC_ROOT}@example", "") is None
    with pytest.raises(DirectoryError):
        d.create_mailbox("example", PUBLIC_ROOT, PASSWORD)
    d.create_postoffice("empty")
    d.public_root("empty")
    d.delete_postoffice("empty")                 # no user mailboxes: no --force needed


def test_copy_and_move_into_another_mailbox_charge_the_target(po: Store) -> None:
    m = po.messages
    uid = m.append("example", "alice", "Inbox", message(1, 1000)).uid
    m.append("example", "alice", "Inbox", message(2, 2000))
    assert m.copy("example", "alice", "Inbox", [uid], "Sales", PUBLIC_ROOT) == {1: 1}
    assert m.usage("example", "alice") == (3000, 2)
    assert m.usage("example", PUBLIC_ROOT) == (1000, 1)
    assert m.move("example", "alice", "Inbox", [2], "Sales", PUBLIC_ROOT) == {2: 2}
    assert m.usage("example", "alice") == (1000, 1)
    assert m.usage("example", PUBLIC_ROOT) == (3000, 2)
    assert m.read("example", PUBLIC_ROOT, "Sales", 2) == message(2, 2000)
    with pytest.raises(Exception, match="target"):
        m.copy("example", "alice", "Inbox", [1], "Nowhere", PUBLIC_ROOT)


def test_shared_with_lists_what_others_granted(po: Store) -> None:
    po.directory.create_postoffice("other")
    po.directory.create_mailbox("other", "carol", PASSWORD)
    acl = po.acl
    assert acl.shared_with("example", "alice") == {}
    acl.set_rights("example", "bob", "Drafts", "alice", "lr")
    acl.set_rights("example", "bob", "Drafts", "anyone", "s")
    acl.set_rights("example", "bob", "Inbox", "anyone", "")
    acl.set_rights("example", PUBLIC_ROOT, "Sales", "alice", "lr")     # public: not "shared"
    assert acl.shared_with("example", "alice") == {("bob", "Drafts"): "lrs"}
    assert acl.shared_with("example", "bob") == {}                      # his own
    assert acl.shared_with("other", "carol") == {}
    assert acl.rights("example", "bob", "Drafts", "alice") == "lrs"
    assert acl.acl("example", "bob", "Drafts") == {"bob": "lrswipkxtea", "anyone": "s",
                                                   "alice": "lr"}
