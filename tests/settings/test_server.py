"""Settings stored in the store: overrides, generation, live reload, robustness."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from postroom.settings.model import OptionError
from postroom.settings.server import GENERATION_KEY, Settings
from postroom.store import Store


def test_defaults_are_the_manuals(store: Store) -> None:
    s = store.settings
    assert s.get("smtp.port") == 25
    assert s.get("smtp.submission_port") == 587
    assert s.get("smtp.smtps_port") == 465
    assert s.get("smtp.bind") == ["0.0.0.0", "::"]
    assert (s.get("pop3.port"), s.get("pop3.pop3s_port")) == (110, 995)
    assert (s.get("imap.port"), s.get("imap.imaps_port")) == (143, 993)
    assert s.get("dns.nameservers") == []
    retries = ("first_retry", "second_retry", "third_retry", "subsequent_retries")
    assert [s.get(f"smtp.delivery.{k}") for k in retries] == [15, 30, 60, 240]
    assert s.get("smtp.delivery.failed_message_lifetime") == 30
    assert s.get("messaging_manager.security.encrypt_passwords") is True
    assert s.changed() == {}
    assert s.generation() == 0


def test_set_get_reset_and_generation(store: Store) -> None:
    s = store.settings
    assert s.set("smtp.port", 2525) == 2525
    assert s.get("smtp.port") == 2525
    assert s.set_text("smtp.bind", "127.0.0.1") == ["127.0.0.1"]
    assert s.changed() == {"smtp.bind": ["127.0.0.1"], "smtp.port": 2525}
    assert s.generation() == 2
    assert s.reset("smtp.port") == 25
    assert s.get("smtp.port") == 25
    assert s.generation() == 3
    assert s.changed() == {"smtp.bind": ["127.0.0.1"]}


def test_returned_lists_are_copies(store: Store) -> None:
    store.settings.get("smtp.bind").append("10.0.0.1")
    assert store.settings.get("smtp.bind") == ["0.0.0.0", "::"]


def test_items_by_prefix_mark_overrides(store: Store) -> None:
    store.settings.set("smtp.delivery.first_retry", 5)
    items = {o.key: (v, d) for o, v, d in store.settings.items("smtp.delivery")}
    assert items["smtp.delivery.first_retry"] == (5, False)
    assert items["smtp.delivery.second_retry"] == (30, True)
    assert all(k.startswith("smtp.delivery.") for k in items)
    assert len(store.settings.items()) > 400


def test_unknown_key_and_bad_value_change_nothing(store: Store) -> None:
    unknown = r"smtp\.prot: unknown server option; did you mean smtp\.port"
    with pytest.raises(OptionError, match=unknown):
        store.settings.set("smtp.prot", 25)
    with pytest.raises(OptionError, match=r"smtp\.port: must be at most 65535"):
        store.settings.set("smtp.port", 70000)
    with pytest.raises(OptionError, match=r"smtp\.port"):
        store.settings.set_text("smtp.port", "many")
    with pytest.raises(OptionError, match="unknown"):
        store.settings.get("no.such.key")
    assert store.settings.changed() == {}
    assert store.settings.generation() == 0
    assert store.conn.execute("SELECT COUNT(*) FROM setting").fetchone()[0] == 0


def test_values_persist_across_opens(home: Path) -> None:
    with Store.open(home) as first:
        first.settings.set("smtp.greylisting.enabled", True)
    with Store.open(home) as again:
        assert again.settings.get("smtp.greylisting.enabled") is True
        assert again.settings.generation() == 1


def test_second_store_sees_changes_after_reload(home: Path) -> None:
    with Store.open(home) as service, Store.open(home) as admin:
        seen = service.settings
        assert seen.get("smtp.outbound.remote_timeout") == 300
        assert seen.reload_if_changed() is False
        admin.settings.set("smtp.outbound.remote_timeout", 60)
        # The cached value stays until the service asks (a dict lookup on hot paths) ...
        assert seen.get("smtp.outbound.remote_timeout") == 300
        assert seen.reload_if_changed() is True
        assert seen.get("smtp.outbound.remote_timeout") == 60
        assert seen.generation() == 1
        assert seen.reload_if_changed() is False
        # Writes to other tables do not count as settings changes.
        admin.conn.execute("INSERT INTO meta(key, value) VALUES ('unrelated', 'x')")
        assert seen.reload_if_changed() is False
        admin.settings.reset("smtp.outbound.remote_timeout")
        assert seen.reload_if_changed() is True
        assert seen.get("smtp.outbound.remote_timeout") == 300


def test_rolled_back_change_is_not_seen(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.settings.set("smtp.port", 2526)
        raise RuntimeError("abort")
    assert store.settings.get("smtp.port") == 25
    assert store.settings.generation() == 0


def test_unknown_or_broken_stored_rows_are_ignored(home: Path, store: Store) -> None:
    with store.transaction() as conn:
        rows = [("from.a.newer.version", json.dumps(1)), ("smtp.port", "{not json"),
                ("pop3.port", json.dumps(99999)), ("imap.port", json.dumps(1143))]
        conn.executemany("INSERT INTO setting(key, value, changed_at) VALUES (?, ?, ?)",
                         [(k, v, time.time()) for k, v in rows])
    fresh = Settings(store)
    assert fresh.get("smtp.port") == 25
    assert fresh.get("pop3.port") == 110
    assert fresh.get("imap.port") == 1143
    assert "from.a.newer.version" not in fresh.changed()


def test_secrets_are_stored_encrypted(store: Store) -> None:
    store.settings.set("smtp.smart_host.password", "hunter2-secret")
    raw = store.conn.execute(
        "SELECT value FROM setting WHERE key = 'smtp.smart_host.password'").fetchone()[0]
    assert "hunter2" not in raw
    assert Settings(store).get("smtp.smart_host.password") == "hunter2-secret"


def test_generation_counter_is_a_meta_row(store: Store) -> None:
    store.settings.set("pop3.general.apop_enabled", True)
    row = store.conn.execute("SELECT value FROM meta WHERE key = ?", (GENERATION_KEY,)).fetchone()
    assert row[0] == "1"


def test_a_change_inside_a_transaction_is_seen_by_other_threads_after_the_commit(
        store: Store) -> None:
    """Another thread that reads the settings while a transaction holding a change is
    still open caches the old values; the commit must make it read them again."""
    import threading

    inside, read = threading.Event(), threading.Event()
    seen: list[object] = []

    def reader() -> None:
        inside.wait(10)
        seen.append(store.settings.get("smtp.outbound_whitelist.addresses"))  # before commit
        read.set()

    thread = threading.Thread(target=reader)
    thread.start()
    with store.transaction():
        store.settings.set("smtp.outbound_whitelist.addresses", ["192.0.2.7"])
        inside.set()
        assert read.wait(10)
    thread.join(10)
    assert seen == [[]]
    assert store.settings.get("smtp.outbound_whitelist.addresses") == ["192.0.2.7"]
