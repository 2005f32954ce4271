"""Address, domain and name syntax (postroom.store.addresses)."""

from __future__ import annotations

import pytest

from postroom.store.addresses import (
    AddressError,
    ascii_domain,
    check_group_name,
    check_object_name,
    check_postoffice_name,
    display_address,
    normalise_smtp,
    parse_connector,
    parse_email,
    unicode_domain,
)
from postroom.store.directory import DirectoryError


def test_idn_round_trip() -> None:
    assert ascii_domain("bücher.example") == "xn--bcher-kva.example"
    assert ascii_domain("BÜCHER.Example.") == "xn--bcher-kva.example"
    assert unicode_domain("xn--bcher-kva.example") == "bücher.example"
    assert ascii_domain("Example.COM") == "example.com"


@pytest.mark.parametrize("bad", ["", " ", "exa mple.com", "a..b", ".example.com", "under_score.com",
                                 "x" * 64 + ".com", "localhost", "-lead.example", "example.123",
                                 ("a" * 60 + ".") * 5 + "com"])
def test_bad_domains_are_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(AddressError) as info:
        ascii_domain(bad, "domain")
    assert info.value.field == "domain"
    assert isinstance(info.value, DirectoryError)


def test_parse_email_and_connector_forms() -> None:
    assert parse_email("Bob@Bücher.Example") == ("Bob", "xn--bcher-kva.example")
    assert normalise_smtp("bob@example.com") == "[SMTP:bob@example.com]"
    assert normalise_smtp(" [smtp:bob@EXAMPLE.com] ") == "[SMTP:bob@example.com]"
    assert normalise_smtp("*@example.com", allow_catch_all=True) == "[SMTP:*@example.com]"
    sf = parse_connector("[SF:example/bob]")
    assert (sf.connector, sf.postoffice, sf.name) == ("SF", "example", "bob")
    assert str(parse_connector("[ls:example/news]")) == "[LS:example/news]"
    assert display_address("[SMTP:bob@xn--bcher-kva.example]") == "bob@bücher.example"


@pytest.mark.parametrize("bad", ["bob", "@example.com", "bob@", "bo b@example.com",
                                 ".bob@example.com", "bob..x@example.com", "b(o)b@example.com",
                                 "*@example.com", "[SMTP:bob]", "[XX:bob@example.com]",
                                 "[SF:example]", "[SF:/bob]", "[SMTP:bob@example.com",
                                 "x" * 65 + "@example.com"])
def test_bad_addresses_are_refused(bad: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_connector(bad, "address")
    assert info.value.field == "address"


def test_names() -> None:
    assert check_postoffice_name("example.com") == "example.com"
    assert check_object_name("first.last-1_x") == "first.last-1_x"
    assert check_group_name("staff@example.com") == "staff@example.com"
    for bad in (".hidden", "a b", "", "x" * 65, "a/b"):
        with pytest.raises(AddressError):
            check_postoffice_name(bad)
    for bad in ("bob+news", "bob@x", ".bob", "bob.", "a..b", "bö", "", "x" * 65):
        with pytest.raises(AddressError):
            check_object_name(bad)
