"""CSV user import and export (manual 5.3.7.2, 5.3.7.4) through `postroom postoffice`."""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path

import pytest

from postroom.cli import users_csv
from tests.cli.helpers import PASSWORD, flat, names, setup_postoffice


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def mailboxes(cli, po: str = "example") -> dict[str, dict]:
    return {b["name"]: b for b in cli("mailbox", "list", po, "--json").json()}


# --- reading the file (no store needed) ---------------------------------------------------

def test_read_rows_positional_and_header() -> None:
    columns, rows = users_csv.read_rows(b"a@x.com,pw,10\n\nb@x.com\n")
    assert columns == ["emailaddress", "password", "quota"]
    assert rows == [(1, ["a@x.com", "pw", "10"]), (3, ["b@x.com"])]
    columns, rows = users_csv.read_rows("\ufeffEmailAddress,Quota_MB\na@x.com,5\n".encode())
    assert columns == ["emailaddress", "quota_mb"]
    assert rows == [(2, ["a@x.com", "5"])]


@pytest.mark.parametrize(("data", "expected"), [
    (b"", "empty"),
    (b"\n  \n", "empty"),
    (b"emailaddress,password\n", "only a header"),
    (b"a@x.com\n\xff\xfe@x.com\n", "line 2: not UTF-8"),
    (b'a@x.com,"unterminated\n', "line 1"),
    (b"emailaddress,shoe_size\na@x.com,9\n", "unknown column 'shoe_size'"),
    (b"a@x.com\x00\n", "NUL"),
])
def test_read_rows_refuses_unusable_files(data: bytes, expected: str) -> None:
    with pytest.raises(users_csv.CsvFileError) as info:
        users_csv.read_rows(data)
    assert info.value.field == "file"
    assert expected in str(info.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("250", 250 * 1024 * 1024), ("0.5", 512 * 1024), ("0", 0), ("unlimited", None)])
def test_parse_quota(text: str, expected: int | None) -> None:
    assert users_csv.parse_quota_mb(text) == expected


@pytest.mark.parametrize("text", ["-1", "ten", "", "nan", "inf"])
def test_parse_quota_refuses(text: str) -> None:
    with pytest.raises(users_csv.RowError) as info:
        users_csv.parse_quota_mb(text)
    assert info.value.field == "quota"


def test_parse_fields() -> None:
    assert users_csv.parse_fields(None, False) == list(users_csv.DEFAULT_EXPORT_FIELDS)
    assert users_csv.parse_fields("mailbox,quota_mb", True) == ["mailbox", "quota_mb",
                                                                 "password"]
    for bad, include in (("mailbox,hash", False), ("password", False), ("mailbox,mailbox",
                                                                        False)):
        with pytest.raises(users_csv.CsvFileError):
            users_csv.parse_fields(bad, include)


# --- import --------------------------------------------------------------------------------

def test_import_manual_layout(cli, tmp_path: Path, store) -> None:
    cli("postoffice", "create", "example")
    cli("postoffice", "set", "example", "default_quota_mb=75")
    data = write(tmp_path / "users.csv",
                 f"ann@example.com,{PASSWORD},100\n"
                 "bob@example.com\n"
                 f"cyd@example.org,{PASSWORD}\n"
                 "dee@example.com,,unlimited\n")
    out = cli("postoffice", "import-users", "example", str(data))
    assert "imported 4, failed 0" in flat(out.stdout)
    boxes = mailboxes(cli)
    assert set(boxes) == {"ann", "bob", "cyd", "dee"}
    assert boxes["ann"]["quota_mb"] == 100
    assert boxes["bob"]["quota_mb"] == 75       # the post office default
    assert boxes["dee"]["quota_mb"] is None
    # the row's address, plus one per domain of the post office (manual 5.2.3 default)
    assert set(boxes["cyd"]["addresses"]) == {"cyd@example.org", "cyd@example.com"}
    # the missing domains were created in the post office
    assert {d["name"] for d in cli("domain", "list", "--postoffice", "example",
                                   "--json").json()} == {"example.com", "example.org"}
    assert store.directory.authenticate("ann@example", PASSWORD) is not None
    assert store.directory.authenticate("ann@example.com", PASSWORD) is not None
    # generated passwords are printed once and work
    table = out.stdout
    assert "bob@example.com" in table and "dee@example.com" in table
    for line in table.splitlines():
        if "bob@example.com" in line:
            password = line.replace("│", " ").split()[-1]
            assert store.directory.authenticate("bob@example", password) is not None


def test_import_reports_bad_rows_and_imports_the_rest(cli, tmp_path: Path) -> None:
    setup_postoffice(cli)
    cli("mailbox", "create", "taken@example", "--password", PASSWORD)
    cli("postoffice", "create", "other")
    cli("domain", "create", "other.com", "--postoffice", "other")
    data = write(tmp_path / "users.csv",
                 "emailaddress,password,quota\n"        # 1 header
                 "good1@example.com,,10\n"              # 2
                 "bad-quota@example.com,,ten\n"         # 3
                 "negative@example.com,,-5\n"           # 4
                 "no-at-sign.example.com\n"             # 5
                 "x@-bad-.com\n"                        # 6
                 "taken@example.com\n"                  # 7 mailbox exists
                 "good1@example.com\n"                  # 8 duplicate in file
                 "weak@example.com,short\n"             # 9 password policy
                 "cols@example.com,,1,extra\n"          # 10 too many columns
                 "thief@other.com\n"                    # 11 domain of another PO
                 "good2@example.com\n")                 # 12
    out = cli("postoffice", "import-users", "example", str(data), expect=1)
    errors = flat(out.stderr)
    for expected in ("line 3: quota: not a number", "line 4: quota: must not be negative",
                     "line 5: emailaddress", "line 6: emailaddress", "line 7: mailbox",
                     "line 8: mailbox", "line 9: password", "line 10: columns",
                     "line 11: emailaddress"):
        assert expected in errors, expected
    assert "imported 2, failed 9" in flat(out.stdout)
    assert set(mailboxes(cli)) == {"taken", "good1", "good2"}
    assert mailboxes(cli, "other") == {}
    assert {d["name"] for d in cli("domain", "list", "--json").json()} == {
        "example.com", "other.com"}


def test_import_json_summary(cli, tmp_path: Path) -> None:
    setup_postoffice(cli)
    data = write(tmp_path / "u.csv", "a1@example.com\nbad,,\n")
    summary = cli("postoffice", "import-users", "example", str(data), "--json",
                  expect=1).json()
    assert summary["imported"] == 1 and summary["failed"] == 1
    assert summary["errors"] == [{"line": 2, "field": "emailaddress",
                                  "message": summary["errors"][0]["message"]}]
    assert [p["emailaddress"] for p in summary["passwords"]] == ["a1@example.com"]


def test_import_unusable_file_changes_nothing(cli, tmp_path: Path) -> None:
    setup_postoffice(cli)
    cases = {
        "empty.csv": b"",
        "latin1.csv": "ann@example.com\nbj\xf6rn@example.com\n".encode("latin-1"),
        "header.csv": b"emailaddress,favourite_colour\nann@example.com,red\n",
    }
    for name, data in cases.items():
        out = cli("postoffice", "import-users", "example", str(write(tmp_path / name, data)),
                  expect=2)
        assert "file" in flat(out.stderr), name
    assert "line 2" in flat(cli("postoffice", "import-users", "example",
                                str(tmp_path / "latin1.csv"), expect=2).stderr)
    cli("postoffice", "import-users", "example", str(tmp_path / "missing.csv"), expect=2)
    good = write(tmp_path / "good.csv", "ann@example.com\n")
    cli("postoffice", "import-users", "nowhere", str(good), expect=2)
    assert mailboxes(cli) == {}
    assert [d["name"] for d in cli("domain", "list", "--json").json()] == ["example.com"]


def test_import_passwords_out_file(cli, tmp_path: Path, store) -> None:
    setup_postoffice(cli)
    data = write(tmp_path / "u.csv", "ann@example.com\nbob@example.com,,5\n")
    secrets_file = tmp_path / "passwords.csv"
    out = cli("postoffice", "import-users", "example", str(data),
              "--passwords-out", str(secrets_file))
    assert "2 generated password(s) written" in flat(out.stdout)
    assert os.stat(secrets_file).st_mode & 0o777 == 0o600
    rows = list(csv.reader(io.StringIO(secrets_file.read_text())))
    assert rows[0] == ["emailaddress", "password"]
    pairs = dict(rows[1:])
    assert set(pairs) == {"ann@example.com", "bob@example.com"}
    assert pairs["ann@example.com"] not in out.stdout
    assert store.directory.authenticate("ann@example", pairs["ann@example.com"]) is not None


def test_import_idn_domain(cli, tmp_path: Path) -> None:
    cli("postoffice", "create", "books")
    data = write(tmp_path / "u.csv", "anna@bücher.de,,5\n")
    cli("postoffice", "import-users", "books", str(data))
    assert cli("domain", "list", "--json").json()[0]["name"] == "bücher.de"
    assert mailboxes(cli, "books")["anna"]["addresses"] == ["anna@bücher.de"]


# --- export --------------------------------------------------------------------------------

def test_export_fields_and_no_password_hashes(cli, tmp_path: Path) -> None:
    setup_postoffice(cli)
    cli("mailbox", "create", "bob@example", "--password", PASSWORD, "--quota", "20",
        "--type", "ADMIN")
    cli("address", "add", "robert@example.com", "bob@example")
    cli("mailbox", "create", "nomail@example", "--password", PASSWORD)
    cli("address", "delete", "nomail@example.com")
    target = tmp_path / "out.csv"
    cli("postoffice", "export-users", "example", str(target), "--fields",
        ",".join(users_csv.EXPORT_FIELDS))
    text = target.read_text()
    assert "argon2" not in text and PASSWORD not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0].keys()) == list(users_csv.EXPORT_FIELDS)
    bob = next(r for r in rows if r["mailbox"] == "bob")
    assert bob["emailaddress"] == "bob@example.com"
    assert set(bob["addresses"].split(";")) == {"bob@example.com", "robert@example.com"}
    assert (bob["quota_mb"], bob["type"], bob["disabled"], bob["used_mb"]) == (
        "20", "ADMIN", "false", "0")
    nomail = next(r for r in rows if r["mailbox"] == "nomail")
    assert nomail["emailaddress"] == ""
    default = cli("postoffice", "export-users", "example", "-").stdout
    assert default.splitlines()[0] == "emailaddress,mailbox,quota_mb"


def test_export_password_needs_flag(cli, tmp_path: Path) -> None:
    setup_postoffice(cli)
    cli("mailbox", "create", "bob@example", "--password", PASSWORD)
    target = tmp_path / "out.csv"
    out = cli("postoffice", "export-users", "example", str(target), "--fields",
              "emailaddress,password", expect=2)
    assert "include-password" in flat(out.stderr)
    assert not target.exists()
    cli("postoffice", "export-users", "example", str(target), "--fields", "colour", expect=2)
    cli("postoffice", "export-users", "nowhere", str(target), expect=2)
    assert not target.exists()
    cli("postoffice", "export-users", "example", str(target), "--include-password")
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert rows[0]["password"] in ("", PASSWORD)   # only a recoverable secret is written
    assert "argon2" not in target.read_text()


@pytest.mark.slow  # 2,000 Argon2 hashes: ~24 s on two cores, hashing-bound
def test_round_trip_1000_users(cli, tmp_path: Path, store) -> None:
    cli("postoffice", "create", "first")
    cli("postoffice", "create", "second")
    lines = ["emailaddress,password,quota"]
    for i in range(1000):
        domain = f"d{i % 3}.example"
        password = f"Pw-{i:04d}-Secret!" if i % 2 else ""
        quota = str(10 + i % 7) if i % 5 else ""
        lines.append(f"user{i:04d}@{domain},{password},{quota}")
    source = write(tmp_path / "in.csv", "\n".join(lines) + "\n")
    started = time.monotonic()
    out = cli("postoffice", "import-users", "first", str(source), "--json")
    summary = out.json()
    assert summary["imported"] == 1000 and summary["failed"] == 0
    assert len(summary["passwords"]) == 500
    exported = tmp_path / "out.csv"
    cli("postoffice", "export-users", "first", str(exported), "--include-password",
        "--fields", "emailaddress,mailbox,quota_mb,type,disabled,addresses")
    assert "argon2" not in exported.read_text()
    # the other post office gets its own domains, so map the addresses across
    second = write(tmp_path / "second.csv",
                   exported.read_text().replace(".example", ".example2"))
    again = cli("postoffice", "import-users", "second", str(second), "--json").json()
    assert again["imported"] == 1000 and again["failed"] == 0
    assert again["passwords"] == []          # every password came across
    elapsed = time.monotonic() - started

    def snapshot(po: str) -> set[tuple]:
        return {(b["name"], b["quota_mb"], b["type"], b["disabled"],
                 tuple(sorted(a.replace(".example2", ".example") for a in b["addresses"])))
                for b in cli("mailbox", "list", po, "--json").json()}

    first, second_set = snapshot("first"), snapshot("second")
    assert len(first) == 1000
    assert first == second_set
    assert names(cli("domain", "list", "--postoffice", "second", "--json").json()) == {
        "d0.example2", "d1.example2", "d2.example2"}
    generated = summary["passwords"][0]
    for login, password in (("user0001@second", "Pw-0001-Secret!"),
                            ("user0001@d1.example2", "Pw-0001-Secret!"),
                            (generated["emailaddress"].replace(".example", ".example2"),
                             generated["password"])):
        assert store.directory.authenticate(login, password) is not None, login
    print(f"round trip of 1,000 users: {elapsed:.1f} s")


def test_export_include_password_only_when_recoverable(cli, tmp_path: Path, store) -> None:
    setup_postoffice(cli)
    cli("mailbox", "create", "kept@example", "--password", PASSWORD)
    store.settings.set("messaging_manager.security.encrypt_passwords", False)
    cli("mailbox", "create", "hashonly@example", "--password", "An0ther-Secret!")
    target = tmp_path / "out.csv"
    out = cli("postoffice", "export-users", "example", str(target), "--include-password",
              "--fields", "mailbox")
    assert "1 password(s) are not recoverable" in flat(out.stderr)
    rows = {r["mailbox"]: r["password"] for r in csv.DictReader(io.StringIO(
        target.read_text()))}
    assert rows == {"kept": PASSWORD, "hashonly": ""}
    assert "An0ther-Secret!" not in target.read_text()


def test_import_row_with_extra_addresses(cli, tmp_path: Path) -> None:
    setup_postoffice(cli)
    cli("mailbox", "create", "bob@example", "--password", PASSWORD)
    data = write(tmp_path / "u.csv",
                 "emailaddress,mailbox,addresses\n"
                 "ann@example.com,ann,ann@example.com;annie@example.net\n"
                 "cyd@example.com,cyd,cyd@example.com;bob@example.com\n")   # taken
    out = cli("postoffice", "import-users", "example", str(data), expect=1)
    assert "line 3: addresses: bob@example.com is already mapped" in flat(out.stderr)
    boxes = mailboxes(cli)
    assert set(boxes) == {"ann", "bob"}
    assert "annie@example.net" in boxes["ann"]["addresses"]


def test_import_shows_progress_on_a_terminal(home: Path, tmp_path: Path) -> None:
    """A large import run by a person (stdout is a terminal) draws a progress bar."""
    import pty
    import subprocess

    from tests.conftest import postroom_executable

    subprocess.run([*postroom_executable(), "--home", str(home), "postoffice", "create",
                    "example"], check=True, capture_output=True)
    lines = [f"u{i:03d}@example.com,,1" for i in range(users_csv.PROGRESS_ROWS)]
    source = write(tmp_path / "big.csv", "\n".join(lines) + "\n")
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([*postroom_executable(), "--home", str(home), "postoffice",
                             "import-users", "example", str(source), "--passwords-out",
                             str(tmp_path / "pw.csv")],
                            stdout=secondary, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(secondary)
    captured = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        captured += chunk
    assert proc.wait(timeout=120) == 0
    os.close(primary)
    text = captured.decode("utf-8", "replace")
    assert "importing users" in text
    assert f"imported {users_csv.PROGRESS_ROWS}, failed 0" in flat(text)
