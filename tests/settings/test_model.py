"""Parsing and validation of setting values, as an administrator types them."""

from __future__ import annotations

from typing import Any

import pytest

from postroom.net.dns import parse_nameserver
from postroom.settings.model import OptionError
from postroom.settings.server import SERVER

PARSED: list[tuple[str, str, Any]] = [
    ("smtp.general.tls_enabled", "true", True),
    ("smtp.general.tls_enabled", "Off", False),
    ("smtp.general.tls_enabled", " yes ", True),
    ("smtp.general.tls_enabled", "0", False),
    ("smtp.port", "2525", 2525),
    ("smtp.port", "0", 0),
    ("smtp.port", "65535", 65535),
    ("localhost.policies.password_min_length", "4", 4),
    ("localhost.policies.password_min_classes", "4", 4),
    ("smtp.delivery.delay_notifications", "every", "every"),
    ("smtp.delivery.delay_notifications", "EVERY", "every"),
    ("smtp.dnsbl.selected_lists", "zen.spamhaus.org, bl.example",
     ["zen.spamhaus.org", "bl.example"]),
    ("smtp.dnsbl.selected_lists", '["a.example"]', ["a.example"]),
    ("smtp.dnsbl.selected_lists", "", []),
    ("smtp.relay.privileged_ip_ranges", "10.0.0.0/8, 192.168.*.*, ::1",
     ["10.0.0.0/8", "192.168.*.*", "::1"]),
    ("smtp.bind", "127.0.0.1,::1", ["127.0.0.1", "::1"]),
    ("dns.nameservers", "127.0.0.1:5353, [::1]:53, 9.9.9.9, 2001:db8::1",
     ["127.0.0.1:5353", "[::1]:53", "9.9.9.9", "2001:db8::1"]),
    ("dns.nameservers", "", []),
    ("dns.nameservers", "[::1]:53", ["[::1]:53"]),
    ("dns.nameservers", "[::1]:5353, 127.0.0.1", ["[::1]:5353", "127.0.0.1"]),
    ("webmail.general.default_timezone", "Europe/Paris", "Europe/Paris"),
    ("smtp.delivery.ndr_copy_address", "postmaster@example.com", "postmaster@example.com"),
]


@pytest.mark.parametrize(("key", "text", "expected"), PARSED)
def test_parse_accepts(key: str, text: str, expected: Any) -> None:
    assert SERVER.get(key).parse(text) == expected


REFUSED: list[tuple[str, str, str]] = [
    ("smtp.general.tls_enabled", "maybe", "boolean"),
    ("smtp.port", "25x", "integer"),
    ("smtp.port", "-1", "at least 0"),
    ("smtp.port", "65536", "at most 65535"),
    ("localhost.policies.password_min_length", "3", "at least 4"),
    ("localhost.policies.password_min_length", "129", "at most 128"),
    ("localhost.policies.password_min_classes", "5", "at most 4"),
    ("smtp.delivery.first_retry", "0", "at least 1"),
    ("smtp.delivery.delay_notifications", "sometimes", "one of never, first, every"),
    ("smtp.relay.privileged_ip_ranges", "10.0.0.300", "not an IP"),
    ("smtp.bind", "10.0.0.0/8", "single IP address"),
    ("smtp.bind", "localhost", "single IP address"),
    ("dns.nameservers", "1.2.3:99", "not a nameserver"),
    ("dns.nameservers", "127.0.0.1:70000", "not a nameserver"),
    ("dns.nameservers", "[127.0.0.1]:53", "not a nameserver"),
    ("dns.nameservers", "[::1]x", "not a nameserver"),
    ("dns.nameservers", "ns.example.com", "not a nameserver"),
    ("dns.nameservers", '["1.2.3.4", 5]', "list of strings"),
    ("webmail.general.default_timezone", "Mars/Olympus", "time zone"),
    ("webmail.general.default_timezone", "../../etc/passwd", "time zone"),
    ("smtp.delivery.ndr_copy_address", "not-an-address", "not an email"),
    ("smtp.security.alternate_welcome_text", "two\nlines", "single line"),
]


@pytest.mark.parametrize(("key", "text", "message"), REFUSED)
def test_parse_refuses_naming_the_key(key: str, text: str, message: str) -> None:
    with pytest.raises(OptionError) as caught:
        SERVER.get(key).parse(text)
    assert caught.value.field == key
    assert message in str(caught.value)
    assert str(caught.value).startswith(key + ":")


@pytest.mark.parametrize(("key", "value"), [
    ("smtp.port", "25"),          # text where an int is expected
    ("smtp.port", True),          # a bool is not an int
    ("smtp.general.tls_enabled", 1),
    ("smtp.bind", "0.0.0.0"),     # a list is expected
    ("smtp.bind", [1, 2]),
    ("smtp.delivery.delay_notifications", 3),
])
def test_validate_refuses_wrong_types(key: str, value: Any) -> None:
    with pytest.raises(OptionError, match=key.replace(".", r"\.")):
        SERVER.get(key).validate(value)


def test_nameserver_forms() -> None:
    assert parse_nameserver("127.0.0.1") == ("127.0.0.1", 53)
    assert parse_nameserver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_nameserver("[::1]:5353") == ("::1", 5353)
    assert parse_nameserver("[::1]") == ("::1", 53)
    assert parse_nameserver("2001:db8::53") == ("2001:db8::53", 53)


def test_unknown_key_names_the_nearest() -> None:
    with pytest.raises(OptionError, match=r"did you mean smtp\.port\?"):
        SERVER.get("smtp.prot")


def test_describe_type_is_readable() -> None:
    assert SERVER.get("smtp.port").describe_type() == "int 0..65535"
    assert SERVER.get("smtp.delivery.first_retry").describe_type() == "int 1..10080 minutes"
    assert SERVER.get("dns.nameservers").describe_type() == "list of IP[:PORT]"
