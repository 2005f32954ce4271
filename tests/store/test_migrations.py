"""Schema migrations: a data directory made by an older Postroom is upgraded in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from postroom.store import Store
from postroom.store.backends.sqlite import db
from postroom.store.datadir import DataDir

FIXTURE = Path(__file__).parents[1] / "fixtures" / "schema_v1.sql"


def old_datadir(root: Path) -> DataDir:
    """A data directory whose database was written by schema version 1."""
    home = DataDir(root)
    home.create_layout()
    conn = sqlite3.connect(home.database, isolation_level=None)
    conn.executescript(FIXTURE.read_text())
    conn.close()
    return home


def test_fixture_is_version_1(tmp_path: Path) -> None:
    home = old_datadir(tmp_path / "old")
    conn = db.connect(home.database)
    assert db.schema_version(conn) == 1
    assert "login_record" not in {r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}


def test_old_data_directory_is_upgraded_in_place(tmp_path: Path) -> None:
    home = old_datadir(tmp_path / "old")
    with Store.open(home.root) as store:
        conn = store.conn
        assert db.schema_version(conn) == db.latest_version()
        # Data written by version 1 is intact ...
        row = conn.execute("SELECT name, quota_bytes, options FROM mailbox").fetchone()
        assert tuple(row) == ("alice", 104857600, '{"friendly_name": "Alice Smith"}')
        assert conn.execute("SELECT target FROM address").fetchone()[0] == "[SF:company/alice]"
        # ... and version 2's additions are usable.
        conn.execute("INSERT INTO login_record VALUES (1, 'pop3', '127.0.0.1', 1.0)")
        assert conn.execute("SELECT last_login_at FROM mailbox").fetchone()[0] is None


def test_upgrade_through_cli(cli_subprocess, tmp_path: Path) -> None:
    home = old_datadir(tmp_path / "old")
    out = cli_subprocess("--home", str(home.root), "init").stdout
    assert f"schema 1 -> {db.latest_version()}" in out


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    home = old_datadir(tmp_path / "old")
    conn = sqlite3.connect(home.database, isolation_level=None)
    conn.execute(f"PRAGMA user_version={db.latest_version() + 1}")
    conn.close()
    with pytest.raises(db.SchemaError, match="newer"):
        Store.open(home.root)


def test_migration_is_all_or_nothing(tmp_path: Path) -> None:
    """A migration that fails part-way leaves the database at the previous version."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    db.migrate(conn, target=1)
    conn.execute("CREATE TABLE login_record (x)")  # makes migration 2 fail on its first statement
    with pytest.raises(sqlite3.OperationalError):
        db.migrate(conn)
    assert db.schema_version(conn) == 1
    columns = [r[1] for r in conn.execute("PRAGMA table_info(mailbox)")]
    assert "last_login_at" not in columns


def test_migrations_are_numbered_without_gaps() -> None:
    versions = [v for v, _, _ in db.migrations()]
    assert versions == list(range(1, len(versions) + 1))
