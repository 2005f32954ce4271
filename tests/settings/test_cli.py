"""`postroom settings` as an administrator uses it: list, get, set, reset, describe."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from postroom.store import Store

Cli = Callable[..., Any]


def test_list_shows_every_setting_with_defaults(cli: Cli) -> None:
    records = cli("settings", "list", "--json").json()
    by_key = {r["key"]: r for r in records}
    assert len(records) > 400
    port = by_key["smtp.port"]
    assert port["value"] == 25 and port["default"] == 25
    assert port["type"] == "int 0..65535"
    assert port["section"] == "6.2.3.3"
    assert port["live"] is False
    assert "listen" in port["description"].lower()
    assert set(port) >= {"key", "value", "default", "type", "section", "description", "live"}


def test_list_table_and_prefix(cli: Cli) -> None:
    out = cli("settings", "list", "smtp.delivery").stdout
    assert "smtp.delivery.first_retry" in out
    assert "smtp.port" not in out
    keys = [r["key"] for r in cli("settings", "list", "pop3.", "--json").json()]
    assert keys and all(k.startswith("pop3.") for k in keys)
    assert "pop3.port" in keys


def test_list_unknown_prefix_exits_2(cli: Cli) -> None:
    result = cli("settings", "list", "smtpx", expect=2)
    assert "smtpx" in result.stderr


def test_set_get_reset_round_trip(cli: Cli, home: Path) -> None:
    out = cli("settings", "set", "smtp.delivery.first_retry", "5").stdout
    assert "smtp.delivery.first_retry: 15 -> 5" in out
    assert "restart" not in out
    assert cli("settings", "get", "smtp.delivery.first_retry").stdout.strip() == "5"
    got = cli("settings", "get", "smtp.delivery.first_retry", "--json").json()
    assert got["value"] == 5 and got["default"] == 15 and got["changed"] is True
    changed = cli("settings", "list", "--changed", "--json").json()
    assert [r["key"] for r in changed] == ["smtp.delivery.first_retry"]
    # Persisted: a new Store sees it.
    with Store.open(home) as store:
        assert store.settings.get("smtp.delivery.first_retry") == 5
    out = cli("settings", "reset", "smtp.delivery.first_retry").stdout
    assert "5 -> 15" in out
    assert cli("settings", "list", "--changed", "--json").json() == []


def test_set_listener_says_restart(cli: Cli) -> None:
    out = cli("settings", "set", "smtp.port", "2525").stdout
    assert "smtp.port: 25 -> 2525" in out
    assert "takes effect after restart" in out


def test_set_list_values(cli: Cli) -> None:
    cli("settings", "set", "dns.nameservers", "127.0.0.1:5353,[::1]:53")
    assert cli("settings", "get", "dns.nameservers", "--json").json()["value"] == [
        "127.0.0.1:5353", "[::1]:53"]
    cli("settings", "set", "smtp.bind", '["127.0.0.1"]')
    assert cli("settings", "get", "smtp.bind").stdout.strip() == '["127.0.0.1"]'
    cli("settings", "set", "smtp.general.tls_enabled", "off")
    assert cli("settings", "get", "smtp.general.tls_enabled").stdout.strip() == "false"


@pytest.mark.parametrize(("key", "value", "words"), [
    ("smtp.port", "twenty-five", "expected an integer"),
    ("smtp.port", "65536", "at most 65535"),
    ("localhost.policies.password_min_length", "2", "at least 4"),
    ("smtp.delivery.delay_notifications", "sometimes", "one of never, first, every"),
    ("smtp.general.tls_enabled", "perhaps", "boolean"),
    ("dns.nameservers", "resolver.example", "not a nameserver"),
    ("smtp.bind", "0.0.0.0/0", "single IP address"),
])
def test_bad_value_exits_2_naming_the_key(cli: Cli, key: str, value: str, words: str) -> None:
    before = cli("settings", "get", key, "--json").json()["value"]
    result = cli("settings", "set", key, value, expect=2)
    message = " ".join(result.stderr.split())
    assert key in message
    assert words in message
    assert cli("settings", "get", key, "--json").json()["value"] == before
    assert cli("settings", "list", "--changed", "--json").json() == []


@pytest.mark.parametrize("command", [("set", "smtp.prot", "25"), ("get", "smtp.prot"),
                                     ("reset", "smtp.prot"), ("describe", "smtp.prot")])
def test_unknown_key_suggests_nearest(cli: Cli, command: tuple[str, ...]) -> None:
    result = cli("settings", *command, expect=2)
    assert "did you mean smtp.port?" in " ".join(result.stderr.split())
    assert cli("settings", "list", "--changed", "--json").json() == []


def test_describe(cli: Cli) -> None:
    out = cli("settings", "describe", "smtp.delivery.delay_notifications").stdout
    assert "never" in out and "6.2.3.8" in out
    info = cli("settings", "describe", "smtp.port", "--json").json()
    assert info["manual_id"] == "smtp.inbound.port"
    assert (info["minimum"], info["maximum"], info["live"]) == (0, 65535, False)


def test_secrets_are_masked_in_list(cli: Cli) -> None:
    cli("settings", "set", "smtp.smart_host.password", "s3cret-pass")
    listed = cli("settings", "list", "smtp.smart_host", "--json").json()
    password = next(r for r in listed if r["key"] == "smtp.smart_host.password")
    assert password["value"] == "********"
    assert "s3cret-pass" not in cli("settings", "list").stdout
    assert cli("settings", "get", "smtp.smart_host.password").stdout.strip() == "s3cret-pass"


def test_installed_command(cli_subprocess: Cli) -> None:
    out = cli_subprocess("settings", "set", "imap.port", "1143").stdout
    assert "imap.port: 143 -> 1143" in out
    assert cli_subprocess("settings", "get", "imap.port").stdout.strip() == "1143"
    bad = cli_subprocess("settings", "set", "imap.prot", "1", expect=2)
    assert "did you mean imap.port?" in bad.stderr
