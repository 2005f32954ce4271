"""`postroom group`: groups from the shell (manual 5.6).

A group is ``NAME@PO`` on the command line and ``[SF:PO/NAME]`` inside the system;
its SMTP addresses (``--address``) are ordinary address map entries, created in the
same transaction as the group, so a bad address leaves no half-made group. Members
may be given as ``NAME@PO`` (a mailbox or group of a known post office), any other
e-mail address (a remote member), or a connector address. Arguments are untrusted:
a bad one exits 2 naming the field and changes nothing.
"""

from __future__ import annotations

from typing import Any

import typer

from postroom.cli.address import connector_address
from postroom.cli.common import JsonOption, done, emit, guarded, run, shown_options, split_login
from postroom.settings import objects
from postroom.store import addresses
from postroom.store.directory import Group

group_app = typer.Typer(help="Groups: one address, many recipients (manual 5.6).",
                        no_args_is_help=True)


def member_address(store: Any, text: str, field: str = "member") -> str:
    """A group member: ``[..]`` as given; ``NAME@PO`` of a known post office -> ``[SF:..]``;
    any other ``local@domain`` -> ``[SMTP:..]``."""
    raw = text.strip()
    if raw.startswith("["):
        return str(addresses.parse_connector(raw, field))
    name, _, after = raw.rpartition("@")
    postoffices = {p.name.lower(): p.name for p in store.directory.list_postoffices()}
    if name and after.lower() in postoffices:
        return addresses.sf_address(postoffices[after.lower()], name)
    return addresses.normalise_smtp(raw, field)


def group_record(group: Group, detail: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {"name": group.name, "postoffice": group.postoffice,
                              "address": f"[SF:{group.postoffice}/{group.name}]",
                              "members": list(group.members)}
    if detail:
        record["options"] = shown_options(objects.GROUP, group.options)
    return record


@group_app.command("create")
def group_create(group: str = typer.Argument(..., metavar="NAME@PO"),
                 address: list[str] = typer.Option(None, "--address", "-a",
                                                   help="SMTP address of the group "
                                                   "(repeatable)."),
                 as_json: bool = JsonOption) -> None:
    """Create a group, optionally with its SMTP addresses."""
    def act(store: Any) -> dict[str, Any]:
        postoffice, name = split_login(group)
        wanted = [connector_address(a) for a in address or []]
        with store.transaction():
            created = store.directory.create_group(postoffice, name)
            for entry in wanted:
                store.directory.add_address(entry, f"[SF:{created.postoffice}/{created.name}]")
        return group_record(created)
    record = run(guarded(act))
    if as_json:
        emit(record, True)
    else:
        done(f"created group {record['name']}@{record['postoffice']}")


@group_app.command("add-member")
def group_add_member(group: str = typer.Argument(..., metavar="NAME@PO"),
                     member: str = typer.Argument(..., help="NAME@PO, an email address "
                                                  "or a connector address.")) -> None:
    """Add a member to a group."""
    def act(store: Any) -> Group:
        return store.directory.add_group_member(*split_login(group),
                                                member_address(store, member))
    run(guarded(act))
    done(f"added {member} to {group}")


@group_app.command("remove-member")
def group_remove_member(group: str = typer.Argument(..., metavar="NAME@PO"),
                        member: str = typer.Argument(...)) -> None:
    """Remove a member from a group."""
    def act(store: Any) -> Group:
        return store.directory.remove_group_member(*split_login(group),
                                                   member_address(store, member))
    run(guarded(act))
    done(f"removed {member} from {group}")


@group_app.command("list")
def group_list(postoffice: str, as_json: bool = JsonOption) -> None:
    """List the groups of a post office."""
    emit(run(lambda s: [group_record(g) for g in s.directory.list_groups(postoffice)]),
         as_json, ["name", "address", "members"])


@group_app.command("show")
def group_show(group: str = typer.Argument(..., metavar="NAME@PO"),
               as_json: bool = JsonOption) -> None:
    """Show a group, its members and addresses."""
    def act(store: Any) -> dict[str, Any]:
        found = store.directory.get_group(*split_login(group))
        record = group_record(found, True)
        record["addresses"] = [addresses.display_address(a.address) for a in
                               store.directory.list_addresses(target=record["address"])]
        return record
    emit(run(act), as_json)


@group_app.command("delete")
def group_delete(group: str = typer.Argument(..., metavar="NAME@PO")) -> None:
    """Delete a group."""
    run(lambda s: s.directory.delete_group(*split_login(group)))
    done(f"deleted group {group}")


def register(app: typer.Typer) -> None:
    """Add the `group` commands to the `postroom` app."""
    app.add_typer(group_app, name="group")
