"""`postroom mailbox ...`: create, list, show, set, passwd, delete."""

from __future__ import annotations

from tests.cli.helpers import PASSWORD, flat, names, setup_postoffice


def test_create_with_password_and_login(cli, store) -> None:
    setup_postoffice(cli)
    out = cli("mailbox", "create", "bob@example", "--password", PASSWORD, "--quota", "100")
    assert "created mailbox bob@example" in out.stdout
    assert PASSWORD not in out.stdout
    box = cli("mailbox", "show", "bob@example", "--json").json()
    assert box["quota_mb"] == 100
    assert box["quota_bytes"] == 100 * 1024 * 1024
    assert box["type"] == "USER"
    assert box["used_mb"] == 0
    assert store.directory.authenticate("bob@example", PASSWORD) is not None
    assert store.directory.authenticate("bob@example", "wrong-Passw0rd") is None


def test_random_password_printed_once_and_works(cli, store) -> None:
    setup_postoffice(cli)
    out = cli("mailbox", "create", "ann@example", "--random-password")
    password = out.stdout.split("password:", 1)[1].split()[0]
    assert store.directory.authenticate("ann@example", password) is not None
    created = cli("mailbox", "create", "cyd@example", "--random-password", "--json").json()
    assert store.directory.authenticate("cyd@example", created["password"]) is not None
    assert "password" not in cli("mailbox", "show", "cyd@example", "--json").json()


def test_password_choice_required(cli) -> None:
    setup_postoffice(cli)
    out = cli("mailbox", "create", "bob@example", expect=2)
    assert "password" in flat(out.stderr)
    out = cli("mailbox", "create", "bob@example", "--password", PASSWORD,
              "--random-password", expect=2)
    assert "password" in flat(out.stderr)
    assert cli("mailbox", "list", "example", "--json").json() == []


def test_weak_password_refused(cli) -> None:
    setup_postoffice(cli)
    out = cli("mailbox", "create", "bob@example", "--password", "short", expect=2)
    assert "password" in flat(out.stderr)
    assert cli("mailbox", "list", "example", "--json").json() == []


def test_type_and_options(cli) -> None:
    setup_postoffice(cli)
    cli("mailbox", "create", "boss@example", "--password", PASSWORD, "--type", "admin",
        "--option", "disabled=true")
    box = cli("mailbox", "show", "boss@example", "--json").json()
    assert box["type"] == "ADMIN"
    assert box["disabled"] is True
    out = cli("mailbox", "create", "x@example", "--password", PASSWORD, "--type", "KING",
              expect=2)
    assert "type" in flat(out.stderr)
    out = cli("mailbox", "create", "y@example", "--password", PASSWORD,
              "--option", "disabled=maybe", expect=2)
    assert "disabled" in flat(out.stderr)
    assert names(cli("mailbox", "list", "example", "--json").json()) == {"boss"}


def test_bad_input_changes_nothing(cli) -> None:
    setup_postoffice(cli)
    cli("mailbox", "create", "bob@example", "--password", PASSWORD)
    # duplicate (names are case-insensitive)
    cli("mailbox", "create", "BOB@example", "--password", PASSWORD, expect=2)
    # unknown post office, missing @PO, negative quota, bad quota
    cli("mailbox", "create", "bob@nowhere", "--password", PASSWORD, expect=2)
    out = cli("mailbox", "create", "bob", "--password", PASSWORD, expect=2)
    assert "NAME@POSTOFFICE" in flat(out.stderr)
    out = cli("mailbox", "create", "neg@example", "--password", PASSWORD, "--quota", "-1",
              expect=2)
    assert "quota" in flat(out.stderr) and "negative" in flat(out.stderr)
    out = cli("mailbox", "create", "neg@example", "--password", PASSWORD, "--quota", "big",
              expect=2)
    assert "quota" in flat(out.stderr)
    assert names(cli("mailbox", "list", "example", "--json").json()) == {"bob"}


def test_list_and_show(cli) -> None:
    setup_postoffice(cli)
    cli("mailbox", "create", "bob@example", "--password", PASSWORD, "--quota", "unlimited")
    cli("address", "add", "robert@example.com", "bob@example")
    listed = cli("mailbox", "list", "example", "--json").json()
    assert listed[0]["login"] == "bob@example"
    assert listed[0]["quota_mb"] is None
    # bob@example.com comes with the mailbox (one address per domain), robert@ was added
    assert set(listed[0]["addresses"]) == {"bob@example.com", "robert@example.com"}
    shown = cli("mailbox", "show", "bob@example", "--json").json()
    assert "robert@example.com" in shown["addresses"]
    assert isinstance(shown["options"], dict)
    assert "bob@example" in cli("mailbox", "list", "example").stdout
    assert "robert@example.com" in cli("mailbox", "show", "bob@example").stdout
    cli("mailbox", "show", "ghost@example", expect=2)


def test_set_quota_type_and_options(cli) -> None:
    setup_postoffice(cli)
    cli("mailbox", "create", "bob@example", "--password", PASSWORD, "--quota", "10")
    cli("mailbox", "set", "bob@example", "--quota", "20", "--type", "SYSADMIN")
    box = cli("mailbox", "show", "bob@example", "--json").json()
    assert (box["quota_mb"], box["type"]) == (20, "SYSADMIN")
    cli("mailbox", "set", "bob@example", "disabled=true")
    assert cli("mailbox", "show", "bob@example", "--json").json()["disabled"] is True
    cli("mailbox", "set", "bob@example", "--quota", "0.5")
    assert cli("mailbox", "show", "bob@example", "--json").json()["quota_bytes"] == 512 * 1024
    before = cli("mailbox", "show", "bob@example", "--json").json()
    cli("mailbox", "set", "bob@example", "--quota", "-4", expect=2)
    cli("mailbox", "set", "bob@example", "--type", "nobody", expect=2)
    cli("mailbox", "set", "bob@example", "disabled=never", expect=2)
    cli("mailbox", "set", "bob@example", "disabled=false", "--quota", "-4", expect=2)
    out = cli("mailbox", "set", "bob@example", expect=2)
    assert "nothing to change" in flat(out.stderr)
    cli("mailbox", "set", "ghost@example", "--quota", "4", expect=2)
    assert cli("mailbox", "show", "bob@example", "--json").json() == before


def test_passwd(cli, store) -> None:
    setup_postoffice(cli)
    cli("mailbox", "create", "bob@example", "--password", PASSWORD)
    cli("mailbox", "passwd", "bob@example", "--password", "N3w-secret-pass")
    assert store.directory.authenticate("bob@example", "N3w-secret-pass") is not None
    assert store.directory.authenticate("bob@example", PASSWORD) is None
    out = cli("mailbox", "passwd", "bob@example", "--random-password")
    password = out.stdout.split("password:", 1)[1].split()[0]
    assert store.directory.authenticate("bob@example", password) is not None
    cli("mailbox", "passwd", "bob@example", "--password", "weak", expect=2)
    cli("mailbox", "passwd", "bob@example", expect=2)
    cli("mailbox", "passwd", "ghost@example", "--password", PASSWORD, expect=2)
    assert store.directory.authenticate("bob@example", password) is not None


def test_delete(cli) -> None:
    setup_postoffice(cli)
    cli("mailbox", "create", "bob@example", "--password", PASSWORD)
    cli("address", "add", "robert@example.com", "bob@example")
    cli("mailbox", "delete", "bob@example")
    assert cli("mailbox", "list", "example", "--json").json() == []
    assert cli("address", "list", "--target", "bob@example", "--json").json() == []
    cli("mailbox", "delete", "bob@example", expect=2)
