"""`postroom mailbox`: mailboxes from the shell (manual 5.5).

A mailbox is named ``NAME@PO`` on the command line. Quotas are given in MB (decimals
allowed, ``unlimited`` for no limit) as everywhere on the command line, and shown in
MB; the type is USER, ADMIN or SYSADMIN (5.5.3). A password is given with
``--password`` (checked by the password policy in the directory) or generated with
``--random-password`` and then printed once; it is never shown otherwise.

Arguments are untrusted: a bad one exits 2 naming the field and changes nothing.
The records printed here are also used by ``postroom postoffice`` (usage in MB).
"""

from __future__ import annotations

from typing import Any

import typer

from postroom.cli import users_csv
from postroom.cli.common import (
    JsonOption,
    OptionsOption,
    UsageError,
    done,
    emit,
    guarded,
    parse_options,
    run,
    shown_options,
    split_login,
    timestamp,
)
from postroom.settings import objects
from postroom.store import addresses
from postroom.store.directory import MAILBOX_TYPES, Mailbox

mailbox_app = typer.Typer(help="Mailboxes (manual 5.5).", no_args_is_help=True)
PasswordOption = typer.Option(None, "--password", help="The password (checked by the policy).")
RandomOption = typer.Option(False, "--random-password",
                            help="Generate a policy-compliant password and print it once.")


def quota_bytes(text: str, field: str = "quota") -> int | None:
    return users_csv.parse_quota_mb(text, field)


def mb(value: int | None) -> float | int | None:
    """Bytes -> MB for display: whole numbers as int, otherwise three decimals."""
    if value is None:
        return None
    amount = round(value / users_csv.MB, 3)
    return int(amount) if amount == int(amount) else amount


def choose_password(store: Any, name: str, password: str | None, random: bool) -> str:
    if (password is None) == (not random):
        raise UsageError("password", "give exactly one of --password or --random-password")
    if password is not None:
        return password
    from postroom.auth.policy import PasswordPolicy

    return PasswordPolicy.from_settings(store.settings).random_password(name)


def mailbox_type(text: str | None) -> str | None:
    if text is None:
        return None
    if text.upper() not in MAILBOX_TYPES:
        raise UsageError("type", f"must be one of {', '.join(MAILBOX_TYPES)}; got {text!r}")
    return text.upper()


def mailbox_record(store: Any, box: Mailbox, detail: bool = False) -> dict[str, Any]:
    mapped = store.directory.list_addresses(postoffice=box.postoffice,
                                            target=box.connector_address)
    record: dict[str, Any] = {
        "login": box.login,
        "name": box.name,
        "postoffice": box.postoffice,
        "type": box.type,
        "quota_mb": mb(box.quota_bytes),
        "used_mb": mb(box.used_bytes),
        "messages": box.message_count,
        "addresses": [addresses.display_address(a.address) for a in mapped],
        "disabled": bool(box.options.get("disabled", False)),
    }
    if detail:
        record["quota_bytes"] = box.quota_bytes
        record["used_bytes"] = box.used_bytes
        record["options"] = shown_options(objects.MAILBOX, box.options)
        record["created_at"] = timestamp(box.created_at)
        record["folders"] = [{"name": f.name, "messages": f.messages, "size": f.size}
                             for f in store.messages.list_folders(box.postoffice, box.name)]
    return record


@mailbox_app.command("create")
def mailbox_create(login: str = typer.Argument(..., metavar="NAME@PO"),
                   password: str = PasswordOption, random_password: bool = RandomOption,
                   quota: str = typer.Option(None, "--quota", metavar="MB",
                                             help="Quota in MB or 'unlimited' "
                                             "(default: the post office default)."),
                   type_: str = typer.Option(None, "--type", help="USER, ADMIN or SYSADMIN."),
                   option: list[str] = OptionsOption, as_json: bool = JsonOption) -> None:
    """Create a mailbox in a post office."""
    def act(store: Any) -> tuple[dict[str, Any], str]:
        postoffice, name = split_login(login)
        kwargs: dict[str, Any] = {"type": mailbox_type(type_) or "USER",
                                  "options": parse_options("MAILBOX", option)}
        if quota is not None:
            kwargs["quota_bytes"] = quota_bytes(quota)
        secret = choose_password(store, name, password, random_password)
        box = store.directory.create_mailbox(postoffice, name, secret, **kwargs)
        return mailbox_record(store, box), secret
    record, secret = run(guarded(act))
    if as_json:
        emit({**record, **({"password": secret} if random_password else {})}, True)
        return
    done(f"created mailbox {record['login']}")
    if random_password:
        done(f"password: {secret}")


@mailbox_app.command("list")
def mailbox_list(postoffice: str, as_json: bool = JsonOption) -> None:
    """List the mailboxes of a post office."""
    def act(store: Any) -> list[dict[str, Any]]:
        store.directory.get_postoffice(postoffice)
        return [mailbox_record(store, b) for b in store.directory.list_mailboxes(postoffice)]
    emit(run(act), as_json,
         ["login", "type", "quota_mb", "used_mb", "messages", "addresses", "disabled"])


@mailbox_app.command("show")
def mailbox_show(login: str = typer.Argument(..., metavar="NAME@PO"),
                 as_json: bool = JsonOption) -> None:
    """Show a mailbox: options, addresses, quota and usage, folders."""
    def act(store: Any) -> dict[str, Any]:
        return mailbox_record(store, store.directory.get_mailbox(*split_login(login)), True)
    emit(run(guarded(act)), as_json)


@mailbox_app.command("set")
def mailbox_set(login: str = typer.Argument(..., metavar="NAME@PO"),
                assignments: list[str] = typer.Argument(None, metavar="KEY=VALUE..."),
                quota: str = typer.Option(None, "--quota", metavar="MB"),
                type_: str = typer.Option(None, "--type"), as_json: bool = JsonOption) -> None:
    """Change mailbox options, quota or type."""
    def act(store: Any) -> dict[str, Any]:
        postoffice, name = split_login(login)
        if not assignments and quota is None and type_ is None:
            raise UsageError("KEY=VALUE", "nothing to change")
        kwargs: dict[str, Any] = {"type": mailbox_type(type_)}
        if assignments:
            kwargs["options"] = parse_options("MAILBOX", assignments)
        if quota is not None:
            kwargs["quota_bytes"] = quota_bytes(quota)
        box = store.directory.update_mailbox(postoffice, name, **kwargs)
        return mailbox_record(store, box, True)
    record = run(guarded(act))
    if as_json:
        emit(record, True)
    else:
        done(f"updated mailbox {record['login']}")


@mailbox_app.command("delete")
def mailbox_delete(login: str = typer.Argument(..., metavar="NAME@PO")) -> None:
    """Delete a mailbox, its addresses and its messages."""
    run(lambda s: s.directory.delete_mailbox(*split_login(login)))
    done(f"deleted mailbox {login}")


@mailbox_app.command("passwd")
def mailbox_passwd(login: str = typer.Argument(..., metavar="NAME@PO"),
                   password: str = PasswordOption,
                   random_password: bool = RandomOption) -> None:
    """Change a mailbox password."""
    def act(store: Any) -> str:
        postoffice, name = split_login(login)
        store.directory.get_mailbox(postoffice, name)
        secret = choose_password(store, name, password, random_password)
        store.directory.set_password(postoffice, name, secret)
        return secret
    secret = run(act)
    done(f"changed the password of {login}")
    if random_password:
        done(f"password: {secret}")


def register(app: typer.Typer) -> None:
    """Add the `mailbox` commands to the `postroom` app."""
    app.add_typer(mailbox_app, name="mailbox")
