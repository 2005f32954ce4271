"""`postroom domain dkim`: DKIM selectors of a domain (manual 5.4.4).

``create`` makes the first key pair of a domain, turns signing on and prints the DNS
TXT record to publish at ``SELECTOR._domainkey.DOMAIN``; ``rotate`` makes a new key the
active one and keeps the old one (printed by ``list`` and ``show``) until ``delete``, so
the DNS can be switched over while mail signed with the old key is still being checked;
``show`` prints the records again. The keys themselves are made and stored by
:mod:`postroom.connectors.smtp.outbound.dkim` (the private key sealed under the server
key), which the web admin shares.

Bad input (an unknown domain, a selector that is not DNS labels, an unknown algorithm
or RSA size) exits 2 naming the field and changes nothing. Records are printed with
plain writes, never wrapped: a TXT value must be copied whole.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from postroom.cli.common import JsonOption, UsageError, emit, run
from postroom.connectors.smtp.outbound import dkim

dkim_app = typer.Typer(help="DKIM signing keys (selectors) of a domain (manual 5.4.4).",
                       no_args_is_help=True)

SelectorOption = typer.Option(..., "--selector", "-s", help="Selector name (DNS labels).")
AlgorithmOption = typer.Option("rsa", "--algorithm", "-a", help="rsa or ed25519.")


def _bits(algorithm: str, bits: int | None) -> int | None:
    if bits is not None and dkim.check_algorithm(algorithm) == "rsa-sha256" \
            and bits not in dkim.RSA_BITS:
        raise UsageError("bits", f"RSA key size must be one of "
                         f"{', '.join(map(str, dkim.RSA_BITS))}, got {bits}")
    return bits


def zone_line(selector: dkim.Selector) -> str:
    """The record as a zone file line: TXT strings of at most 255 bytes (RFC 1035)."""
    value = selector.record
    chunks = [value[i:i + 255] for i in range(0, len(value), 255)]
    quoted = " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"'
                      for c in chunks)
    return f"{selector.record_name}. IN TXT ( {quoted} )"


def _print_record(selector: dkim.Selector, heading: str) -> None:
    state = "active" if selector.active else "retired (not signing)"
    sys.stdout.write(
        f"{heading}\n"
        f"selector:  {selector.selector} ({selector.algorithm}, {selector.key_size} bits, "
        f"{state}{', test mode' if selector.test_mode else ''})\n"
        f"name:      {selector.record_name}\n"
        f"TXT value: {selector.record}\n"
        f"zone file: {zone_line(selector)}\n")


def _emit_one(selector: dkim.Selector, heading: str, as_json: bool) -> None:
    if as_json:
        emit(selector.as_dict(), True)
    else:
        _print_record(selector, heading)


@dkim_app.command("create")
def dkim_create(domain: str, selector: str = SelectorOption,
                algorithm: str = AlgorithmOption,
                bits: int = typer.Option(None, "--bits", help="RSA key size (default 2048)."),
                test_mode: bool = typer.Option(False, "--test-mode",
                                               help="Publish t=y: verifiers treat failures "
                                               "as unsigned."),
                as_json: bool = JsonOption) -> None:
    """Make the domain's signing key, turn signing on, print the DNS TXT record."""
    def act(store: Any) -> dkim.Selector:
        return dkim.create_selector(store, domain, selector, algorithm,
                                    _bits(algorithm, bits) or 2048, test_mode=test_mode)
    made = run(act)
    _emit_one(made, f"created DKIM key for {made.domain}; signing is on. Publish this DNS "
              "TXT record:", as_json)


@dkim_app.command("rotate")
def dkim_rotate(domain: str, selector: str = SelectorOption,
                algorithm: str = typer.Option(None, "--algorithm", "-a",
                                              help="rsa or ed25519 (default: as before)."),
                bits: int = typer.Option(None, "--bits", help="RSA key size."),
                as_json: bool = JsonOption) -> None:
    """Sign with a new key from now on; the old one is kept until deleted."""
    def act(store: Any) -> dkim.Selector:
        return dkim.rotate_selector(store, domain, selector, algorithm,
                                    _bits(algorithm or "rsa", bits))
    made = run(act)
    _emit_one(made, f"{made.domain} now signs with selector {made.selector}. Publish this "
              "DNS TXT record (keep the old one until mail signed with it has arrived, "
              "then 'domain dkim delete'):", as_json)


@dkim_app.command("list")
def dkim_list(domain: str = typer.Argument(None, help="Only this domain."),
              as_json: bool = JsonOption) -> None:
    """List the selectors of every domain (or of one)."""
    records = run(lambda s: [x.as_dict() for x in dkim.list_selectors(s, domain)])
    if as_json:
        emit(records, True)
        return
    emit([{k: r[k] for k in ("domain", "selector", "algorithm", "key_size", "active",
                             "test_mode", "record_name")} for r in records], False)


@dkim_app.command("show")
def dkim_show(domain: str, selector: str = typer.Option(None, "--selector", "-s",
                                                        help="Only this selector."),
              as_json: bool = JsonOption) -> None:
    """Print the DNS TXT record(s) of a domain again."""
    def act(store: Any) -> list[dkim.Selector]:
        found = dkim.list_selectors(store, domain)
        if selector is not None:
            name = dkim.check_selector(selector)
            found = [x for x in found if x.selector == name]
            if not found:
                raise UsageError("selector", f"{domain} has no selector {selector!r}")
        if not found:
            raise UsageError("domain", f"{domain} has no DKIM key; use 'domain dkim create'")
        return found
    found = run(act)
    if as_json:
        emit([x.as_dict() for x in found], True)
        return
    for item in found:
        _print_record(item, f"{item.domain}:")


@dkim_app.command("delete")
def dkim_delete(domain: str, selector: str = SelectorOption) -> None:
    """Forget a selector (deleting the active one stops signing for the domain)."""
    gone = run(lambda s: dkim.delete_selector(s, domain, selector))
    note = "; signing is off for the domain" if gone.active else ""
    sys.stdout.write(f"deleted DKIM selector {gone.selector} of {gone.domain}{note}; "
                     f"remove the TXT record {gone.record_name}\n")


def register(domain_app: typer.Typer) -> None:
    """Add `dkim` under the `domain` command group."""
    domain_app.add_typer(dkim_app, name="dkim")
