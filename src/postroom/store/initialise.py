"""`postroom init`: make a data directory ready to serve, without touching existing data."""

from __future__ import annotations

from pathlib import Path

from postroom.net.certificates import create_self_signed
from postroom.store.backends.sqlite import db
from postroom.store.datadir import DataDir, host_name


def initialise(root: Path, hostname: str | None = None) -> list[str]:
    """Create whatever the data directory lacks; return lines describing what was done."""
    home = DataDir(Path(root))
    report: list[str] = []
    created = home.create_layout()
    report.extend(f"created {path}" for path in created)
    conn = db.connect(home.database)
    try:
        before = db.schema_version(conn)
        applied = db.migrate(conn)
        if applied:
            report.append(f"database schema {before} -> {applied[-1]} ({home.database})")
    finally:
        conn.close()
    if not home.cert_file.exists() or not home.key_file.exists():
        name = hostname or host_name()
        create_self_signed(home.cert_file, home.key_file, name)
        report.append(f"created self-signed certificate for {name} ({home.cert_file})")
    if not report:
        report.append(f"{home.root} is already initialised; nothing changed")
    else:
        report.append(f"data directory ready: {home.root.resolve()}")
    return report
