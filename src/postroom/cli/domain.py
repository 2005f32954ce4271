"""`postroom domain`: domains of a post office from the shell (manual 5.4).

Domain names are untrusted: they go through IDNA (:func:`postroom.store.addresses.
ascii_domain`), are stored as punycode and shown in their Unicode form with the ASCII
form beside it. Options (``--option KEY=VALUE`` / ``set KEY=VALUE``) are parsed by the
DOMAIN option set, so a wrong key or value exits 2 naming it and changes nothing.

``dkim.private_key`` is a secret option: ``show`` and ``--json`` print it as
``********`` unless ``--show-secrets`` is given.
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
    guarded,
    parse_options,
    run,
    shown_options,
)
from postroom.settings import objects
from postroom.store import addresses
from postroom.store.directory import Domain

domain_app = typer.Typer(help="Domains of a post office (manual 5.4).", no_args_is_help=True)


def domain_name(text: str, field: str = "domain") -> str:
    return addresses.ascii_domain(text, field)


def domain_record(domain: Domain, detail: bool = False,
                  show_secrets: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {"name": domain.display_name, "ascii": domain.name,
                              "postoffice": domain.postoffice}
    if detail:
        record["options"] = shown_options(objects.DOMAIN, domain.options, show_secrets)
    return record


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
def domain_show(domain: str, as_json: bool = JsonOption,
                show_secrets: bool = ShowSecretsOption) -> None:
    """Show a domain and its options."""
    emit(run(guarded(lambda s: domain_record(s.directory.get_domain(domain_name(domain)),
                                             True, show_secrets))), as_json)


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


def register(app: typer.Typer) -> None:
    """Add the `domain` commands to the `postroom` app."""
    app.add_typer(domain_app, name="domain")
