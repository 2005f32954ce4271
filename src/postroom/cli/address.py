"""`postroom address`: the address map from the shell (manual 5.5.4, 5.6.2, 5.7.3).

Turns plain addresses into connector addresses: ``bob@example.com`` ->
``[SMTP:bob@example.com]``, ``*@example.com`` -> the domain's catch-all, ``bob@PO`` ->
``[SF:PO/bob]`` (a mailbox or group); a connector address such as ``[LS:po/list]``
is checked and kept. The directory decides whether the target exists and the domain
belongs to its post office. Arguments are untrusted: a bad one exits 2 naming the
field and changes nothing.
"""

from __future__ import annotations

from typing import Any

import typer

from postroom.cli.common import JsonOption, done, emit, guarded, run, split_login
from postroom.store import addresses
from postroom.store.directory import Address

address_app = typer.Typer(help="The address map: SMTP addresses to mailboxes, groups, lists.",
                          no_args_is_help=True)


def connector_address(text: str, field: str = "address") -> str:
    """``local@domain`` (``*@domain`` for a catch-all) or ``[SMTP:..]`` -> ``[SMTP:..]``."""
    return addresses.normalise_smtp(text, field, allow_catch_all=True)


def target_address(text: str, field: str = "target") -> str:
    """``NAME@PO`` -> ``[SF:PO/NAME]``; a connector address is checked and kept."""
    raw = text.strip()
    if raw.startswith("["):
        return str(addresses.parse_connector(raw, field))
    postoffice, name = split_login(raw, field)
    return addresses.sf_address(postoffice, name)


def address_record(entry: Address) -> dict[str, Any]:
    return {"address": entry.address, "display": addresses.display_address(entry.address),
            "target": entry.target, "postoffice": entry.postoffice}


@address_app.command("add")
def address_add(address: str = typer.Argument(..., help="bob@example.com, *@example.com "
                                              "(catch-all) or [SMTP:...]."),
                target: str = typer.Argument(..., help="NAME@PO (mailbox or group) or a "
                                             "connector address such as [LS:po/list]."),
                as_json: bool = JsonOption) -> None:
    """Map an address to a mailbox, group or list."""
    def act(store: Any) -> Address:
        return store.directory.add_address(connector_address(address), target_address(target))
    entry = run(guarded(act))
    if as_json:
        emit(address_record(entry), True)
    else:
        done(f"added {entry.address} -> {entry.target}")


@address_app.command("list")
def address_list(postoffice: str = typer.Option(None, "--postoffice", "-p"),
                 target: str = typer.Option(None, "--target", help="NAME@PO or [..:..]."),
                 as_json: bool = JsonOption) -> None:
    """List address map entries."""
    def act(store: Any) -> list[dict[str, Any]]:
        if postoffice:
            store.directory.get_postoffice(postoffice)
        wanted = target_address(target) if target else None
        return [address_record(a) for a in
                store.directory.list_addresses(postoffice=postoffice, target=wanted)]
    emit(run(guarded(act)), as_json, ["display", "target", "postoffice"])


@address_app.command("delete")
def address_delete(address: str) -> None:
    """Remove an address from the map."""
    run(guarded(lambda s: s.directory.delete_address(connector_address(address))))
    done(f"deleted {address}")


def register(app: typer.Typer) -> None:
    """Add the `address` commands to the `postroom` app."""
    app.add_typer(address_app, name="address")
