"""Secret per-object options are stored sealed; records carry them in clear.

Manual 5.4.4 (a domain's DKIM private key) and 5.7.4 (a list's posting password):
the options document in the database must not contain them in plain text, and a
sealed value is bound to its row and key.
"""

from __future__ import annotations

import json
import logging

import pytest

from postroom.store import Store

KEY = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
POSTING = "list-Pa55word"


@pytest.fixture
def po(store: Store) -> str:
    store.directory.create_postoffice("example")
    store.directory.create_domain("example.com", "example")
    return "example"


def raw(store: Store, table: str, name: str) -> str:
    return store.conn.execute(f"SELECT options FROM {table} WHERE name = ?",
                              (name,)).fetchone()[0]


def test_dkim_private_key_is_sealed_in_the_database(store: Store, po: str) -> None:
    d = store.directory
    updated = d.update_domain("example.com", {"dkim.private_key": KEY, "dkim.selector": "s1"})
    assert updated.options["dkim.private_key"] == KEY
    text = raw(store, "domain", "example.com")
    assert "PRIVATE KEY" not in text and "MIIEvQ" not in text
    assert '"$secret"' in text and '"s1"' in text          # other options stay readable
    assert d.get_domain("example.com").options["dkim.private_key"] == KEY
    assert d.list_domains(po)[0].options["dkim.private_key"] == KEY


def test_secret_given_on_creation_is_sealed(store: Store, po: str) -> None:
    d = store.directory
    created = d.create_domain("example.org", po, {"dkim.private_key": KEY})
    assert created.options["dkim.private_key"] == KEY
    assert "PRIVATE KEY" not in raw(store, "domain", "example.org")
    listed = d.create_list(po, "news", {"posting_password": POSTING,
                                        "posting_permissions": "password"})
    assert listed.options["posting_password"] == POSTING
    assert POSTING not in raw(store, "mail_list", "news")
    assert d.get_list(po, "news").options["posting_password"] == POSTING


def test_other_changes_keep_the_secret(store: Store, po: str) -> None:
    d = store.directory
    d.create_list(po, "news", {"posting_password": POSTING})
    d.update_list(po, "news", {"description": "News", "domain": "example.com"})
    assert d.get_list(po, "news").options["posting_password"] == POSTING
    d.delete_domain("example.com")     # rewrites the list's document (drops its domain)
    kept = d.get_list(po, "news")
    assert kept.options["posting_password"] == POSTING and kept.options["domain"] == ""
    assert POSTING not in raw(store, "mail_list", "news")
    d.update_list(po, "news", {"posting_password": None})
    assert d.get_list(po, "news").options["posting_password"] == ""
    assert "$secret" not in raw(store, "mail_list", "news")


def test_sealed_value_copied_to_another_row_does_not_open(
        store: Store, po: str, caplog: pytest.LogCaptureFixture) -> None:
    d = store.directory
    d.update_domain("example.com", {"dkim.private_key": KEY})
    d.create_domain("example.net", po, {"dkim.selector": "s2"})
    with store.transaction() as conn:
        conn.execute("UPDATE domain SET options = (SELECT options FROM domain WHERE name = "
                     "'example.com') WHERE name = 'example.net'")
    with caplog.at_level(logging.WARNING, logger="postroom.directory"):
        copied = d.get_domain("example.net")
    assert copied.options["dkim.private_key"] == ""
    assert "cannot be decrypted" in caplog.text
    # An unrelated change keeps the unreadable value as it was instead of dropping it.
    sealed = json.loads(raw(store, "domain", "example.net"))["dkim.private_key"]
    d.update_domain("example.net", {"dkim.selector": "s3"})
    after = json.loads(raw(store, "domain", "example.net"))
    assert after["dkim.private_key"] == sealed and after["dkim.selector"] == "s3"


def test_mailbox_type_is_a_column(store: Store, po: str) -> None:
    d = store.directory
    d.create_mailbox(po, "admin", "Corr3ct-Horse!", type="admin")
    row = store.conn.execute("SELECT type, options FROM mailbox WHERE name = 'admin'").fetchone()
    assert tuple(row) == ("ADMIN", "{}")
    assert d.update_mailbox(po, "admin", type="SYSADMIN").type == "SYSADMIN"
    assert d.update_mailbox(po, "admin", options={"disabled": True}).type == "SYSADMIN"
    assert d.find_login("admin@example").type == "SYSADMIN"
    assert store.conn.execute("SELECT type FROM mailbox").fetchone()[0] == "SYSADMIN"
