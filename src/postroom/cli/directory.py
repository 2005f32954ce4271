"""`postroom postoffice|domain|mailbox|address|group`: the directory from the shell.

Manual chapter 5: post offices (5.3, with the post office actions of 5.3.7: export
and import users, delete messages, set quota), domains (5.4), mailboxes (5.5), the
address map, and groups (5.6). Lists (5.7) are in :mod:`postroom.cli.lists`.

Everything here is a thin layer over ``store.directory`` (the same functions the web
admin and REST API call), so validation lives in one place; this module only turns
command-line text into typed values: ``NAME@PO`` into a post office and a name,
``--option KEY=VALUE`` through the object's option set (``postroom.settings.objects``),
quotas from MB into bytes, plain addresses into connector addresses
(``bob@example.com`` -> ``[SMTP:bob@example.com]``, ``bob@PO`` -> ``[SF:PO/bob]``).
Arguments are untrusted: a bad one exits 2 naming the field and changes nothing.
Domains are shown in their Unicode form with the ASCII form beside it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import typer

from postroom.cli import users_csv
from postroom.cli.common import (
    JsonOption,
    UsageError,
    console,
    emit,
    err_console,
    parse_assignments,
    run,
)
from postroom.settings import objects
from postroom.store import addresses
from postroom.store.directory import MAILBOX_TYPES, Address, Domain, Group, Mailbox, PostOffice
from postroom.store.messages import MessageStoreError

T = TypeVar("T")
OptionsOption = typer.Option(None, "--option", "-o", metavar="KEY=VALUE",
                             help="Set an option on creation (repeatable).")


# --- argument parsing shared with lists.py -------------------------------------------------

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


def quota_bytes(text: str, field: str = "quota") -> int | None:
    return users_csv.parse_quota_mb(text, field)


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


def domain_name(text: str, field: str = "domain") -> str:
    return addresses.ascii_domain(text, field)


def mb(value: int | None) -> float | int | None:
    """Bytes -> MB for display: whole numbers as int, otherwise three decimals."""
    if value is None:
        return None
    amount = round(value / users_csv.MB, 3)
    return int(amount) if amount == int(amount) else amount


# --- records (what tables and --json show) --------------------------------------------------

def postoffice_record(store: Any, po: PostOffice, detail: bool = False) -> dict[str, Any]:
    boxes = store.directory.list_mailboxes(po.name)
    domains = store.directory.list_domains(po.name)
    record: dict[str, Any] = {
        "name": po.name,
        "domains": [d.display_name for d in domains],
        "mailboxes": len(boxes),
        "used_mb": mb(sum(b.used_bytes for b in boxes)),
    }
    if detail:
        record["messages"] = sum(b.message_count for b in boxes)
        record["groups"] = len(store.directory.list_groups(po.name))
        record["lists"] = len(store.directory.list_lists(po.name))
        record["options"] = po.options
        record["created_at"] = po.created_at
    return record


def domain_record(domain: Domain, detail: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {"name": domain.display_name, "ascii": domain.name,
                              "postoffice": domain.postoffice}
    if detail:
        record["options"] = domain.options
    return record


def address_record(entry: Address) -> dict[str, Any]:
    return {"address": entry.address, "display": addresses.display_address(entry.address),
            "target": entry.target, "postoffice": entry.postoffice}


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
        record["options"] = box.options
        record["created_at"] = box.created_at
        record["folders"] = [{"name": f.name, "messages": f.messages, "size": f.size}
                             for f in store.messages.list_folders(box.postoffice, box.name)]
    return record


def group_record(group: Group, detail: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {"name": group.name, "postoffice": group.postoffice,
                              "address": f"[SF:{group.postoffice}/{group.name}]",
                              "members": list(group.members)}
    if detail:
        record["options"] = group.options
    return record


def done(message: str) -> None:
    console.print(message, highlight=False, markup=False)


# --- postoffice ----------------------------------------------------------------------------

postoffice_app = typer.Typer(help="Post offices (manual 5.3).", no_args_is_help=True)


@postoffice_app.command("create")
def postoffice_create(name: str, option: list[str] = OptionsOption,
                      as_json: bool = JsonOption) -> None:
    """Create a post office."""
    def act(store: Any) -> PostOffice:
        return store.directory.create_postoffice(name, parse_options("POSTOFFICE", option))
    po = run(act)
    if as_json:
        emit({"name": po.name, "options": po.options}, True)
    else:
        done(f"created post office {po.name}")


@postoffice_app.command("list")
def postoffice_list(as_json: bool = JsonOption) -> None:
    """List post offices with their domains, mailbox count and usage."""
    records = run(lambda s: [postoffice_record(s, p) for p in s.directory.list_postoffices()])
    emit(records, as_json, ["name", "domains", "mailboxes", "used_mb"])


@postoffice_app.command("show")
def postoffice_show(name: str, as_json: bool = JsonOption) -> None:
    """Show a post office: options, domains, mailbox count and usage."""
    emit(run(lambda s: postoffice_record(s, s.directory.get_postoffice(name), True)), as_json)


@postoffice_app.command("set")
def postoffice_set(name: str, assignments: list[str] = typer.Argument(..., metavar="KEY=VALUE...")
                   ) -> None:
    """Change post office options (`postroom postoffice set example disabled=true`)."""
    run(lambda s: s.directory.update_postoffice(name, parse_options("POSTOFFICE", assignments)))
    done(f"updated post office {name}")


@postoffice_app.command("delete")
def postoffice_delete(name: str, force: bool = typer.Option(
        False, "--force", help="Delete even if it has mailboxes (and their mail).")) -> None:
    """Delete a post office; refused while it has mailboxes unless --force."""
    def act(store: Any) -> None:
        po = store.directory.get_postoffice(name)
        count = len(store.directory.list_mailboxes(po.name))
        if count and not force:
            raise UsageError("force", f"post office {po.name} has {count} mailbox(es); "
                             "use --force to delete it with them")
        store.directory.delete_postoffice(po.name, force=force)
    run(act)
    done(f"deleted post office {name}")


@postoffice_app.command("export-users")
def postoffice_export_users(
    postoffice: str,
    file: Path = typer.Argument(..., help="CSV file to write ('-' for standard output)."),
    fields: str = typer.Option(None, "--fields", help="Comma-separated fields: "
                               + ",".join(users_csv.EXPORT_FIELDS) + " (and password)."),
    include_password: bool = typer.Option(
        False, "--include-password",
        help="Add plaintext passwords where a recoverable secret is stored."),
) -> None:
    """Export the post office's users as CSV (manual 5.3.7.2)."""
    def act(store: Any) -> users_csv.ExportResult:
        names = users_csv.parse_fields(fields, include_password)
        store.directory.get_postoffice(postoffice)
        if str(file) == "-":
            return users_csv.export_users(store.directory, postoffice, sys.stdout, names,
                                          include_password=include_password)
        try:
            with open(file, "w", encoding="utf-8", newline="") as out:
                return users_csv.export_users(store.directory, postoffice, out, names,
                                              include_password=include_password)
        except OSError as exc:
            raise UsageError("file", f"cannot write {file}: {exc.strerror}") from None
    result = run(guarded(act))
    if str(file) != "-":
        done(f"exported {result.rows} user(s) to {file}")
    if include_password and result.passwords_missing:
        err_console.print(f"note: {result.passwords_missing} password(s) are not recoverable "
                          "and were left empty", highlight=False, markup=False)


@postoffice_app.command("import-users")
def postoffice_import_users(
    postoffice: str,
    file: Path = typer.Argument(..., help="CSV file: emailaddress,password,quota per line."),
    passwords_out: Path = typer.Option(
        None, "--passwords-out", help="Write generated passwords here (mode 0600) "
        "instead of printing them."),
    as_json: bool = JsonOption,
) -> None:
    """Create mailboxes from a CSV file (manual 5.3.7.4).

    Exit code 0 if every row was imported, 1 if some rows failed, 2 if the file or
    post office is unusable.
    """
    def act(store: Any) -> users_csv.ImportResult:
        try:
            data = Path(file).read_bytes()
        except OSError as exc:
            raise UsageError("file", f"cannot read {file}: {exc.strerror}") from None
        return users_csv.import_with_progress(store, postoffice, data,
                                              interactive=not as_json)
    result = run(guarded(act))
    raise typer.Exit(import_report(result, passwords_out, as_json))


def import_report(result: users_csv.ImportResult, passwords_out: Path | None,
                  as_json: bool) -> int:
    """Print problems, generated passwords and counts; return the exit code."""
    generated = result.generated_passwords
    if passwords_out is not None and generated:
        try:
            users_csv.write_passwords(passwords_out, generated)
        except OSError as exc:
            err_console.print(f"error: passwords-out: cannot write {passwords_out}: "
                              f"{exc.strerror}", highlight=False, markup=False)
            return 2
    shown = [] if passwords_out is not None else generated
    summary = {
        "imported": len(result.imported),
        "failed": len(result.problems),
        "domains_created": result.domains_created,
        "passwords_generated": len(generated),
        "errors": [{"line": p.line, "field": p.field, "message": p.message}
                   for p in result.problems],
    }
    if as_json:
        emit({**summary, "passwords": [{"emailaddress": e, "password": pw}
                                       for e, pw in shown]}, True)
    else:
        for problem in result.problems:
            err_console.print(str(problem), highlight=False, markup=False)
        if shown:
            emit([{"emailaddress": e, "password": pw} for e, pw in shown], False,
                 title="generated passwords (shown once)")
        elif generated:
            done(f"{len(generated)} generated password(s) written to {passwords_out}")
        done(f"imported {summary['imported']}, failed {summary['failed']}, "
             f"domains created {len(result.domains_created)}")
    return 1 if result.problems else 0


@postoffice_app.command("delete-messages")
def postoffice_delete_messages(
    postoffice: str,
    older_than: float = typer.Option(..., "--older-than", metavar="DAYS",
                                     help="Delete messages older than this many days."),
    folder: str = typer.Option(None, "--folder", help="Only this folder (e.g. Inbox)."),
    as_json: bool = JsonOption,
) -> None:
    """Delete old messages in every mailbox of the post office (manual 5.3.7.7)."""
    def act(store: Any) -> int:
        if older_than != older_than or older_than < 0:
            raise UsageError("older-than", f"must be zero or more days, got {older_than}")
        po = store.directory.get_postoffice(postoffice)
        return store.messages.delete_older_than(po.name, older_than, folder)
    count = run(guarded(act))
    if as_json:
        emit({"postoffice": postoffice, "deleted": count}, True)
    else:
        done(f"deleted {count} message(s) from {postoffice}")


@postoffice_app.command("set-quota")
def postoffice_set_quota(postoffice: str, quota_mb: str = typer.Argument(
        ..., metavar="MB", help="Quota in MB, or 'unlimited'.")) -> None:
    """Set every mailbox's quota in the post office, and its default (manual 5.3.7.8)."""
    def act(store: Any) -> int:
        value = quota_bytes(quota_mb, "quota")
        po = store.directory.get_postoffice(postoffice)
        # The post office default is whole MB; "unlimited" clears it (server default).
        default = None if value is None else -(-value // users_csv.MB)
        with store.transaction():
            store.directory.update_postoffice(po.name, {"default_quota_mb": default})
            boxes = store.directory.list_mailboxes(po.name)
            for box in boxes:
                store.directory.update_mailbox(po.name, box.name, quota_bytes=value)
        return len(boxes)
    count = run(guarded(act))
    done(f"set the quota of {count} mailbox(es) in {postoffice} to {quota_mb} MB")


# --- domain --------------------------------------------------------------------------------

domain_app = typer.Typer(help="Domains of a post office (manual 5.4).", no_args_is_help=True)


@domain_app.command("create")
def domain_create(domain: str,
                  postoffice: str = typer.Option(..., "--postoffice", "-p",
                                                 help="Post office that owns the domain."),
                  option: list[str] = OptionsOption, as_json: bool = JsonOption) -> None:
    """Add a domain to a post office (Unicode names are stored as punycode)."""
    def act(store: Any) -> Domain:
        return store.directory.create_domain(domain_name(domain), postoffice,
                                             parse_options("DOMAIN", option))
    record = run(guarded(act))
    if as_json:
        emit(domain_record(record, True), True)
    else:
        done(f"created domain {record.display_name} in {record.postoffice}")


@domain_app.command("list")
def domain_list(postoffice: str = typer.Option(None, "--postoffice", "-p"),
                as_json: bool = JsonOption) -> None:
    """List domains (of one post office)."""
    def act(store: Any) -> list[dict[str, Any]]:
        if postoffice:
            store.directory.get_postoffice(postoffice)
        return [domain_record(d) for d in store.directory.list_domains(postoffice)]
    emit(run(act), as_json, ["name", "ascii", "postoffice"])


@domain_app.command("show")
def domain_show(domain: str, as_json: bool = JsonOption) -> None:
    """Show a domain and its options."""
    emit(run(guarded(lambda s: domain_record(s.directory.get_domain(domain_name(domain)),
                                             True))), as_json)


@domain_app.command("set")
def domain_set(domain: str, assignments: list[str] = typer.Argument(..., metavar="KEY=VALUE...")
               ) -> None:
    """Change domain options."""
    run(guarded(lambda s: s.directory.update_domain(domain_name(domain),
                                                    parse_options("DOMAIN", assignments))))
    done(f"updated domain {domain}")


@domain_app.command("delete")
def domain_delete(domain: str) -> None:
    """Remove a domain from its post office."""
    run(guarded(lambda s: s.directory.delete_domain(domain_name(domain))))
    done(f"deleted domain {domain}")


# --- mailbox -------------------------------------------------------------------------------

mailbox_app = typer.Typer(help="Mailboxes (manual 5.5).", no_args_is_help=True)
PasswordOption = typer.Option(None, "--password", help="The password (checked by the policy).")
RandomOption = typer.Option(False, "--random-password",
                            help="Generate a policy-compliant password and print it once.")


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


# --- address map ---------------------------------------------------------------------------

address_app = typer.Typer(help="The address map: SMTP addresses to mailboxes, groups, lists.",
                          no_args_is_help=True)


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


# --- groups --------------------------------------------------------------------------------

group_app = typer.Typer(help="Groups: one address, many recipients (manual 5.6).",
                        no_args_is_help=True)


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
    """Add the directory commands to the `postroom` app."""
    app.add_typer(postoffice_app, name="postoffice")
    app.add_typer(domain_app, name="domain")
    app.add_typer(mailbox_app, name="mailbox")
    app.add_typer(address_app, name="address")
    app.add_typer(group_app, name="group")
