"""`postroom address ...` and `postroom group ...`: the address map and groups."""

from __future__ import annotations

from tests.cli.helpers import PASSWORD, flat, setup_postoffice


def test_address_add_list_delete(cli) -> None:
    setup_postoffice(cli)
    cli("mailbox", "create", "bob@example", "--password", PASSWORD)
    added = cli("address", "add", "Robert@Example.COM", "bob@example", "--json").json()
    assert added["address"].lower() == "[smtp:robert@example.com]"
    assert added["target"] == "[SF:example/bob]"
    cli("address", "add", "[SMTP:bobby@example.com]", "[SF:example/bob]")
    cli("address", "add", "*@example.com", "bob@example")
    listed = cli("address", "list", "--postoffice", "example", "--json").json()
    assert {a["display"].lower() for a in listed} >= {
        "robert@example.com", "bobby@example.com", "bob@example.com", "*@example.com"}
    by_target = cli("address", "list", "--target", "bob@example", "--json").json()
    assert len(by_target) == len(listed)
    assert "robert@example.com" in cli("address", "list").stdout.lower()
    cli("address", "delete", "robert@example.com")
    remaining = {a["display"].lower() for a in cli("address", "list", "--json").json()}
    assert "robert@example.com" not in remaining
    assert "bob@example.com" in remaining


def test_address_bad_input(cli) -> None:
    setup_postoffice(cli)
    cli("mailbox", "create", "bob@example", "--password", PASSWORD)
    # bob@example.com was mapped when the mailbox was made (one address per domain)
    before = cli("address", "list", "--json").json()
    # not an address, bad domain, duplicate, target without @PO, unknown post office
    out = cli("address", "add", "not-an-address", "bob@example", expect=2)
    assert "address" in flat(out.stderr)
    cli("address", "add", "x@-bad-.com", "bob@example", expect=2)
    cli("address", "add", "bob@example.com", "bob@example", expect=2)
    out = cli("address", "add", "new@example.com", "bob", expect=2)
    assert "target" in flat(out.stderr)
    cli("address", "add", "new@example.com", "bob@nowhere", expect=2)
    cli("address", "add", "[SMTP:broken", "bob@example", expect=2)
    cli("address", "list", "--postoffice", "nowhere", expect=2)
    cli("address", "delete", "ghost@example.com", expect=2)
    assert cli("address", "list", "--json").json() == before


def test_idn_address_displayed_in_unicode(cli) -> None:
    setup_postoffice(cli, "books", "bücher.de")
    cli("mailbox", "create", "anna@books", "--password", PASSWORD)
    added = cli("address", "add", "Änne@bücher.de", "anna@books", "--json").json()
    assert added["address"] == "[SMTP:Änne@xn--bcher-kva.de]"
    assert added["display"] == "Änne@bücher.de"
    shown = cli("mailbox", "show", "anna@books", "--json").json()["addresses"]
    assert set(shown) == {"anna@bücher.de", "Änne@bücher.de"}


def test_group_lifecycle(cli) -> None:
    setup_postoffice(cli)
    cli("mailbox", "create", "ann@example", "--password", PASSWORD)
    cli("mailbox", "create", "bob@example", "--password", PASSWORD)
    created = cli("group", "create", "staff@example", "--address", "staff@example.com",
                  "--json").json()
    assert created["address"] == "[SF:example/staff]"
    cli("group", "add-member", "staff@example", "ann@example")
    cli("group", "add-member", "staff@example", "[SF:example/bob]")
    cli("group", "add-member", "staff@example", "friend@elsewhere.org")
    shown = cli("group", "show", "staff@example", "--json").json()
    assert {m.lower() for m in shown["members"]} == {
        "[sf:example/ann]", "[sf:example/bob]", "[smtp:friend@elsewhere.org]"}
    assert [a.lower() for a in shown["addresses"]] == ["staff@example.com"]
    assert [g["name"] for g in cli("group", "list", "example", "--json").json()] == ["staff"]
    cli("group", "remove-member", "staff@example", "bob@example")
    members = cli("group", "show", "staff@example", "--json").json()["members"]
    assert "[sf:example/bob]" not in {m.lower() for m in members}
    assert "staff" in cli("group", "list", "example").stdout
    cli("group", "delete", "staff@example")
    assert cli("group", "list", "example", "--json").json() == []


def test_group_bad_input_changes_nothing(cli) -> None:
    setup_postoffice(cli)
    cli("group", "create", "staff@example")
    cli("group", "create", "staff@example", expect=2)
    cli("group", "create", "team@nowhere", expect=2)
    # a bad address means no group either
    cli("group", "create", "team@example", "--address", "not an address", expect=2)
    # an address that is already taken: the group is not created either
    cli("mailbox", "create", "bob@example", "--password", PASSWORD)
    cli("group", "create", "team@example", "--address", "team@example.com",
        "--address", "bob@example.com", expect=2)
    assert cli("address", "list", "--target", "[SF:example/team]", "--json").json() == []
    assert [g["name"] for g in cli("group", "list", "example", "--json").json()] == ["staff"]
    cli("group", "add-member", "ghost@example", "ann@example", expect=2)
    cli("group", "add-member", "staff@example", "[broken", expect=2)
    cli("group", "show", "ghost@example", expect=2)
    cli("group", "delete", "ghost@example", expect=2)
    assert cli("group", "show", "staff@example", "--json").json()["members"] == []
