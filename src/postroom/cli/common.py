"""What every `postroom` command shares: the data directory, output, and errors.

Bad input must change nothing and say which field was wrong, with exit code 2.
Commands raise :class:`UsageError` (or any ``OptionError`` / ``DirectoryError``
from the store) and :func:`run` turns it into that message and exit code.
``--json`` output is the same records the table shows, for scripts.

Also here: the argument forms every directory command group shares (``NAME@PO``,
``--option KEY=VALUE`` parsed through the object's option set) and the masking of
secret options (``dkim.private_key``, ``posting_password`` ...) in what ``show``,
``list`` and ``--json`` print: a terminal, a log of a script or a pasted support
question is no place for a private key.
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from postroom.auth.policy import PasswordPolicyError
from postroom.cli import users_csv
from postroom.settings import objects
from postroom.settings.model import OptionError, OptionSet
from postroom.store import DataDirError, Store
from postroom.store.backends.sqlite.db import SchemaError
from postroom.store.datadir import default_home
from postroom.store.directory import DirectoryError
from postroom.store.messages import MessageStoreError
from postroom.store.queue import QueueError

console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")


class UsageError(Exception):
    """Invalid input from the administrator; ``field`` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class State:
    """Global options given before the command (``postroom --home DIR ...``)."""

    home: Path = default_home()


state = State()

JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")
OptionsOption = typer.Option(None, "--option", "-o", metavar="KEY=VALUE",
                             help="Set an option on creation (repeatable).")
ShowSecretsOption = typer.Option(False, "--show-secrets",
                                 help="Print secret options (keys, passwords) in clear.")
SECRET_MASK = "********"


def error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "bad input or unusable data directory": exit 2, nothing changed."""
    return (UsageError, OptionError, DataDirError, SchemaError, DirectoryError,
            PasswordPolicyError, MessageStoreError, QueueError)


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    return typer.Exit(code)


@contextmanager
def open_store() -> Iterator[Store]:
    """Open the data directory named by ``--home`` for one command."""
    try:
        store = Store.open(state.home)
    except error_types() as exc:
        raise fail(str(exc)) from None
    try:
        yield store
    finally:
        store.close()


def run(func: Callable[[Store], T]) -> T:
    """Run ``func`` against the store, mapping bad input to exit code 2."""
    with open_store() as store:
        try:
            return func(store)
        except error_types() as exc:
            raise fail(str(exc)) from None


def emit(records: Sequence[dict[str, Any]] | dict[str, Any], as_json: bool,
         columns: Sequence[str] | None = None, title: str | None = None) -> None:
    """Print records as a table (or one record as key/value lines), or as JSON."""
    if as_json:
        sys.stdout.write(json.dumps(records, indent=2, sort_keys=True, default=str) + "\n")
        return
    if isinstance(records, dict):
        table = Table(show_header=False, title=title, box=None)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        for key, value in records.items():
            table.add_row(str(key), _cell(value))
        console.print(table)
        return
    if not records:
        console.print("(none)")
        return
    cols = list(columns or records[0].keys())
    table = Table(title=title)
    for col in cols:
        table.add_column(col, overflow="fold")
    for record in records:
        table.add_row(*(_cell(record.get(col)) for col in cols))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def parse_assignments(pairs: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` arguments of ``set`` commands; a malformed one names itself."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(pair, "expected KEY=VALUE")
        result[key.strip()] = value
    return result


# --- arguments shared by the directory command groups ---------------------------------------

def guarded(func: Callable[[Any], T]) -> Callable[[Any], T]:
    """Let the CSV module's and the message store's errors count as bad input (exit 2)."""

    def call(store: Any) -> T:
        try:
            return func(store)
        except (users_csv.RowError, users_csv.CsvFileError, MessageStoreError) as exc:
            raise UsageError(exc.field, exc.message) from None

    return call


def split_login(text: str, field: str = "name") -> tuple[str, str]:
    """``NAME@PO`` -> (post office, name)."""
    name, at, postoffice = text.strip().rpartition("@")
    if not at or not name or not postoffice:
        raise UsageError(field, f"expected NAME@POSTOFFICE, got {text!r}")
    return postoffice, name


def parse_options(kind: str, pairs: Sequence[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` texts -> typed option values via the object's option set."""
    option_set = getattr(objects, kind)
    return {key: option_set.get(key).parse(value)
            for key, value in parse_assignments(list(pairs or [])).items()}


def shown_options(option_set: OptionSet, options: dict[str, Any],
                  reveal: bool = False) -> dict[str, Any]:
    """Options for printing: a set secret shows as ``********`` unless ``reveal``.

    An unset secret stays empty, so the administrator still sees whether one is set.
    """
    if reveal:
        return options
    return {key: SECRET_MASK if (key in option_set and option_set.get(key).secret
                                 and value not in ("", None)) else value
            for key, value in options.items()}


def done(message: str) -> None:
    console.print(message, highlight=False, markup=False)


def timestamp(stamp: float | None) -> str | None:
    """A stored Unix time as UTC text an administrator can read (and sort)."""
    if stamp is None:
        return None
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
