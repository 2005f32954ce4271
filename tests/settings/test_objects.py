"""Option sets of post offices, domains, mailboxes, groups, lists and POP retrieval."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from postroom.settings import objects
from postroom.settings.model import OptionError

TSV = Path(__file__).resolve().parents[2] / ".." / "shared" / "spec" / "manual-options.tsv"
SCOPES = {"postoffice", "domain", "mailbox", "group", "list"}


def manual_rows() -> list[dict[str, str]]:
    if not TSV.exists():
        pytest.skip("manual option inventory not available")
    with TSV.open(encoding="utf-8") as handle:
        return [r for r in csv.DictReader(handle, delimiter="\t") if r["scope"] in SCOPES]


def test_every_manual_row_of_object_scopes_is_accounted_for() -> None:
    declared = {o.manual_id: f"{name}.{o.key}" for name, s in objects.ALL.items() for o in s
                if o.manual_id}
    missing = []
    for row in manual_rows():
        rid = row["id"]
        if row["component"] in objects.SKIPPED_COMPONENTS:
            continue
        if rid in declared or rid in objects.NOT_OPTIONS or rid in objects.FOLDED:
            continue
        missing.append(rid)
    assert missing == []


def test_accounting_lists_name_real_rows_and_options() -> None:
    ids = {r["id"] for r in manual_rows()}
    assert set(objects.NOT_OPTIONS) <= ids
    assert set(objects.FOLDED) <= ids
    for target in objects.FOLDED.values():
        set_name, _, key = target.partition(".")
        assert key in objects.ALL[set_name]
    manual_ids = [o.manual_id for s in objects.ALL.values() for o in s if o.manual_id]
    assert len(manual_ids) == len(set(manual_ids)), "a manual row is declared twice"
    assert set(manual_ids) <= ids


def test_defaults_validate_and_keys_are_documented() -> None:
    for option_set in objects.ALL.values():
        for option in option_set:
            assert option.description, option.key
            if option.default is not None:
                assert option.validate(option.default) == option.default, option.key


def test_well_known_keys() -> None:
    assert objects.POSTOFFICE.get("default_quota_mb").unit == "MB"
    assert objects.DOMAIN.get("dkim.private_key").secret
    assert objects.LIST.get("posting_password").secret
    assert objects.POP_RETRIEVAL.get("port").default == 110
    assert objects.MAILBOX.get("redirect.keep_copy").default is False
    for key in ("disabled", "prevent_authentication", "friendly_name", "reply_to",
                "redirect.enabled", "redirect.addresses", "autoresponder.subject",
                "autoresponder.body", "autoresponder.html", "autoresponder.start_time"):
        assert key in objects.MAILBOX


def test_typed_option_validation() -> None:
    catch_all = objects.DOMAIN.get("catch_all")
    assert catch_all.validate("Info@Bücher.Example") == "Info@xn--bcher-kva.example"
    assert catch_all.validate("") == ""
    with pytest.raises(OptionError) as info:
        catch_all.validate("not an address")
    assert info.value.field == "catch_all"
    redirect = objects.MAILBOX.get("redirect.addresses")
    assert redirect.parse("a@example.com, b@example.org") == ["a@example.com", "b@example.org"]
    with pytest.raises(OptionError, match="twice"):
        redirect.validate(["a@example.com", "A@EXAMPLE.com"])
    start = objects.MAILBOX.get("autoresponder.start_time")
    assert start.parse("2026-12-24T17:00:00+01:00") == "2026-12-24T17:00:00+01:00"
    with pytest.raises(OptionError):
        start.parse("next tuesday")
    assert objects.LIST.get("domain").validate("Bücher.Example") == "xn--bcher-kva.example"


def test_unknown_key_hint_and_merge_keeps_only_non_defaults() -> None:
    with pytest.raises(OptionError, match=r"did you mean redirect\.enabled"):
        objects.validate_changes(objects.MAILBOX, {"redirect.enabeld": True})
    changes = objects.validate_changes(objects.MAILBOX, {"disabled": "true",
                                                         "friendly_name": "Bob",
                                                         "reply_to": None})
    assert changes == {"disabled": True, "friendly_name": "Bob", "reply_to": None}
    stored = objects.merge(objects.MAILBOX, {"reply_to": "x@example.com", "gone": 1}, changes)
    assert stored == {"disabled": True, "friendly_name": "Bob"}
    assert objects.merge(objects.MAILBOX, stored, {"disabled": False}) == {"friendly_name": "Bob"}
    values = objects.effective(objects.MAILBOX, stored)
    assert values["friendly_name"] == "Bob" and values["redirect.addresses"] == []
