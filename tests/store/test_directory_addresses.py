"""The address map, groups, lists and POP retrieval entries of the SQLite directory."""

from __future__ import annotations

import pytest

from postroom.store import Store
from postroom.store.directory import DirectoryError

PASSWORD = "Corr3ct-Horse!"


@pytest.fixture
def po(store: Store) -> str:
    d = store.directory
    d.create_postoffice("example")
    d.create_domain("example.com", "example")
    d.create_domain("bücher.example", "example")
    d.create_mailbox("example", "bob", PASSWORD)
    d.create_postoffice("other")
    d.create_domain("other.example", "other")
    d.create_mailbox("other", "carol", PASSWORD)
    return "example"


def mapped(store: Store) -> list[tuple[str, str]]:
    return [(a.address, a.target) for a in store.directory.list_addresses()]


# --- address map ----------------------------------------------------------------------------

def test_add_address_plain_and_connector_forms(store: Store, po: str) -> None:
    d = store.directory
    added = d.add_address("Robert@Bücher.Example", "[SF:example/bob]")
    assert added.address == "[SMTP:Robert@xn--bcher-kva.example]"
    assert (added.target, added.postoffice) == ("[SF:example/bob]", po)
    assert d.add_address("[SMTP:rob@example.com]", "[sf:EXAMPLE/BOB]").target == \
        "[SF:example/bob]"
    found = d.resolve("ROBERT@bücher.example")
    assert found is not None and found.target == "[SF:example/bob]"
    assert {a.address for a in d.list_addresses(postoffice=po, target="[SF:example/bob]")} == {
        "[SMTP:bob@example.com]", "[SMTP:bob@xn--bcher-kva.example]",
        "[SMTP:Robert@xn--bcher-kva.example]", "[SMTP:rob@example.com]"}
    assert [a.address for a in d.list_addresses(postoffice="other")] == [
        "[SMTP:carol@other.example]"]
    d.delete_address("robert@BÜCHER.example")
    assert d.resolve("robert@bücher.example") is None


def test_address_errors_change_nothing(store: Store, po: str) -> None:
    d = store.directory
    before = mapped(store)
    cases = [
        ("bob@example.com", "[SF:example/bob]", "address", "already mapped"),
        ("BOB@EXAMPLE.COM", "[SF:example/bob]", "address", "already mapped"),
        ("x@other.example", "[SF:example/bob]", "address", "not a domain of post office"),
        ("x@unknown.example", "[SF:example/bob]", "address", "not a domain"),
        ("not an address", "[SF:example/bob]", "address", ""),
        ("x@example.com", "[SF:example/nobody]", "target", "no mailbox or group"),
        ("x@example.com", "[SF:nowhere/bob]", "target", "no post office"),
        ("x@example.com", "[LS:example/nolist]", "target", "no list"),
        ("x@example.com", "[SMTP:bob@example.com]", "target", "must be a mailbox"),
        ("x@example.com", "[XX:example/bob]", "target", "unknown connector"),
    ]
    for address, target, field, message in cases:
        with pytest.raises(DirectoryError, match=message) as info:
            d.add_address(address, target)
        assert info.value.field == field, (address, target)
    with pytest.raises(DirectoryError) as info:
        d.delete_address("ghost@example.com")
    assert info.value.field == "address"
    with pytest.raises(DirectoryError) as info:
        d.list_addresses(postoffice="nowhere")
    assert info.value.field == "postoffice"
    assert mapped(store) == before


def test_catch_all_by_address_map(store: Store, po: str) -> None:
    d = store.directory
    d.add_address("[SMTP:*@example.com]", "[SF:example/bob]")
    found = d.resolve("anyone@example.com")
    assert found is not None and found.address == "[SMTP:*@example.com]"
    assert d.resolve("anyone@xn--bcher-kva.example") is None
    with pytest.raises(DirectoryError):
        d.resolve("not an address")
    d.delete_address("*@example.com")
    assert d.resolve("anyone@example.com") is None


# --- groups (5.6) ---------------------------------------------------------------------------

def test_group_lifecycle(store: Store, po: str) -> None:
    d = store.directory
    group = d.create_group(po, "staff")
    assert (group.name, group.members, group.options) == ("staff", [], {"disabled": False})
    d.add_address("staff@example.com", "[SF:example/staff]")
    d.add_group_member(po, "staff", "[SF:example/bob]")
    d.add_group_member(po, "staff", "Friend@Bücher.Example")
    updated = d.add_group_member(po, "staff", "[SF:other/carol]")
    assert updated.members == ["[SF:example/bob]", "[SMTP:Friend@xn--bcher-kva.example]",
                               "[SF:other/carol]"]
    resolved = d.resolve("staff@example.com")
    assert resolved is not None and resolved.target == "[SF:example/staff]"
    assert d.remove_group_member(po, "STAFF", "friend@bücher.example").members == [
        "[SF:example/bob]", "[SF:other/carol]"]
    assert d.update_group(po, "staff", {"disabled": True}).options["disabled"] is True
    assert [g.name for g in d.list_groups(po)] == ["staff"]
    d.create_group(po, "everyone")
    d.add_group_member(po, "everyone", "[SF:example/staff]")   # groups nest
    d.delete_group(po, "staff")
    assert d.resolve("staff@example.com") is None
    assert d.get_group(po, "everyone").members == []
    with pytest.raises(DirectoryError) as info:
        d.get_group(po, "staff")
    assert info.value.field == "group"


def test_group_errors(store: Store, po: str) -> None:
    d = store.directory
    d.create_group(po, "staff@example.com")       # the manual's example group name
    g = "staff@example.com"
    d.add_group_member(po, g, "a@elsewhere.example")
    cases = [
        (lambda: d.create_group(po, "STAFF@example.com"), "name"),
        (lambda: d.create_group(po, "bad name"), "name"),
        (lambda: d.create_group("nowhere", "x"), "postoffice"),
        (lambda: d.create_group(po, "x", {"disabled": "maybe"}), "disabled"),
        (lambda: d.add_group_member(po, g, "A@ELSEWHERE.example"), "member"),
        (lambda: d.add_group_member(po, g, "not an address"), "member"),
        (lambda: d.add_group_member(po, g, "[SF:example/nobody]"), "member"),
        (lambda: d.add_group_member(po, g, f"[SF:example/{g}]"), "member"),
        (lambda: d.add_group_member(po, "nogroup", "a@b.example"), "group"),
        (lambda: d.remove_group_member(po, g, "z@elsewhere.example"), "member"),
    ]
    for call, field in cases:
        with pytest.raises(DirectoryError) as info:
            call()
        assert info.value.field == field
    assert [x.name for x in d.list_groups(po)] == [g]
    assert d.get_group(po, g).members == ["[SMTP:a@elsewhere.example]"]


# --- lists (5.7) ----------------------------------------------------------------------------

def test_list_lifecycle_and_address(store: Store, po: str) -> None:
    d = store.directory
    created = d.create_list(po, "news", {"domain": "bücher.example", "type": "moderated",
                                         "owner_email": "bob@example.com"})
    assert created.options["domain"] == "xn--bcher-kva.example"
    assert created.options["type"] == "moderated"
    assert created.options["posting_permissions"] == "subscribers"   # default merged in
    found = d.resolve("news@bücher.example")
    assert found is not None and found.target == "[LS:example/news]"
    d.add_address("announce@example.com", "[LS:example/news]")
    moved = d.update_list(po, "news", {"domain": "example.com", "footer.enabled": True})
    assert moved.options["footer.enabled"] is True
    assert d.resolve("news@bücher.example") is None
    assert d.resolve("news@example.com") is not None
    assert [x.name for x in d.list_lists(po)] == ["news"]
    d.delete_list(po, "news")
    assert d.list_addresses(target="[LS:example/news]") == []
    with pytest.raises(DirectoryError) as info:
        d.get_list(po, "news")
    assert info.value.field == "list"


def test_list_errors_change_nothing(store: Store, po: str) -> None:
    d = store.directory
    d.create_list(po, "news")
    with pytest.raises(DirectoryError) as info:
        d.create_list(po, "NEWS")
    assert info.value.field == "name"
    with pytest.raises(DirectoryError) as info:
        d.create_list(po, "other", {"domain": "other.example"})
    assert info.value.field == "domain"
    with pytest.raises(DirectoryError) as info:
        d.create_list(po, "bob", {"domain": "example.com"})   # bob@example.com is taken
    assert info.value.field == "domain"
    with pytest.raises(DirectoryError) as info:
        d.create_list(po, "x", {"type": "chaotic"})
    assert info.value.field == "type"
    with pytest.raises(DirectoryError) as info:
        d.update_list(po, "news", {"reply_to": "poster", "subject_prefix.mode": "loud"})
    assert info.value.field == "subject_prefix.mode"
    assert [x.name for x in d.list_lists(po)] == ["news"]
    assert d.get_list(po, "news").options["reply_to"] == "list"


def test_deleting_a_domain_clears_list_domain(store: Store, po: str) -> None:
    d = store.directory
    d.create_list(po, "news", {"domain": "bücher.example"})
    d.delete_domain("bücher.example")
    assert d.get_list(po, "news").options["domain"] == ""
    assert d.list_addresses(target="[LS:example/news]") == []


# --- POP retrieval (5.5.8) ------------------------------------------------------------------

def test_pop_retrieval_entries(store: Store, po: str) -> None:
    d = store.directory
    entry = d.add_pop_retrieval(po, "bob", {"host": "pop.example.net", "username": "bob.remote",
                                            "leave_on_server": True}, "remote-secret")
    assert (entry.postoffice, entry.mailbox) == (po, "bob")
    assert entry.options["port"] == 110 and entry.options["enabled"] is True
    assert entry.options["leave_on_server"] is True
    assert [e.id for e in d.list_pop_retrieval(po, "bob")] == [entry.id]
    assert d.pop_retrieval_password(entry.id) == "remote-secret"
    assert [e.id for e in d.all_pop_retrieval()] == [entry.id]
    raw = store.conn.execute("SELECT password_secret FROM pop_retrieval").fetchone()[0]
    assert b"remote-secret" not in raw
    d.delete_pop_retrieval(entry.id)
    assert d.list_pop_retrieval(po, "bob") == []
    with pytest.raises(DirectoryError) as info:
        d.delete_pop_retrieval(entry.id)
    assert info.value.field == "entry_id"


@pytest.mark.parametrize(("options", "password", "field"), [
    ({"username": "u"}, "pw", "host"),
    ({"host": "pop.example.net"}, "pw", "username"),
    ({"host": "pop.example.net", "username": "u"}, "", "password"),
    ({"host": "pop.example.net", "username": "u", "port": 0}, "pw", "port"),
    ({"host": "bad host", "username": "u"}, "pw", "host"),
    ({"host": "pop.example.net", "username": "u", "tls": "sometimes"}, "pw", "tls"),
    ({"host": "pop.example.net", "username": "u", "hots": "x"}, "pw", "hots"),
])
def test_pop_retrieval_errors(store: Store, po: str, options: dict, password: str,
                              field: str) -> None:
    with pytest.raises(DirectoryError) as info:
        store.directory.add_pop_retrieval(po, "bob", options, password)
    assert info.value.field == field
    assert store.directory.list_pop_retrieval(po, "bob") == []


def test_pop_retrieval_unknown_mailbox(store: Store, po: str) -> None:
    with pytest.raises(DirectoryError) as info:
        store.directory.add_pop_retrieval(po, "nobody", {"host": "h.example", "username": "u"},
                                          "pw")
    assert info.value.field == "mailbox"
