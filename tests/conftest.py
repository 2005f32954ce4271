"""Shared fixtures: a fresh data directory and the `postroom` command run against it.

``cli`` runs the real Typer application in-process (fast, same code path as the
console script); ``cli_subprocess`` runs the installed ``postroom`` entry point in a
child process, for the tests that must prove the command itself works.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from postroom.cli.main import app
from postroom.store import Store
from postroom.store.initialise import initialise


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> object:
        return json.loads(self.stdout)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An initialised, empty data directory."""
    root = tmp_path / "data"
    initialise(root, hostname="mail.test")
    return root


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    s = Store.open(home)
    yield s
    s.close()


@pytest.fixture
def cli(home: Path) -> Callable[..., CliResult]:
    """Run ``postroom --home HOME ARGS...`` in-process; returns code, stdout, stderr."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None, expect: int | None = 0) -> CliResult:
        result = runner.invoke(app, ["--home", str(home), *args], input=input,
                               catch_exceptions=False)
        out = CliResult(result.exit_code, result.stdout, result.stderr)
        if expect is not None:
            assert out.code == expect, (
                f"postroom {' '.join(args)} exited {out.code}, expected {expect}\n"
                f"stdout: {out.stdout}\nstderr: {out.stderr}")
        return out

    return run


def postroom_executable() -> list[str]:
    script = shutil.which("postroom", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "postroom.cli.main"]


@pytest.fixture
def cli_subprocess(home: Path) -> Callable[..., CliResult]:
    """Run the installed ``postroom`` command in a child process."""

    def run(*args: str, expect: int | None = 0, input: str | None = None) -> CliResult:
        env = {**os.environ, "COLUMNS": "200"}
        proc = subprocess.run([*postroom_executable(), "--home", str(home), *args],
                              capture_output=True, text=True, env=env, input=input,
                              timeout=120)
        out = CliResult(proc.returncode, proc.stdout, proc.stderr)
        if expect is not None:
            assert out.code == expect, (
                f"postroom {' '.join(args)} exited {out.code}, expected {expect}\n"
                f"stdout: {out.stdout}\nstderr: {out.stderr}")
        return out

    return run
