"""Recipient expansion over the real directory (manual 5.4.2, 5.6, 5.7, 6.1.1)."""

from __future__ import annotations

from typing import Any

import pytest

from postroom.mta.expand import MAX_GROUP_DEPTH, Expander, expand
from postroom.store import Store
from tests.mta.mta_setup import populate


@pytest.fixture
def world(store: Store) -> Store:
    return populate(store)


def finals(result: Any) -> list[tuple[str, str]]:
    return [(d.connector, d.address) for d in result.deliveries]


def test_hosted_address_resolves_to_its_mailbox(world: Store) -> None:
    result = expand(world.directory, ["[SMTP:Bob@Example.COM]"])
    assert finals(result) == [("SF", "[SF:example/bob]")]
    assert result.deliveries[0].origin == "[SMTP:Bob@Example.COM]"
    assert result.failed == []


def test_remote_addresses_stay_smtp_grouped_by_domain(world: Store) -> None:
    result = expand(world.directory, ["[SMTP:a@remote.test]", "[SMTP:b@other.test]",
                                      "[SMTP:c@REMOTE.test]"])
    assert finals(result) == [("SMTP", "[SMTP:a@remote.test]"), ("SMTP", "[SMTP:b@other.test]"),
                              ("SMTP", "[SMTP:c@remote.test]")]
    by_domain = result.smtp_by_domain()
    assert list(by_domain) == ["remote.test", "other.test"]
    assert [d.address for d in by_domain["remote.test"]] == ["[SMTP:a@remote.test]",
                                                             "[SMTP:c@remote.test]"]


def test_group_expands_to_members_of_every_kind(world: Store) -> None:
    result = expand(world.directory, ["[SMTP:staff@example.com]"])
    assert finals(result) == [("SF", "[SF:example/bob]"), ("SF", "[SF:example/alice]"),
                              ("SMTP", "[SMTP:zoe@remote.test]")]
    assert {d.via for d in result.deliveries} == {"[SF:example/staff]"}
    assert {d.origin for d in result.deliveries} == {"[SMTP:staff@example.com]"}


def test_group_given_as_sf_target_expands_too(world: Store) -> None:
    # The SMTP service stores resolved targets: a group arrives as [SF:po/group].
    result = expand(world.directory, ["[SF:example/staff]"])
    assert ("SF", "[SF:example/alice]") in finals(result)


def test_nested_groups(world: Store) -> None:
    d = world.directory
    d.create_group("example", "all")
    d.add_group_member("example", "all", "[SF:example/staff]")
    d.add_group_member("example", "all", "[SF:example/carol]")
    result = expand(d, ["[SF:example/all]"])
    assert sorted(finals(result)) == [("SF", "[SF:example/alice]"), ("SF", "[SF:example/bob]"),
                                      ("SF", "[SF:example/carol]"),
                                      ("SMTP", "[SMTP:zoe@remote.test]")]


def test_group_cycle_ends_and_delivers_once(world: Store) -> None:
    d = world.directory
    d.create_group("example", "a")
    d.create_group("example", "b")
    d.add_address("a@example.com", "[SF:example/a]")
    d.add_group_member("example", "a", "[SF:example/b]")
    d.add_group_member("example", "a", "[SF:example/bob]")
    d.add_group_member("example", "b", "[SMTP:a@example.com]")   # back to a: a cycle
    d.add_group_member("example", "b", "[SF:example/carol]")
    result = expand(d, ["[SMTP:a@example.com]"])
    assert finals(result) == [("SF", "[SF:example/carol]"), ("SF", "[SF:example/bob]")]
    assert result.failed == []


def test_groups_nested_too_deep_fail_with_routing_loop(world: Store) -> None:
    d = world.directory
    depth = MAX_GROUP_DEPTH + 2
    for n in range(depth):
        d.create_group("example", f"g{n}")
    for n in range(depth - 1):
        d.add_group_member("example", f"g{n}", f"[SF:example/g{n + 1}]")
    d.add_group_member("example", "g0", "[SF:example/alice]")
    d.add_group_member("example", f"g{depth - 1}", "[SF:example/bob]")
    result = expand(d, ["[SF:example/g0]"])
    assert finals(result) == [("SF", "[SF:example/alice]")]
    assert [(f.recipient, f.status) for f in result.failed] == [("[SF:example/g0]", "5.4.6")]


def test_ten_levels_of_groups_still_deliver(world: Store) -> None:
    d = world.directory
    for n in range(MAX_GROUP_DEPTH):
        d.create_group("example", f"h{n}")
    for n in range(MAX_GROUP_DEPTH - 1):
        d.add_group_member("example", f"h{n}", f"[SF:example/h{n + 1}]")
    d.add_group_member("example", f"h{MAX_GROUP_DEPTH - 1}", "[SF:example/bob]")
    result = expand(d, ["[SF:example/h0]"])
    assert finals(result) == [("SF", "[SF:example/bob]")]
    assert result.failed == []


def test_catch_all_and_its_switch(world: Store) -> None:
    result = expand(world.directory, ["[SMTP:anything@catch.test]"])
    assert finals(result) == [("SF", "[SF:example/bob]")]
    off = Expander(world.directory, catch_alls=False).expand(["[SMTP:anything@catch.test]"])
    assert off.deliveries == []
    assert [(f.address, f.status) for f in off.failed] == [("anything@catch.test", "5.1.1")]


def test_unknown_local_address_fails_5_1_1(world: Store) -> None:
    result = expand(world.directory, ["[SMTP:nobody@example.com]", "[SMTP:bob@example.com]"])
    assert finals(result) == [("SF", "[SF:example/bob]")]
    (failed,) = result.failed
    assert failed.recipient == "[SMTP:nobody@example.com]"
    assert failed.address == "nobody@example.com"
    assert failed.status == "5.1.1"
    assert failed.diagnostic.startswith("550 5.1.1")


def test_deleted_mailbox_and_list_targets_fail(world: Store) -> None:
    result = expand(world.directory, ["[SF:example/ghost]", "[LS:example/gone]"])
    assert result.deliveries == []
    assert [f.status for f in result.failed] == ["5.1.1", "5.1.1"]


def test_one_copy_per_mailbox_however_reached(world: Store) -> None:
    result = expand(world.directory, ["[SF:example/bob]", "[SMTP:bob@example.com]",
                                      "[SMTP:staff@example.com]", "[SMTP:x@catch.test]",
                                      "[SMTP:BOB@example.com]", "[SF:example/staff]"])
    assert finals(result) == [("SF", "[SF:example/bob]"), ("SF", "[SF:example/alice]"),
                              ("SMTP", "[SMTP:zoe@remote.test]")]


def test_list_goes_to_the_list_server(world: Store) -> None:
    result = expand(world.directory, ["[SMTP:news@example.com]", "[LS:example/news]"])
    assert finals(result) == [("LS", "[LS:example/news]")]


def test_disabled_group_bounces_as_invalid_address(world: Store) -> None:
    world.directory.update_group("example", "staff", {"disabled": True})
    result = expand(world.directory, ["[SMTP:staff@example.com]", "[SF:example/carol]"])
    assert finals(result) == [("SF", "[SF:example/carol]")]
    (failed,) = result.failed
    assert failed.status == "5.1.1"
    assert "disabled" in failed.diagnostic


def test_disabled_domain_and_smart_host_domain(world: Store) -> None:
    d = world.directory
    d.create_domain("backup.test", "example", {"smart_host.enabled": True,
                                                "smart_host.host": "mx.backup-primary.test"})
    d.create_domain("off.test", "example", {"disabled": True})
    result = expand(d, ["[SMTP:someone@backup.test]", "[SMTP:someone@off.test]"])
    assert finals(result) == [("SMTP", "[SMTP:someone@backup.test]")]
    assert [f.status for f in result.failed] == ["5.1.2"]


def test_postmaster_address_of_a_domain(world: Store) -> None:
    world.directory.update_domain("example.com", {"postmaster_address": "carol@example.com"})
    result = expand(world.directory, ["[SMTP:postmaster@example.com]"])
    assert finals(result) == [("SF", "[SF:example/carol]")]


@pytest.mark.parametrize("garbage", ["", "[XX:foo]", "no-at-sign", "[SMTP:a@@b]",
                                     "[SF:nopo]", "a b@example.com", "[SMTP:x@-bad-.test]",
                                     "x\x00y@example.com"])
def test_garbage_addresses_fail_5_1_3_and_never_raise(world: Store, garbage: str) -> None:
    result = expand(world.directory, [garbage, "[SMTP:bob@example.com]"])
    assert finals(result) == [("SF", "[SF:example/bob]")]
    assert [f.status for f in result.failed] == ["5.1.3"]


class CountingDirectory:
    """The real directory, counting the lookups the expander makes."""

    def __init__(self, directory: Any) -> None:
        self.directory = directory
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.directory, name)

        def counted(*args: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return method(*args)

        return counted


def test_lookups_are_cached_within_one_message(world: Store) -> None:
    counting = CountingDirectory(world.directory)
    recipients = [f"[SMTP:user{n}@remote.test]" for n in range(1000)]
    recipients += ["[SMTP:staff@example.com]"] * 3 + ["[SMTP:bob@example.com]"] * 3
    result = Expander(counting).expand(recipients)  # type: ignore[arg-type]
    assert len(result.deliveries) == 1000 + 3
    assert counting.calls["get_domain"] == 2          # remote.test, example.com
    assert counting.calls["resolve"] == 3             # staff@, bob@, alice@ (member)
    assert counting.calls["get_group"] <= 3
