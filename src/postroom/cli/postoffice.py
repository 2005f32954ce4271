"""`postroom postoffice`: post offices from the shell (manual 5.3).

With the post office actions of 5.3.7: export and import users (5.3.7.2, 5.3.7.4, the
CSV work is in :mod:`postroom.cli.users_csv`), delete old messages (5.3.7.7) and set
every mailbox's quota (5.3.7.8).

Everything here is a thin layer over ``store.directory`` (the same functions the web
admin and REST API call), so validation lives in one place; this module only turns
command-line text into typed values (``--option KEY=VALUE`` through the POSTOFFICE
option set, quotas from MB into bytes). Arguments and CSV files are untrusted: a bad
one exits 2 naming the field and changes nothing (an import with some bad rows
imports the good ones and exits 1).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from postroom.cli import users_csv
from postroom.cli.common import (
    JsonOption,
    OptionsOption,
    UsageError,
    done,
    emit,
    err_console,
    guarded,
    parse_options,
    run,
    shown_options,
    timestamp,
)
from postroom.cli.mailbox import mb, quota_bytes
from postroom.settings import objects
from postroom.store.directory import PostOffice

postoffice_app = typer.Typer(help="Post offices (manual 5.3).", no_args_is_help=True)


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
        record["options"] = shown_options(objects.POSTOFFICE, po.options)
        record["created_at"] = timestamp(po.created_at)
    return record


@postoffice_app.command("create")
def postoffice_create(name: str, option: list[str] = OptionsOption,
                      as_json: bool = JsonOption) -> None:
    """Create a post office."""
    def act(store: Any) -> PostOffice:
        return store.directory.create_postoffice(name, parse_options("POSTOFFICE", option))
    po = run(act)
    if as_json:
        emit({"name": po.name, "options": shown_options(objects.POSTOFFICE, po.options)}, True)
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


def register(app: typer.Typer) -> None:
    """Add the `postoffice` commands to the `postroom` app."""
    app.add_typer(postoffice_app, name="postoffice")
