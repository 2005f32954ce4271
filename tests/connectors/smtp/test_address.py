"""Envelope path parsing (RFC 5321 §4.1.2, RFC 6531): what a client may put in <>."""

from __future__ import annotations

import ipaddress

import pytest

from postroom.connectors.smtp.address import (
    AddressError,
    parse_forward_path,
    parse_reverse_path,
    split_path,
)


@pytest.mark.parametrize(
    ("text", "local", "domain"),
    [
        ("<bob@example.org>", "bob", "example.org"),
        ("<Bob.Smith+tag@Mail.Example.ORG>", "Bob.Smith+tag", "Mail.Example.ORG"),
        ("<!#$%&'*+-/=?^_`{|}~@x.example>", "!#$%&'*+-/=?^_`{|}~", "x.example"),
        ('<"john doe"@example.org>', "john doe", "example.org"),
        ('<"a\\"b\\\\c"@example.org>', 'a"b\\c', "example.org"),
        ('<"a@b>c"@example.org>', "a@b>c", "example.org"),
        ("<user@xn--bcher-kva.example>", "user", "xn--bcher-kva.example"),
        ("<user@localhost>", "user", "localhost"),
    ],
)
def test_valid_mailboxes(text: str, local: str, domain: str) -> None:
    path = parse_reverse_path(text)
    assert (path.local, path.domain) == (local, domain)
    assert not path.is_null and not path.is_literal and path.source_route == ()


def test_quoted_local_part_round_trips_through_address() -> None:
    path = parse_forward_path('<"john doe"@example.org>')
    assert path.quoted
    assert path.address == '"john doe"@example.org'
    assert parse_forward_path(f"<{path.address}>").local == "john doe"


def test_null_reverse_path_is_allowed_only_for_mail() -> None:
    assert parse_reverse_path("<>").is_null
    with pytest.raises(AddressError):
        parse_forward_path("<>")


def test_postmaster_without_domain_only_for_rcpt() -> None:
    path = parse_forward_path("<Postmaster>")
    assert path.is_postmaster and path.domain == ""
    with pytest.raises(AddressError):
        parse_reverse_path("<postmaster>")


def test_source_route_is_parsed_and_reported() -> None:
    path = parse_forward_path("<@relay1.example,@relay2.example:user@final.example>")
    assert path.source_route == ("relay1.example", "relay2.example")
    assert (path.local, path.domain) == ("user", "final.example")
    assert path.raw == "@relay1.example,@relay2.example:user@final.example"


@pytest.mark.parametrize(
    ("text", "ip"),
    [
        ("<user@[192.0.2.1]>", ipaddress.ip_address("192.0.2.1")),
        ("<user@[IPv6:2001:db8::1]>", ipaddress.ip_address("2001:db8::1")),
    ],
)
def test_address_literals(text: str, ip: object) -> None:
    path = parse_forward_path(text)
    assert path.is_literal and path.literal_ip == ip


def test_percent_hack_and_bang_paths_are_flagged_for_the_relay_policy() -> None:
    assert parse_forward_path("<victim%elsewhere.example@us.example>").has_percent_hack
    assert parse_forward_path("<elsewhere!victim@us.example>").has_bang_path
    plain = parse_forward_path("<victim@us.example>")
    assert not plain.has_percent_hack and not plain.has_bang_path


@pytest.mark.parametrize(
    "text",
    [
        "bob@example.org",  # no brackets
        "<bob@example.org",
        "<bob>",  # no domain
        "<@example.org>",
        "<bob@>",
        "<.bob@example.org>",
        "<bob.@example.org>",
        "<bo..b@example.org>",
        "<bob@exa mple.org>",
        "<bob@-example.org>",
        "<bob@example-.org>",
        "<bob@example..org>",
        '<"bob@example.org>',  # unbalanced quote
        "<bob@[192.0.2.300]>",
        "<bob@[IPv6:zz::1]>",
        "<bob@[192.0.2.1>",
        "<bob\r@example.org>",
        "<bob\n@example.org>",
        "<bob\x00@example.org>",
        "<bob\x7f@example.org>",
        "<b<o>b@example.org>",
        "<@relay.example:>",
        "<relay.example:user@final.example>",
        "<a@b@example.org>",
        "<" + "a" * 10 + "@" + ("x" * 63 + ".") * 5 + "org>",  # domain over 255
        "<bob@" + "x" * 64 + ".org>",  # label over 63
    ],
)
def test_malformed_paths_are_refused(text: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_forward_path(text)
    assert info.value.reason == "syntax"


@pytest.mark.parametrize("text", ["<jösé@example.org>", "<user@bücher.example>"])
def test_utf8_needs_smtputf8(text: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_forward_path(text)
    assert info.value.reason == "utf8"
    path = parse_forward_path(text, smtputf8=True)
    assert path.is_utf8


def test_smtputf8_u_labels_are_checked_with_idna() -> None:
    assert parse_forward_path("<用户@例子.广告>", smtputf8=True).domain == "例子.广告"
    with pytest.raises(AddressError):
        parse_forward_path("<user@a\u200db.example>", smtputf8=True)  # ZWJ: not IDNA 2008


def test_c1_controls_are_refused_even_with_smtputf8() -> None:
    with pytest.raises(AddressError):
        parse_forward_path("<bob\x85@example.org>", smtputf8=True)


@pytest.mark.parametrize(
    ("text", "path", "rest"),
    [
        ("<a@b.example> SIZE=10", "<a@b.example>", " SIZE=10"),
        ('<"x>y"@b.example> BODY=8BITMIME', '<"x>y"@b.example>', " BODY=8BITMIME"),
        ("<>", "<>", ""),
    ],
)
def test_split_path_is_quote_aware(text: str, path: str, rest: str) -> None:
    assert split_path(text) == (path, rest)


@pytest.mark.parametrize("text", ["a@b.example", "<a@b.example", '<"a@b.example>', "<a<b>"])
def test_split_path_refuses_unbalanced_input(text: str) -> None:
    with pytest.raises(AddressError):
        split_path(text)
