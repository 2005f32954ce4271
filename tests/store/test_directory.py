"""Post offices, domains and mailboxes of the SQLite directory (manual 5.3-5.5)."""

from __future__ import annotations

import json

import pytest

from postroom.auth.policy import PasswordPolicyError
from postroom.store import Store
from postroom.store.directory import DirectoryError

PASSWORD = "Corr3ct-Horse!"
MB = 1024 * 1024


@pytest.fixture
def po(store: Store) -> str:
    store.directory.create_postoffice("example")
    store.directory.create_domain("example.com", "example")
    return "example"


def raw_options(store: Store, table: str, name: str) -> dict:
    row = store.conn.execute(f"SELECT options FROM {table} WHERE name = ?", (name,)).fetchone()
    return json.loads(row[0])


def counts(store: Store) -> dict[str, int]:
    tables = ("postoffice", "domain", "mailbox", "address", "mail_group", "group_member",
              "mail_list", "folder", "pop_retrieval")
    return {t: store.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


# --- post offices ---------------------------------------------------------------------------

def test_postoffice_lifecycle(store: Store) -> None:
    d = store.directory
    created = d.create_postoffice("Example", {"default_quota_mb": 50})
    assert created.name == "Example"
    assert created.options["default_quota_mb"] == 50
    assert created.options["disabled"] is False          # defaults merged in
    assert d.get_postoffice("example").name == "Example"  # case-insensitive lookup
    d.create_postoffice("another")
    assert [p.name for p in d.list_postoffices()] == ["another", "Example"]
    updated = d.update_postoffice("example", {"disabled": True, "footer.text": "Bye"})
    assert updated.options["disabled"] is True and updated.options["default_quota_mb"] == 50
    # only non-default values are stored; None resets to the default
    d.update_postoffice("example", {"disabled": False, "footer.text": None})
    assert raw_options(store, "postoffice", "Example") == {"default_quota_mb": 50}
    d.delete_postoffice("EXAMPLE")
    with pytest.raises(DirectoryError) as info:
        d.get_postoffice("example")
    assert info.value.field == "postoffice"


@pytest.mark.parametrize("name", ["", ".dot", "with space", "x" * 65, "a/b", "ünï"])
def test_bad_postoffice_names(store: Store, name: str) -> None:
    with pytest.raises(DirectoryError) as info:
        store.directory.create_postoffice(name)
    assert info.value.field == "name"
    assert store.directory.list_postoffices() == []


def test_duplicate_postoffice_is_refused_case_insensitively(store: Store) -> None:
    store.directory.create_postoffice("example")
    with pytest.raises(DirectoryError, match="already exists") as info:
        store.directory.create_postoffice("EXAMPLE")
    assert info.value.field == "name"


def test_option_errors_name_the_key_and_change_nothing(store: Store) -> None:
    d = store.directory
    with pytest.raises(DirectoryError) as info:
        d.create_postoffice("example", {"disabeld": True})
    assert info.value.field == "disabeld" and "did you mean disabled" in info.value.message
    with pytest.raises(DirectoryError) as info:
        d.create_postoffice("example", {"default_quota_mb": "lots"})
    assert info.value.field == "default_quota_mb"
    assert d.list_postoffices() == []
    d.create_postoffice("example")
    with pytest.raises(DirectoryError) as info:
        d.update_postoffice("example", {"disabled": True, "webadmin.max_mailboxes": -1})
    assert info.value.field == "webadmin.max_mailboxes"
    assert d.get_postoffice("example").options["disabled"] is False


def test_text_values_are_parsed_for_typed_options(store: Store) -> None:
    po = store.directory.create_postoffice("example", {"disabled": "yes",
                                                       "default_quota_mb": "25"})
    assert po.options["disabled"] is True and po.options["default_quota_mb"] == 25


def test_delete_postoffice_with_mailboxes_needs_force(store: Store, po: str) -> None:
    d = store.directory
    d.create_mailbox(po, "bob", PASSWORD)
    d.create_group(po, "staff")
    d.create_list(po, "news", {"domain": "example.com"})
    d.create_postoffice("other")
    d.create_domain("other.example", "other")
    d.create_group("other", "friends")
    d.add_group_member("other", "friends", "[SF:example/bob]")
    store.messages.append(po, "bob", "Inbox", b"Subject: hi\r\n\r\nhello\r\n")
    box_dir = store.home.messages / "example"
    assert any(p.is_file() for p in box_dir.rglob("*"))
    before = counts(store)
    with pytest.raises(DirectoryError, match="--force") as info:
        d.delete_postoffice(po)
    assert info.value.field == "postoffice"
    assert counts(store) == before
    d.delete_postoffice(po, force=True)
    assert [p.name for p in d.list_postoffices()] == ["other"]
    after = counts(store)
    assert after["mailbox"] == 0 and after["folder"] == 0 and after["mail_list"] == 0
    assert after["domain"] == 1 and after["mail_group"] == 1
    assert d.get_group("other", "friends").members == []
    assert d.list_addresses() == []
    assert not any(p.is_file() for p in box_dir.rglob("*"))


def test_empty_postoffice_deletes_without_force(store: Store, po: str) -> None:
    store.directory.delete_postoffice(po)
    assert store.directory.list_domains() == []


# --- domains --------------------------------------------------------------------------------

def test_idn_domain_stored_as_punycode_and_shown_in_unicode(store: Store, po: str) -> None:
    d = store.directory
    created = d.create_domain("Bücher.Example", po)
    assert created.name == "xn--bcher-kva.example"
    assert created.display_name == "bücher.example"
    assert created.postoffice == po
    assert d.get_domain("bücher.example").id == created.id
    assert d.get_domain("XN--BCHER-KVA.example").id == created.id
    assert [x.name for x in d.list_domains(po)] == ["example.com", "xn--bcher-kva.example"]


def test_domain_errors(store: Store, po: str) -> None:
    d = store.directory
    d.create_postoffice("other")
    with pytest.raises(DirectoryError, match="already belongs to post office example") as info:
        d.create_domain("EXAMPLE.com", "other")
    assert info.value.field == "domain"
    for bad in ("exa mple.com", "a..b", "bad_label.com", "x" * 64 + ".com"):
        with pytest.raises(DirectoryError) as info:
            d.create_domain(bad, "other")
        assert info.value.field == "domain"
    with pytest.raises(DirectoryError) as info:
        d.create_domain("new.example", "nowhere")
    assert info.value.field == "postoffice"
    with pytest.raises(DirectoryError) as info:
        d.create_domain("new.example", "other", {"blacklist": ["not a domain"]})
    assert info.value.field == "blacklist"
    assert d.list_domains("other") == []
    with pytest.raises(DirectoryError) as info:
        d.list_domains("nowhere")
    assert info.value.field == "postoffice"


def test_domain_options(store: Store, po: str) -> None:
    d = store.directory
    updated = d.update_domain("example.com", {"blacklist": ["Spam.Example", "bücher.example"],
                                              "postmaster_address": "Bob@Example.COM",
                                              "dkim.private_key": "-----BEGIN ..."})
    assert updated.options["blacklist"] == ["spam.example", "xn--bcher-kva.example"]
    assert updated.options["postmaster_address"] == "Bob@example.com"
    with pytest.raises(DirectoryError) as info:
        d.update_domain("example.com", {"smart_host.port": 70000})
    assert info.value.field == "smart_host.port"
    with pytest.raises(DirectoryError) as info:
        d.update_domain("example.com", {"dkim.algorithm": "md5"})
    assert info.value.field == "dkim.algorithm"


def test_delete_domain_removes_its_addresses(store: Store, po: str) -> None:
    d = store.directory
    d.create_domain("example.net", po)
    d.create_mailbox(po, "bob", PASSWORD)
    assert len(d.list_addresses(postoffice=po)) == 2
    d.delete_domain("example.net")
    assert [a.address for a in d.list_addresses()] == ["[SMTP:bob@example.com]"]
    with pytest.raises(DirectoryError):
        d.get_domain("example.net")


def test_catch_all_resolution(store: Store, po: str) -> None:
    d = store.directory
    d.create_mailbox(po, "bob", PASSWORD)
    d.create_mailbox(po, "info", PASSWORD)
    assert d.resolve("nobody@example.com") is None
    d.update_domain("example.com", {"catch_all": "info@example.com"})
    exact = d.resolve("BOB@example.com")
    assert exact is not None and exact.target == "[SF:example/bob]"
    caught = d.resolve("nobody@example.com")
    assert caught is not None
    assert (caught.address, caught.target) == ("[SMTP:*@example.com]", "[SF:example/info]")
    assert d.get_domain("example.com").options["catch_all"] == "info@example.com"
    d.update_domain("example.com", {"catch_all": ""})
    assert d.resolve("nobody@example.com") is None


def test_catch_all_must_name_a_mapped_local_address(store: Store, po: str) -> None:
    d = store.directory
    with pytest.raises(DirectoryError) as info:
        d.update_domain("example.com", {"catch_all": "ghost@example.com"})
    assert info.value.field == "catch_all"
    assert d.get_domain("example.com").options["catch_all"] == ""
    with pytest.raises(DirectoryError):
        d.create_domain("example.org", po, {"catch_all": "ghost@example.com"})
    assert [x.name for x in d.list_domains(po)] == ["example.com"]
    # a remote catch-all is allowed (the manual warns against it)
    d.update_domain("example.com", {"catch_all": "archive@elsewhere.example"})
    found = d.resolve("x@example.com")
    assert found is not None and found.target == "[SMTP:archive@elsewhere.example]"


def test_deleting_the_catch_all_mailbox_clears_the_option(store: Store, po: str) -> None:
    d = store.directory
    d.create_mailbox(po, "info", PASSWORD)
    d.update_domain("example.com", {"catch_all": "info@example.com"})
    d.delete_mailbox(po, "info")
    assert d.resolve("x@example.com") is None
    assert d.get_domain("example.com").options["catch_all"] == ""


# --- mailboxes ------------------------------------------------------------------------------

def test_create_mailbox_makes_folders_and_one_address_per_domain(store: Store, po: str) -> None:
    d = store.directory
    d.create_domain("bücher.example", po)
    box = d.create_mailbox(po, "Bob", PASSWORD, options={"friendly_name": "Bob B."})
    assert (box.postoffice, box.name, box.type, box.quota_bytes) == (po, "Bob", "USER", None)
    assert box.login == "Bob@example" and box.connector_address == "[SF:example/Bob]"
    assert box.options["friendly_name"] == "Bob B." and box.options["disabled"] is False
    folders = {f.name for f in store.messages.list_folders(po, "bob")}
    assert {"Inbox", "Sent Items", "Drafts", "Deleted Items", "Junk E-mail"} <= folders
    assert sorted(a.address for a in d.list_addresses(target="[SF:example/Bob]")) == [
        "[SMTP:Bob@example.com]", "[SMTP:Bob@xn--bcher-kva.example]"]
    assert [b.name for b in d.list_mailboxes(po)] == ["Bob"]
    # 5.2.3: addresses come with new mailboxes, not with new domains
    d.create_domain("late.example", po)
    assert len(d.list_addresses(target="[SF:example/Bob]")) == 2


def test_auto_address_setting_off(store: Store, po: str) -> None:
    store.settings.set("messaging_manager.administration.auto_create_address_per_domain", False)
    store.directory.create_mailbox(po, "bob", PASSWORD)
    assert store.directory.list_addresses() == []


def test_mailbox_quota_defaults(store: Store, po: str) -> None:
    d = store.directory
    assert d.create_mailbox(po, "a", PASSWORD).quota_bytes is None
    store.settings.set("messaging_manager.administration.new_mailbox_size_limit_enabled", True)
    store.settings.set("messaging_manager.administration.new_mailbox_size_limit", 100)
    assert d.create_mailbox(po, "b", PASSWORD).quota_bytes == 100 * MB
    d.update_postoffice(po, {"default_quota_mb": 20})
    assert d.create_mailbox(po, "c", PASSWORD).quota_bytes == 20 * MB
    assert d.create_mailbox(po, "d", PASSWORD, quota_bytes=None).quota_bytes is None
    assert d.create_mailbox(po, "e", PASSWORD, quota_bytes=5).quota_bytes == 5
    assert d.update_mailbox(po, "e", quota_bytes=None).quota_bytes is None
    assert d.update_mailbox(po, "e", type="admin").type == "ADMIN"
    assert d.update_mailbox(po, "e", options={"disabled": True}).type == "ADMIN"


def test_mailbox_errors_change_nothing(store: Store, po: str) -> None:
    d = store.directory
    d.create_mailbox(po, "bob", PASSWORD)
    before = counts(store)
    cases = [
        (dict(postoffice=po, name="BOB"), "name"),
        (dict(postoffice=po, name="bad name"), "name"),
        (dict(postoffice=po, name="x+y"), "name"),
        (dict(postoffice="nowhere", name="carol"), "postoffice"),
        (dict(postoffice=po, name="carol", quota_bytes=-1), "quota"),
        (dict(postoffice=po, name="carol", type="ROOT"), "type"),
        (dict(postoffice=po, name="carol", options={"nope": 1}), "nope"),
        (dict(postoffice=po, name="carol", options={"disabled": 3}), "disabled"),
        (dict(postoffice=po, name="carol", options={"redirect.addresses": ["not-an-address"]}),
         "redirect.addresses"),
        (dict(postoffice=po, name="carol", options={"autoresponder.start_time": "tomorrow"}),
         "autoresponder.start_time"),
    ]
    for kwargs, field in cases:
        with pytest.raises(DirectoryError) as info:
            d.create_mailbox(password=PASSWORD, **kwargs)
        assert info.value.field == field, kwargs
    with pytest.raises(PasswordPolicyError):
        d.create_mailbox(po, "carol", "short")
    with pytest.raises(PasswordPolicyError):
        d.create_mailbox(po, "carolyn", "Carolyn-1234!")   # contains the user name
    with pytest.raises(DirectoryError) as info:
        d.update_mailbox(po, "bob", quota_bytes=-5)
    assert info.value.field == "quota"
    with pytest.raises(DirectoryError) as info:
        d.update_mailbox(po, "nobody", options={"disabled": True})
    assert info.value.field == "mailbox"
    assert counts(store) == before


def test_autoresponder_times_are_iso_8601(store: Store, po: str) -> None:
    box = store.directory.create_mailbox(po, "bob", PASSWORD, options={
        "autoresponder.start_time": "2026-12-24T17:00", "autoresponder.end_time": "2027-01-02"})
    assert box.options["autoresponder.start_time"] == "2026-12-24T17:00"


def test_mailbox_and_group_names_do_not_collide(store: Store, po: str) -> None:
    d = store.directory
    d.create_mailbox(po, "bob", PASSWORD)
    d.create_group(po, "staff")
    with pytest.raises(DirectoryError, match="mailbox") as info:
        d.create_group(po, "Bob")
    assert info.value.field == "name"
    with pytest.raises(DirectoryError, match="group"):
        d.create_mailbox(po, "staff", PASSWORD)


def test_password_secret_follows_the_encrypt_setting(store: Store, po: str) -> None:
    d = store.directory
    box = d.create_mailbox(po, "bob", PASSWORD)
    assert box.has_recoverable_secret and d.recoverable_secret(po, "bob") == PASSWORD
    store.settings.set("messaging_manager.security.encrypt_passwords", False)
    assert d.create_mailbox(po, "carol", PASSWORD).has_recoverable_secret is False
    assert d.recoverable_secret(po, "carol") is None
    d.set_password(po, "bob", "N3w-Secret-Pass")
    assert d.recoverable_secret(po, "bob") is None
    assert d.authenticate("bob@example", "N3w-Secret-Pass") is not None
    assert d.authenticate("bob@example", PASSWORD) is None
    store.settings.set("messaging_manager.security.encrypt_passwords", True)
    d.set_password(po, "bob", "Th1rd-Secret-Pass")
    assert d.recoverable_secret(po, "bob") == "Th1rd-Secret-Pass"


def test_secret_is_bound_to_its_row(store: Store, po: str) -> None:
    d = store.directory
    d.create_mailbox(po, "bob", PASSWORD)
    d.create_mailbox(po, "carol", "Other-Pass-123")
    with store.transaction() as conn:
        conn.execute("UPDATE mailbox SET password_secret = (SELECT password_secret FROM mailbox "
                     "WHERE name = 'bob') WHERE name = 'carol'")
    assert d.recoverable_secret(po, "carol") is None


def test_set_password_applies_the_policy(store: Store, po: str) -> None:
    d = store.directory
    d.create_mailbox(po, "bob", PASSWORD)
    with pytest.raises(PasswordPolicyError):
        d.set_password(po, "bob", "weak")
    assert d.authenticate("bob@example", PASSWORD) is not None
    with pytest.raises(DirectoryError) as info:
        d.set_password(po, "nobody", PASSWORD)
    assert info.value.field == "mailbox"


def test_delete_mailbox_removes_addresses_memberships_and_files(store: Store, po: str) -> None:
    d = store.directory
    d.create_mailbox(po, "bob", PASSWORD)
    d.add_address("robert@example.com", "[SF:example/bob]")
    d.create_group(po, "staff")
    d.add_group_member(po, "staff", "[SF:example/bob]")
    d.add_group_member(po, "staff", "friend@elsewhere.example")
    store.messages.append(po, "bob", "Inbox", b"Subject: x\r\n\r\nbody\r\n")
    d.add_pop_retrieval(po, "bob", {"host": "pop.example.net", "username": "bob"}, "pw")
    d.delete_mailbox(po, "BOB")
    assert d.list_mailboxes(po) == []
    assert d.list_addresses() == []
    assert d.get_group(po, "staff").members == ["[SMTP:friend@elsewhere.example]"]
    assert counts(store)["pop_retrieval"] == 0 and counts(store)["folder"] == 0
    assert not any(p.is_file() for p in (store.home.messages).rglob("*"))
    with pytest.raises(DirectoryError) as info:
        d.delete_mailbox(po, "bob")
    assert info.value.field == "mailbox"


def test_default_message_is_placed_in_new_mailboxes(store: Store, po: str) -> None:
    store.directory.update_postoffice(po, {"default_message": "Subject: Welcome\n\nHello!\n"})
    store.directory.create_mailbox(po, "bob", PASSWORD)
    [message] = store.messages.list_messages(po, "bob", "Inbox")
    assert b"Subject: Welcome\r\n" in store.messages.read(po, "bob", "Inbox", message.uid)


# --- logins ---------------------------------------------------------------------------------

def test_authenticate_by_every_login_form(store: Store, po: str) -> None:
    d = store.directory
    d.create_domain("bücher.example", po)
    d.create_mailbox(po, "bob", PASSWORD)
    d.add_address("robert@example.com", "[SF:example/bob]")
    for login in ("bob@example", "BOB@Example", "bob@example.com", "robert@example.com",
                  "bob@bücher.example", "bob@xn--bcher-kva.example"):
        box = d.authenticate(login, PASSWORD)
        assert box is not None and box.name == "bob", login
    assert d.authenticate("bob@example", "wrong-Password1") is None
    assert d.authenticate("nobody@example", PASSWORD) is None
    assert d.authenticate("bob", PASSWORD) is None
    assert d.authenticate("[SF:example/bob]", PASSWORD) is None
    assert d.authenticate("bob%example", PASSWORD) is None
    assert d.authenticate("bob%example", PASSWORD, separators="%#") is not None
    assert d.authenticate("bob#example.com", PASSWORD, separators="%#") is not None
    found = d.find_login("robert@example.com")
    assert found is not None and found.login == "bob@example"


def test_catch_all_does_not_grant_a_login(store: Store, po: str) -> None:
    d = store.directory
    d.create_mailbox(po, "info", PASSWORD)
    d.update_domain("example.com", {"catch_all": "info@example.com"})
    assert d.authenticate("anything@example.com", PASSWORD) is None


def test_groups_cannot_log_in(store: Store, po: str) -> None:
    d = store.directory
    d.create_group(po, "staff")
    d.add_address("staff@example.com", "[SF:example/staff]")
    assert d.authenticate("staff@example.com", PASSWORD) is None


@pytest.mark.parametrize("change", [
    ("mailbox", {"disabled": True}),
    ("mailbox", {"prevent_authentication": True}),
    ("postoffice", {"disabled": True}),
])
def test_disabled_logins_are_refused(store: Store, po: str, change: tuple) -> None:
    d = store.directory
    d.create_mailbox(po, "bob", PASSWORD)
    assert d.authenticate("bob@example.com", PASSWORD) is not None
    kind, options = change
    if kind == "mailbox":
        d.update_mailbox(po, "bob", options=options)
    else:
        d.update_postoffice(po, options)
    assert d.authenticate("bob@example", PASSWORD) is None
    assert d.authenticate("bob@example.com", PASSWORD) is None
