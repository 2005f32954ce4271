"""The same commands through the installed `postroom` console script (a child process)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import PASSWORD, flat


def test_directory_commands_in_a_child_process(cli_subprocess, tmp_path: Path) -> None:
    run = cli_subprocess
    run("postoffice", "create", "example")
    run("domain", "create", "example.com", "--postoffice", "example")
    run("mailbox", "create", "bob@example", "--password", PASSWORD, "--quota", "50")
    run("address", "add", "robert@example.com", "bob@example")
    run("group", "create", "staff@example", "--address", "staff@example.com")
    run("group", "add-member", "staff@example", "bob@example")
    run("list", "create", "news@example")
    assert [p["name"] for p in run("postoffice", "list", "--json").json()] == ["example"]
    box = run("mailbox", "show", "bob@example", "--json").json()
    assert box["quota_mb"] == 50 and set(box["addresses"]) == {"bob@example.com",
                                                             "robert@example.com"}
    assert run("group", "show", "staff@example", "--json").json()["members"] == [
        "[SF:example/bob]"]
    assert [e["name"] for e in run("list", "list", "example", "--json").json()] == ["news"]
    out = run("mailbox", "create", "bob@example", "--password", PASSWORD, expect=2)
    assert "error" in out.stderr


def test_import_exit_codes_in_a_child_process(cli_subprocess, tmp_path: Path) -> None:
    run = cli_subprocess
    run("postoffice", "create", "example")
    good = tmp_path / "good.csv"
    good.write_text("ann@example.com,,5\n")
    out = run("postoffice", "import-users", "example", str(good))
    assert "ann@example.com" in out.stdout            # the generated password table
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("cyd@example.com\ndee@example.com,,lots\n")
    out = run("postoffice", "import-users", "example", str(mixed), expect=1)
    assert "line 2: quota: not a number" in flat(out.stderr)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    run("postoffice", "import-users", "example", str(empty), expect=2)
    names = {b["name"] for b in run("mailbox", "list", "example", "--json").json()}
    assert names == {"ann", "cyd"}
