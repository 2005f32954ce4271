"""`postroom list ...`: mailing lists (manual 5.7)."""

from __future__ import annotations

from tests.cli.helpers import flat, setup_postoffice


def test_list_lifecycle(cli) -> None:
    setup_postoffice(cli)
    created = cli("list", "create", "news@example", "--json").json()
    assert created["address"] == "[LS:example/news]"
    assert "created list talk@example" in cli("list", "create", "talk@example").stdout
    cli("address", "add", "news@example.com", "[LS:example/news]")
    listed = cli("list", "list", "example", "--json").json()
    assert {entry["name"] for entry in listed} == {"news", "talk"}
    shown = cli("list", "show", "news@example", "--json").json()
    assert [a.lower() for a in shown["addresses"]] == ["news@example.com"]
    assert isinstance(shown["options"], dict)
    assert "news" in cli("list", "list", "example").stdout
    cli("list", "delete", "talk@example")
    assert [e["name"] for e in cli("list", "list", "example", "--json").json()] == ["news"]


def test_list_options(cli) -> None:
    setup_postoffice(cli)
    cli("list", "create", "news@example", "--option", "disabled=true")
    assert cli("list", "show", "news@example", "--json").json()["options"]["disabled"] is True
    cli("list", "set", "news@example", "disabled=false")
    before = cli("list", "show", "news@example", "--json").json()
    assert before["options"]["disabled"] is False
    out = cli("list", "set", "news@example", "disabled=perhaps", expect=2)
    assert "disabled" in flat(out.stderr)
    cli("list", "set", "news@example", "no_such_option=1", expect=2)
    assert cli("list", "show", "news@example", "--json").json() == before


def test_list_bad_input(cli) -> None:
    setup_postoffice(cli)
    cli("list", "create", "news@example")
    cli("list", "create", "news@example", expect=2)
    cli("list", "create", "news@nowhere", expect=2)
    out = cli("list", "create", "news", expect=2)
    assert "NAME@POSTOFFICE" in flat(out.stderr)
    cli("list", "create", "x@example", "--option", "disabled=maybe", expect=2)
    cli("list", "list", "nowhere", expect=2)
    cli("list", "show", "ghost@example", expect=2)
    cli("list", "delete", "ghost@example", expect=2)
    assert [e["name"] for e in cli("list", "list", "example", "--json").json()] == ["news"]
