"""`postroom domain ...`: domains of a post office, including internationalised names."""

from __future__ import annotations

from tests.cli.helpers import flat


def test_create_list_show_delete(cli) -> None:
    cli("postoffice", "create", "example")
    cli("postoffice", "create", "other")
    out = cli("domain", "create", "example.com", "--postoffice", "example")
    assert "created domain example.com in example" in out.stdout
    cli("domain", "create", "example.org", "-p", "other")
    everything = cli("domain", "list", "--json").json()
    assert {(d["name"], d["postoffice"]) for d in everything} == {
        ("example.com", "example"), ("example.org", "other")}
    only = cli("domain", "list", "--postoffice", "other", "--json").json()
    assert [d["name"] for d in only] == ["example.org"]
    shown = cli("domain", "show", "example.com", "--json").json()
    assert shown["postoffice"] == "example" and isinstance(shown["options"], dict)
    cli("domain", "delete", "example.org")
    assert [d["name"] for d in cli("domain", "list", "--json").json()] == ["example.com"]


def test_idn_shown_in_unicode(cli) -> None:
    cli("postoffice", "create", "books")
    created = cli("domain", "create", "Bücher.de", "--postoffice", "books", "--json").json()
    assert created["ascii"] == "xn--bcher-kva.de"
    listed = cli("domain", "list", "--json").json()
    assert listed[0]["name"] == "bücher.de"
    assert listed[0]["ascii"] == "xn--bcher-kva.de"
    assert "bücher.de" in cli("domain", "list").stdout
    # Either form finds it.
    assert cli("domain", "show", "xn--bcher-kva.de", "--json").json()["name"] == "bücher.de"
    cli("domain", "delete", "bücher.de")
    assert cli("domain", "list", "--json").json() == []


def test_bad_domains_refused(cli) -> None:
    cli("postoffice", "create", "example")
    for bad in ("-bad.com", "a..b", "exa mple.com", "x" * 64 + ".com"):
        out = cli("domain", "create", bad, "--postoffice", "example", expect=2)
        assert "domain" in flat(out.stderr)
    assert cli("domain", "list", "--json").json() == []


def test_duplicate_and_unknown_postoffice(cli) -> None:
    cli("postoffice", "create", "example")
    cli("postoffice", "create", "other")
    cli("domain", "create", "example.com", "--postoffice", "example")
    cli("domain", "create", "EXAMPLE.com", "--postoffice", "other", expect=2)
    cli("domain", "create", "example.net", "--postoffice", "nowhere", expect=2)
    cli("domain", "list", "--postoffice", "nowhere", expect=2)
    listed = cli("domain", "list", "--json").json()
    assert [(d["name"], d["postoffice"]) for d in listed] == [("example.com", "example")]
    cli("domain", "show", "example.net", expect=2)
    cli("domain", "delete", "example.net", expect=2)


def test_set_options(cli) -> None:
    cli("postoffice", "create", "example")
    cli("domain", "create", "example.com", "--postoffice", "example")
    cli("domain", "set", "example.com", "disabled=true")
    assert cli("domain", "show", "example.com", "--json").json()["options"]["disabled"] is True
    before = cli("domain", "show", "example.com", "--json").json()
    out = cli("domain", "set", "example.com", "disabled=sometimes", expect=2)
    assert "disabled" in flat(out.stderr)
    cli("domain", "set", "example.com", "bogus_key=1", expect=2)
    assert cli("domain", "show", "example.com", "--json").json() == before
