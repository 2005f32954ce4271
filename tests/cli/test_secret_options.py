"""`show`, `list` and `--json` never print secret options unless asked (--show-secrets)."""

from __future__ import annotations

from tests.cli.helpers import setup_postoffice

KEY = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
MASK = "********"


def test_domain_show_masks_the_dkim_key(cli) -> None:
    setup_postoffice(cli)
    cli("domain", "set", "example.com", f"dkim.private_key={KEY}", "dkim.selector=s1")
    shown = cli("domain", "show", "example.com", "--json")
    assert "MIIEvQ" not in shown.stdout
    assert shown.json()["options"]["dkim.private_key"] == MASK
    assert shown.json()["options"]["dkim.selector"] == "s1"
    table = cli("domain", "show", "example.com").stdout
    assert "MIIEvQ" not in table and MASK in table
    revealed = cli("domain", "show", "example.com", "--json", "--show-secrets").json()
    assert revealed["options"]["dkim.private_key"] == KEY
    created = cli("domain", "create", "example.org", "-p", "example",
                  "--option", f"dkim.private_key={KEY}", "--json")
    assert "MIIEvQ" not in created.stdout
    assert created.json()["options"]["dkim.private_key"] == MASK


def test_unset_secret_shows_empty(cli) -> None:
    setup_postoffice(cli)
    assert cli("domain", "show", "example.com", "--json").json()["options"][
        "dkim.private_key"] == ""


def test_list_posting_password_is_masked(cli) -> None:
    setup_postoffice(cli)
    created = cli("list", "create", "news@example", "-o", "posting_password=Sekr1t-word",
                  "--json")
    assert "Sekr1t-word" not in created.stdout
    assert created.json()["options"]["posting_password"] == MASK
    updated = cli("list", "set", "news@example", "posting_permissions=password", "--json")
    assert "Sekr1t-word" not in updated.stdout
    shown = cli("list", "show", "news@example")
    assert "Sekr1t-word" not in shown.stdout and MASK in shown.stdout
    revealed = cli("list", "show", "news@example", "--json", "--show-secrets").json()
    assert revealed["options"]["posting_password"] == "Sekr1t-word"
