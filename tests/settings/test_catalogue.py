"""The catalogue covers the manual, has the keys other code relies on, and its docs are current."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from postroom.settings import docs
from postroom.settings.server import SERVER

REPO = Path(__file__).resolve().parents[2]
INVENTORY = (REPO / "../shared/spec/manual-options.tsv").resolve()
FILTER_DATA_TYPES = {"criterion", "action", "function"}


def test_every_server_option_of_the_manual_is_declared() -> None:
    if not INVENTORY.exists():
        pytest.skip(f"manual option inventory not found at {INVENTORY}")
    with INVENTORY.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    wanted = {row["id"] for row in rows
              if row["scope"] == "server" and row["component"] != "windows_only"
              and row["type"] not in FILTER_DATA_TYPES}
    declared = {o.manual_id for o in SERVER}
    assert len(wanted) > 350
    assert sorted(wanted - declared) == []


def test_manual_ids_are_unique() -> None:
    ids = [o.manual_id for o in SERVER if o.manual_id]
    assert len(ids) == len(set(ids))


REQUIRED = {
    "smtp.port": 25, "smtp.submission_port": 587, "smtp.smtps_port": 465,
    "smtp.bind": ["0.0.0.0", "::"], "pop3.port": 110, "pop3.pop3s_port": 995,
    "imap.port": 143, "imap.imaps_port": 993, "web.port": 8080,
    "web.bind": ["0.0.0.0", "::"], "pop3.bind": ["0.0.0.0", "::"],
    "imap.bind": ["0.0.0.0", "::"], "dns.nameservers": [],
    "localhost.policies.enforce_password_policy": True,
    "localhost.policies.password_min_length": 10,
    "localhost.policies.password_min_classes": 3,
    "localhost.policies.password_disallow_username": True,
    "messaging_manager.administration.auto_create_address_per_domain": True,
    "messaging_manager.administration.new_mailbox_size_limit_enabled": False,
    "messaging_manager.security.encrypt_passwords": True,
}


@pytest.mark.parametrize(("key", "default"), sorted(REQUIRED.items()))
def test_keys_other_code_relies_on(key: str, default: object) -> None:
    assert SERVER.get(key).default == default


def test_listeners_need_a_restart() -> None:
    for key in ("smtp.port", "smtp.submission_port", "smtp.smtps_port", "smtp.bind",
                "pop3.port", "pop3.pop3s_port", "pop3.bind", "imap.port", "imap.imaps_port",
                "imap.bind", "web.port", "web.bind"):
        assert SERVER.get(key).live is False, key


def test_every_option_is_well_formed() -> None:
    for option in SERVER:
        assert option.validate(option.default) == option.default, option.key
        assert option.description and option.section, option.key
        if option.kind == "int":
            assert option.minimum is not None, option.key
        if option.kind == "enum":
            assert option.default in option.choices, option.key
        if option.key.endswith("port") and option.kind == "int":
            assert option.maximum == 65535, option.key
        if "password" in option.key and option.kind == "str":
            assert option.secret, option.key


def test_committed_docs_are_current() -> None:
    page = REPO / "docs" / "settings.md"
    assert page.read_text(encoding="utf-8") == docs.render(), (
        "docs/settings.md is stale: run `python -m postroom.settings.docs docs/settings.md`")
    assert "`smtp.port`" in page.read_text(encoding="utf-8")
