"""SQLite connections and versioned schema migrations for the embedded store.

The database runs in WAL mode with ``synchronous=FULL``: a commit that returns is on
disk, which is what lets the SMTP service answer 250 after a commit. Several
processes (``postroom serve``, the admin CLI) may open the same file; SQLite's own
locking serialises writers and ``busy_timeout`` makes them wait instead of failing.

Migrations are numbered SQL files in ``migrations/`` (``0001_initial.sql`` …).
``PRAGMA user_version`` records the last one applied; opening a data directory made
by an older Postroom applies the missing ones in order, each in its own
transaction, so an interrupted upgrade resumes where it stopped. A database newer
than this code is refused rather than touched.
"""

from __future__ import annotations

import re
import sqlite3
from importlib import resources
from pathlib import Path

BUSY_TIMEOUT_MS = 30_000


class SchemaError(RuntimeError):
    """The database cannot be used by this version of Postroom."""


def migrations() -> list[tuple[int, str, str]]:
    """All migration scripts as (version, name, sql), in order."""
    found = []
    folder = resources.files(__package__) / "migrations"
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort()
    for expected, (version, name, _) in enumerate(found, start=1):
        if version != expected:
            raise SchemaError(f"migration {name} has number {version}, expected {expected}")
    return found


def latest_version() -> int:
    return len(migrations())


def connect(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the store database with the pragmas every Postroom connection needs.

    Connections are in autocommit mode (``isolation_level=None``): callers open
    transactions explicitly with ``BEGIN IMMEDIATE`` so that a read-modify-write
    (quota, UID allocation) holds the write lock from its first read.
    """
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                           timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys=ON")
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.row_factory = sqlite3.Row
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int | None = None) -> list[int]:
    """Apply the migrations this database lacks; return the versions applied."""
    scripts = migrations()
    target = len(scripts) if target is None else target
    current = schema_version(conn)
    if current > len(scripts):
        raise SchemaError(
            f"the data directory has schema version {current}, newer than this Postroom "
            f"understands ({len(scripts)}); upgrade Postroom")
    applied = []
    for version, _name, sql in scripts:
        if version <= current or version > target:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-check under the write lock: another process may have migrated meanwhile.
            if schema_version(conn) >= version:
                conn.execute("ROLLBACK")
                continue
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a migration script into statements (executescript would commit implicitly)."""
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
