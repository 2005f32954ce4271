"""`postroom list`: mailing lists of a post office (manual 5.7).

A list is addressed inside the system as ``[LS:postoffice/name]``; its SMTP
addresses are ordinary address map entries (``postroom address add
news@example.com [LS:example/news]``). Options (moderation, subscription
commands, headers and footers ...) are declared by the LIST option set in
``postroom.settings.objects`` and parsed from ``KEY=VALUE`` text through it, so a
wrong key or type exits 2 naming the option and changes nothing.

``posting_password`` is a secret option: ``show``, ``create --json`` and ``set
--json`` print it as ``********`` (``show --show-secrets`` prints it in clear).
"""

from __future__ import annotations

from typing import Any

import typer

from postroom.cli.common import (
    JsonOption,
    OptionsOption,
    ShowSecretsOption,
    done,
    emit,
    parse_options,
    run,
    shown_options,
    split_login,
)
from postroom.settings import objects
from postroom.store.addresses import display_address
from postroom.store.directory import MailList

list_app = typer.Typer(help="Mailing lists (manual 5.7).", no_args_is_help=True)


def list_record(store: Any, entry: MailList, detail: bool = False,
                show_secrets: bool = False) -> dict[str, Any]:
    address = f"[LS:{entry.postoffice}/{entry.name}]"
    record: dict[str, Any] = {
        "name": entry.name,
        "postoffice": entry.postoffice,
        "address": address,
        "addresses": [display_address(a.address)
                      for a in store.directory.list_addresses(target=address)],
    }
    if detail:
        record["options"] = shown_options(objects.LIST, entry.options, show_secrets)
    return record


@list_app.command("create")
def list_create(name: str = typer.Argument(..., metavar="NAME@PO"),
                option: list[str] = OptionsOption, as_json: bool = JsonOption) -> None:
    """Create a mailing list."""
    def act(store: Any) -> dict[str, Any]:
        postoffice, list_name = split_login(name)
        created = store.directory.create_list(postoffice, list_name,
                                              parse_options("LIST", option))
        return list_record(store, created, True)
    record = run(act)
    if as_json:
        emit(record, True)
    else:
        done(f"created list {record['name']}@{record['postoffice']}")


@list_app.command("list")
def list_list(postoffice: str, as_json: bool = JsonOption) -> None:
    """List the mailing lists of a post office."""
    def act(store: Any) -> list[dict[str, Any]]:
        store.directory.get_postoffice(postoffice)
        return [list_record(store, e) for e in store.directory.list_lists(postoffice)]
    emit(run(act), as_json, ["name", "address", "addresses"])


@list_app.command("show")
def list_show(name: str = typer.Argument(..., metavar="NAME@PO"),
              as_json: bool = JsonOption, show_secrets: bool = ShowSecretsOption) -> None:
    """Show a mailing list and its options."""
    emit(run(lambda s: list_record(s, s.directory.get_list(*split_login(name)), True,
                                   show_secrets)), as_json)


@list_app.command("set")
def list_set(name: str = typer.Argument(..., metavar="NAME@PO"),
             assignments: list[str] = typer.Argument(..., metavar="KEY=VALUE..."),
             as_json: bool = JsonOption) -> None:
    """Change mailing list options."""
    def act(store: Any) -> dict[str, Any]:
        postoffice, list_name = split_login(name)
        updated = store.directory.update_list(postoffice, list_name,
                                              parse_options("LIST", assignments))
        return list_record(store, updated, True)
    record = run(act)
    if as_json:
        emit(record, True)
    else:
        done(f"updated list {name}")


@list_app.command("delete")
def list_delete(name: str = typer.Argument(..., metavar="NAME@PO")) -> None:
    """Delete a mailing list."""
    run(lambda s: s.directory.delete_list(*split_login(name)))
    done(f"deleted list {name}")


def register(app: typer.Typer) -> None:
    """Add the `list` commands to the `postroom` app."""
    app.add_typer(list_app, name="list")
