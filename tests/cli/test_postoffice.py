"""`postroom postoffice ...`: create, list, show, set, delete, set-quota, delete-messages."""

from __future__ import annotations

import time

from tests.cli.helpers import PASSWORD, flat, names, setup_postoffice


def test_create_list_show(cli) -> None:
    assert cli("postoffice", "list", "--json").json() == []
    out = cli("postoffice", "create", "example")
    assert "created post office example" in out.stdout
    created = cli("postoffice", "create", "other", "--json").json()
    assert created["name"] == "other"
    assert names(cli("postoffice", "list", "--json").json()) == {"example", "other"}
    cli("domain", "create", "example.com", "--postoffice", "example")
    cli("mailbox", "create", "bob@example", "--password", PASSWORD)
    shown = cli("postoffice", "show", "example", "--json").json()
    assert shown["name"] == "example"
    assert shown["domains"] == ["example.com"]
    assert shown["mailboxes"] == 1
    assert shown["used_mb"] == 0
    assert isinstance(shown["options"], dict)
    table = cli("postoffice", "list").stdout
    assert "example" in table and "other" in table


def test_duplicate_postoffice_refused(cli) -> None:
    cli("postoffice", "create", "example")
    out = cli("postoffice", "create", "example", expect=2)
    assert "error" in out.stderr
    out = cli("postoffice", "create", "EXAMPLE", expect=2)
    assert names(cli("postoffice", "list", "--json").json()) == {"example"}


def test_unknown_postoffice(cli) -> None:
    cli("postoffice", "show", "nowhere", expect=2)
    cli("postoffice", "set", "nowhere", "disabled=true", expect=2)
    cli("postoffice", "delete", "nowhere", expect=2)
    cli("mailbox", "list", "nowhere", expect=2)
    assert cli("postoffice", "list", "--json").json() == []


def test_set_options(cli) -> None:
    cli("postoffice", "create", "example")
    cli("postoffice", "set", "example", "disabled=true")
    assert cli("postoffice", "show", "example", "--json").json()["options"]["disabled"] is True
    cli("postoffice", "set", "example", "disabled=no")
    assert cli("postoffice", "show", "example", "--json").json()["options"]["disabled"] is False


def test_set_bad_option_changes_nothing(cli) -> None:
    cli("postoffice", "create", "example")
    before = cli("postoffice", "show", "example", "--json").json()
    out = cli("postoffice", "set", "example", "disabled=perhaps", expect=2)
    assert "disabled" in flat(out.stderr)
    out = cli("postoffice", "set", "example", "no_such_option=1", expect=2)
    assert "no_such_option" in flat(out.stderr)
    out = cli("postoffice", "set", "example", "disabled", expect=2)
    assert "KEY=VALUE" in flat(out.stderr)
    # Several assignments: one bad one means none is applied.
    cli("postoffice", "set", "example", "disabled=true", "default_quota_mb=-5", expect=2)
    assert cli("postoffice", "show", "example", "--json").json() == before


def test_create_with_option_and_bad_option(cli) -> None:
    cli("postoffice", "create", "example", "--option", "disabled=true")
    assert cli("postoffice", "show", "example", "--json").json()["options"]["disabled"] is True
    out = cli("postoffice", "create", "other", "--option", "disabled=maybe", expect=2)
    assert "disabled" in flat(out.stderr)
    assert names(cli("postoffice", "list", "--json").json()) == {"example"}


def test_delete_refused_with_mailboxes_unless_force(cli) -> None:
    setup_postoffice(cli)
    cli("mailbox", "create", "bob@example", "--password", PASSWORD)
    out = cli("postoffice", "delete", "example", expect=2)
    assert "force" in flat(out.stderr)
    assert names(cli("postoffice", "list", "--json").json()) == {"example"}
    assert len(cli("mailbox", "list", "example", "--json").json()) == 1
    cli("postoffice", "delete", "example", "--force")
    assert cli("postoffice", "list", "--json").json() == []
    assert cli("domain", "list", "--json").json() == []


def test_delete_empty_postoffice(cli) -> None:
    cli("postoffice", "create", "empty")
    out = cli("postoffice", "delete", "empty")
    assert "deleted" in out.stdout
    assert cli("postoffice", "list", "--json").json() == []


def test_set_quota_sets_every_mailbox_and_default(cli) -> None:
    setup_postoffice(cli)
    for name in ("ann", "bob", "cyd"):
        cli("mailbox", "create", f"{name}@example", "--password", PASSWORD, "--quota", "5")
    out = cli("postoffice", "set-quota", "example", "250")
    assert "3 mailbox" in out.stdout
    boxes = cli("mailbox", "list", "example", "--json").json()
    assert {b["quota_mb"] for b in boxes} == {250}
    assert cli("postoffice", "show", "example", "--json").json()["options"][
        "default_quota_mb"] == 250


def test_set_quota_bad_value_changes_nothing(cli) -> None:
    setup_postoffice(cli)
    cli("mailbox", "create", "ann@example", "--password", PASSWORD, "--quota", "5")
    for bad in ("-1", "lots", "nan"):
        out = cli("postoffice", "set-quota", "example", bad, expect=2)
        assert "quota" in flat(out.stderr)
    assert cli("mailbox", "list", "example", "--json").json()[0]["quota_mb"] == 5
    cli("postoffice", "set-quota", "nowhere", "10", expect=2)


def test_delete_messages(cli) -> None:
    setup_postoffice(cli)
    cli("mailbox", "create", "ann@example", "--password", PASSWORD)
    out = cli("postoffice", "delete-messages", "example", "--older-than", "30", "--json")
    assert out.json() == {"postoffice": "example", "deleted": 0}
    out = cli("postoffice", "delete-messages", "example", "--older-than", "1",
              "--folder", "Inbox")
    assert "deleted 0 message" in out.stdout


def test_delete_messages_bad_input(cli) -> None:
    setup_postoffice(cli)
    out = cli("postoffice", "delete-messages", "example", "--older-than", "-3", expect=2)
    assert "older-than" in flat(out.stderr)
    cli("postoffice", "delete-messages", "nowhere", "--older-than", "3", expect=2)
    cli("postoffice", "delete-messages", "example", "--older-than", "soon", expect=2)


def test_delete_messages_removes_only_old_ones(cli, store) -> None:
    setup_postoffice(cli)
    cli("mailbox", "create", "ann@example", "--password", PASSWORD)
    now = time.time()
    message = b"Subject: hi\r\n\r\nhello\r\n"
    store.messages.append("example", "ann", "Inbox", message, internal_date=now - 40 * 86400)
    store.messages.append("example", "ann", "Inbox", message, internal_date=now - 5 * 86400)
    store.messages.append("example", "ann", "Inbox", message, internal_date=now)
    shown = cli("mailbox", "show", "ann@example", "--json").json()
    inbox = next(f for f in shown["folders"] if f["name"] == "Inbox")
    assert inbox["messages"] == 3
    out = cli("postoffice", "delete-messages", "example", "--older-than", "30", "--json")
    assert out.json()["deleted"] == 1
    out = cli("postoffice", "delete-messages", "example", "--older-than", "1",
              "--folder", "Inbox", "--json")
    assert out.json()["deleted"] == 1
    assert cli("mailbox", "show", "ann@example", "--json").json()["messages"] == 1
