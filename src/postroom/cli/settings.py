"""`postroom settings`: list, read and change the server settings (manual chapters 5 to 11).

Every key is declared in :mod:`postroom.settings.catalogue`; values typed on the
command line are parsed and validated by that declaration (through
:class:`postroom.settings.server.Settings`), so a mistyped key exits 2 naming the
nearest valid key and a wrong type, range or choice exits 2 naming the key, with
nothing stored. Secret values (passwords) are masked in ``list`` and ``describe``;
``get`` prints them, since the administrator asked for that one value.

Running services pick changes up within seconds (the settings generation); options
marked ``live: false`` (listener ports and addresses) need a restart, which
``set`` says.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich import box
from rich.table import Table

from postroom.cli.common import JsonOption, UsageError, console, emit, run
from postroom.settings.model import Option
from postroom.settings.server import SERVER, Settings
from postroom.store import Store

settings_app = typer.Typer(help="Server settings (manual chapters 5 to 11).",
                           no_args_is_help=True)

MASK = "********"


def show(option: Option, value: Any, *, reveal: bool = False) -> Any:
    """The value as printed: secrets masked unless ``reveal``."""
    if option.secret and value not in ("", None) and not reveal:
        return MASK
    return value


def text(value: Any) -> str:
    """One value as command-line text (the form ``settings set`` accepts back)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def record(option: Option, value: Any, is_default: bool, reveal: bool = False) -> dict[str, Any]:
    return {
        "key": option.key,
        "value": show(option, value, reveal=reveal),
        "default": show(option, option.default, reveal=reveal),
        "type": option.describe_type(),
        "section": option.section,
        "description": option.description,
        "live": option.live,
        "changed": not is_default,
    }


def _settings(store: Store) -> Settings:
    return store.settings


@settings_app.command("list")
def settings_list(
    prefix: str = typer.Argument("", help="Only keys under this prefix, e.g. smtp.delivery."),
    changed: bool = typer.Option(False, "--changed", help="Only settings that were set."),
    as_json: bool = JsonOption,
) -> None:
    """List settings with their values and defaults."""
    def act(store: Store) -> list[dict[str, Any]]:
        items = _settings(store).items(prefix)
        if prefix and not items:
            raise UsageError(prefix, SERVER.unknown_message(prefix.rstrip(".")))
        return [record(o, v, d) for o, v, d in items if not changed or not d]

    records = run(act)
    if as_json:
        emit(records, True)
        return
    if not records:
        console.print("(none)")
        return
    # Keys are what the administrator copies into `settings set`: never wrap them.
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("key", no_wrap=True)
    for column in ("value", "default", "type"):
        table.add_column(column, overflow="fold")
    table.add_column("section", no_wrap=True)
    for r in records:
        table.add_row(r["key"], text(r["value"]), text(r["default"]), r["type"], r["section"])
    console.print(table, highlight=False)


@settings_app.command("get")
def settings_get(key: str, as_json: bool = JsonOption) -> None:
    """Print the effective value of one setting."""
    def act(store: Store) -> dict[str, Any]:
        settings = _settings(store)
        option = settings.option(key)
        return record(option, settings.get(key), key not in settings.changed(), reveal=True)

    result = run(act)
    if as_json:
        emit(result, True)
    else:
        typer.echo(text(result["value"]))


@settings_app.command("set")
def settings_set(
    key: str,
    value: str = typer.Argument(..., help="New value; lists as a,b,c or JSON."),
) -> None:
    """Change a setting (validated; nothing is stored if the value is refused)."""
    def act(store: Store) -> tuple[Option, Any, Any]:
        settings = _settings(store)
        option = settings.option(key)
        old = settings.get(key)
        return option, old, settings.set_text(key, value)

    option, old, new = run(act)
    restart = "" if option.live else " (takes effect after restart)"
    console.print(f"{key}: {text(show(option, old))} -> {text(show(option, new))}{restart}",
                  highlight=False, markup=False)


@settings_app.command("reset")
def settings_reset(key: str) -> None:
    """Put a setting back to its default."""
    def act(store: Store) -> tuple[Option, Any, Any]:
        settings = _settings(store)
        option = settings.option(key)
        old = settings.get(key)
        return option, old, settings.reset(key)

    option, old, new = run(act)
    restart = "" if option.live else " (takes effect after restart)"
    console.print(f"{key}: {text(show(option, old))} -> {text(show(option, new))} (default)"
                  f"{restart}", highlight=False, markup=False)


@settings_app.command("describe")
def settings_describe(key: str, as_json: bool = JsonOption) -> None:
    """Explain a setting: what it does, what it accepts, its default and manual section."""
    def act(store: Store) -> dict[str, Any]:
        settings = _settings(store)
        option = settings.option(key)
        value = settings.get(key)
        result = record(option, value, key not in settings.changed())
        result.update({
            "choices": list(option.choices),
            "minimum": option.minimum,
            "maximum": option.maximum,
            "unit": option.unit,
            "manual_id": option.manual_id,
            "secret": option.secret,
        })
        return result

    result = run(act)
    if as_json:
        emit(result, True)
        return
    shown = {k: v for k, v in result.items()
             if v not in ("", None, []) and k not in ("secret", "manual_id")}
    shown["value"] = text(result["value"])
    shown["default"] = text(result["default"])
    if result["manual_id"]:
        shown["manual option"] = result["manual_id"]
    emit(shown, False, title=key)


def register(app: typer.Typer) -> None:
    """Add ``postroom settings`` to the `postroom` app."""
    app.add_typer(settings_app, name="settings")
