"""`postroom init` and opening a data directory: idempotent, refuses foreign folders."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from postroom.net.certificates import certificate_names
from postroom.store import DataDirError, Store
from postroom.store.backends.sqlite import db
from postroom.store.datadir import DataDir


def test_init_creates_everything(cli_subprocess, home: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    result = cli_subprocess("--home", str(fresh), "init", "--hostname", "mx.example.test")
    assert "data directory ready" in result.stdout
    d = DataDir(fresh)
    assert d.is_initialised()
    for sub in ("messages", "queue", "pickup", "badmail", "quarantine", "logs", "tmp", "tls",
                "cache"):
        assert (fresh / sub).is_dir(), sub
    assert stat.S_IMODE(d.secret_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(d.key_file.stat().st_mode) == 0o600
    assert len(d.secret_key.read_bytes()) == 32
    assert "mx.example.test" in certificate_names(d.cert_file)
    conn = db.connect(d.database)
    assert db.schema_version(conn) == db.latest_version()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_init_is_idempotent_and_never_overwrites(cli_subprocess, tmp_path: Path) -> None:
    root = tmp_path / "d"
    cli_subprocess("--home", str(root), "init")
    d = DataDir(root)
    key, cert = d.secret_key.read_bytes(), d.cert_file.read_bytes()
    with Store.open(root) as s:
        s.conn.execute("INSERT INTO postoffice(name, created_at) VALUES ('kept', 0)")
    again = cli_subprocess("--home", str(root), "init")
    assert "nothing changed" in again.stdout
    assert d.secret_key.read_bytes() == key
    assert d.cert_file.read_bytes() == cert
    with Store.open(root) as s:
        assert s.conn.execute("SELECT name FROM postoffice").fetchone()[0] == "kept"


def test_init_recreates_only_missing_parts(cli_subprocess, tmp_path: Path) -> None:
    root = tmp_path / "d"
    cli_subprocess("--home", str(root), "init")
    key = DataDir(root).secret_key.read_bytes()
    (root / "tls" / "cert.pem").unlink()
    (root / "pickup").rmdir()
    out = cli_subprocess("--home", str(root), "init").stdout
    assert "certificate" in out and "pickup" in out
    assert DataDir(root).secret_key.read_bytes() == key


def test_foreign_directory_is_refused(cli_subprocess, tmp_path: Path) -> None:
    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("precious")
    result = cli_subprocess("--home", str(foreign), "init", expect=2)
    assert "not a Postroom data directory" in result.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["thesis.txt"]


def test_commands_refuse_uninitialised_directory(cli_subprocess, tmp_path: Path) -> None:
    result = cli_subprocess("--home", str(tmp_path / "nowhere"), "settings", "list", expect=2)
    assert "init" in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_home_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from tests.conftest import postroom_executable

    root = tmp_path / "env-home"
    proc = subprocess.run([*postroom_executable(), "init"], capture_output=True, text=True,
                          env={"POSTROOM_HOME": str(root), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert DataDir(root).is_initialised()


def test_damaged_secret_key_is_reported(home: Path) -> None:
    DataDir(home).secret_key.write_bytes(b"short")
    with pytest.raises(DataDirError, match="damaged"):
        Store.open(home)


def test_version(cli_subprocess) -> None:
    from postroom import __version__

    assert cli_subprocess("--version").stdout.strip() == f"postroom {__version__}"
