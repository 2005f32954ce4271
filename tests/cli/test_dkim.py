"""`postroom domain dkim ...`: make, rotate, show and delete DKIM keys (manual 5.4.4).

The round trip an administrator makes: create a key, publish the printed TXT record
(here: in the loopback DNS server), and mail signed by the server verifies with dkimpy.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dkim as dkimpy
import pytest

from postroom.connectors.smtp.outbound.dkim import sign_message
from postroom.store import Store
from tests.cli.helpers import flat, setup_postoffice
from tests.connectors.smtp.outbound.test_dkim import dnsfunc
from tests.dnsserver import DnsTestServer

MESSAGE = b"From: bob@example.com\r\nTo: a@remote.test\r\nSubject: hi\r\n\r\nHello\r\n"


def printed_record(stdout: str) -> tuple[str, str]:
    name = re.search(r"^name:\s+(\S+)$", stdout, re.M)
    value = re.search(r"^TXT value: (.+)$", stdout, re.M)
    assert name and value, stdout
    return name.group(1), value.group(1)


def signed_and_verified(home: Path, records: dict[str, str]) -> dict[bytes, bytes]:
    with DnsTestServer() as dns:
        for name, value in records.items():
            dns.add(name, "TXT", value)
        store = Store.open(home)
        try:
            signed = sign_message(store, MESSAGE, "example.com")
        finally:
            store.close()
        assert dkimpy.verify(signed, dnsfunc=dnsfunc(dns))
    headers, _ = dkimpy.rfc822_parse(signed)
    return dkimpy.util.parse_tag_value(headers[0][1])


def test_create_publish_sign_verify_rotate_delete(cli: Callable[..., Any], home: Path) -> None:
    setup_postoffice(cli)
    out = cli("domain", "dkim", "create", "example.com", "--selector", "s1").stdout
    name, value = printed_record(out)
    assert name == "s1._domainkey.example.com"
    assert value.startswith("v=DKIM1; k=rsa; p=")
    assert "zone file:" in out and '"v=DKIM1' in out
    tags = signed_and_verified(home, {name: value})
    assert tags[b"s"] == b"s1" and tags[b"a"] == b"rsa-sha256"

    shown = cli("domain", "dkim", "show", "example.com").stdout
    assert printed_record(shown) == (name, value)

    out = cli("domain", "dkim", "rotate", "example.com", "--selector", "s2",
              "--algorithm", "ed25519").stdout
    name2, value2 = printed_record(out)
    assert name2 == "s2._domainkey.example.com" and "k=ed25519" in value2
    tags = signed_and_verified(home, {name: value, name2: value2})
    assert tags[b"s"] == b"s2"

    listed = cli("domain", "dkim", "list", "--json").json()
    assert [(r["selector"], r["active"]) for r in listed] == [("s2", True), ("s1", False)]
    assert listed[1]["record"] == value  # the old record stays printable
    assert "s1" in cli("domain", "dkim", "list").stdout

    cli("domain", "dkim", "delete", "example.com", "--selector", "s1")
    assert [r["selector"] for r in cli("domain", "dkim", "list", "--json").json()] == ["s2"]
    out = cli("domain", "dkim", "delete", "example.com", "--selector", "s2").stdout
    assert "signing is off" in out
    assert cli("domain", "dkim", "list", "--json").json() == []


def test_private_key_masked_in_domain_show(cli: Callable[..., Any]) -> None:
    setup_postoffice(cli)
    cli("domain", "dkim", "create", "example.com", "-s", "s1", "--algorithm", "ed25519")
    shown = cli("domain", "show", "example.com", "--json").json()
    assert shown["options"]["dkim.private_key"] == "********"
    assert shown["options"]["dkim.selector"] == "s1"
    assert shown["options"]["dkim.algorithm"] == "ed25519-sha256"


def test_json_and_test_mode(cli: Callable[..., Any]) -> None:
    setup_postoffice(cli)
    made = cli("domain", "dkim", "create", "example.com", "-s", "trial", "--test-mode",
               "--bits", "1024", "--json").json()
    assert made["key_size"] == 1024 and made["test_mode"] is True
    assert "; t=y; " in made["record"]
    assert made["record_name"] == "trial._domainkey.example.com"


@pytest.mark.parametrize(("args", "field"), [
    (("create", "nowhere.test", "-s", "s1"), "nowhere.test"),
    (("create", "example.com", "-s", "no_good"), "selector"),
    (("create", "example.com", "-s", "s1", "--algorithm", "dsa"), "algorithm"),
    (("create", "example.com", "-s", "s1", "--bits", "1000"), "bits"),
    (("rotate", "example.com", "-s", "s2"), "domain"),
    (("delete", "example.com", "-s", "s1"), "selector"),
    (("show", "example.com"), "domain"),
])
def test_bad_input_exits_2_naming_the_field(cli: Callable[..., Any], args: tuple[str, ...],
                                            field: str) -> None:
    setup_postoffice(cli)
    result = cli("domain", "dkim", *args, expect=2)
    assert field in flat(result.stderr)
    assert cli("domain", "dkim", "list", "--json").json() == []


def test_second_create_points_to_rotate(cli: Callable[..., Any]) -> None:
    setup_postoffice(cli)
    cli("domain", "dkim", "create", "example.com", "-s", "s1")
    result = cli("domain", "dkim", "create", "example.com", "-s", "s2", expect=2)
    assert "rotate" in flat(result.stderr)
    assert [r["selector"] for r in cli("domain", "dkim", "list", "--json").json()] == ["s1"]
