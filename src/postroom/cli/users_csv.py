"""Export and import a post office's users as CSV (manual 5.3.7.2 and 5.3.7.4).

Export (5.3.7.2) writes one row per mailbox with the fields the administrator
picks (:data:`EXPORT_FIELDS`) under a header row. Password hashes are never
written. A plaintext password is written only when the caller asks for it
(``include_password``) *and* the directory keeps a recoverable secret for that
mailbox; otherwise the cell stays empty.

Import (5.3.7.4) reads the manual's layout ``emailaddress,password,quota`` with an
optional header line. Password and quota are optional: a missing quota leaves the
post office (or server) default to the directory, a missing password gets a random
one that satisfies the password policy, reported back once. The mailbox name is
the local part of the address (or the ``mailbox`` column of a header file), and a
domain that does not exist yet is created in the post office. Quotas are in MB
(decimals allowed, ``unlimited`` for no limit), as everywhere on the command line.

The file is untrusted input: it must be UTF-8 (a BOM is accepted), rows may not
have more columns than the header (or three without one), and every cell is
checked before anything is written. A bad row is reported with its line number and
field (``line 7: quota: not a number``) and changes nothing, while the good rows are
still imported. A file that cannot be read at all raises :class:`CsvFileError` and
imports nothing.

Hashing a password (Argon2id, ~25 ms) dominates the cost of an import, so rows are
created by a pool of two threads, each with its own store connection; domains are
created first, on the caller's thread, so the workers never race to create one.
Known limit: if the directory hashes inside its write transaction the workers
serialise on SQLite's write lock and an import runs at one hash at a time.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from postroom.store.addresses import display_address, parse_email, smtp_address
from postroom.store.directory import MAILBOX_TYPES, Address, Directory, DirectoryError, Mailbox

MB = 1024 * 1024
EXPORT_FIELDS = ("emailaddress", "mailbox", "friendly_name", "quota_mb", "type", "disabled",
                 "used_mb", "addresses")
DEFAULT_EXPORT_FIELDS = ("emailaddress", "mailbox", "quota_mb")
PASSWORD_FIELD = "password"
# Header names accepted on import and the column each one fills.
IMPORT_COLUMNS = {
    "emailaddress": "emailaddress", "email": "emailaddress", "address": "emailaddress",
    "password": "password",
    "quota": "quota", "quota_mb": "quota",
    "mailbox": "mailbox", "type": "type", "disabled": "disabled", "addresses": "addresses",
}
# Exported columns that describe state rather than set it: read and ignored on import.
IGNORED_COLUMNS = frozenset({"friendly_name", "used_mb"})
POSITIONAL_COLUMNS = ("emailaddress", "password", "quota")
WORKERS = 2
PROGRESS_ROWS = 200  # a progress bar from this many lines on

_SMTP = re.compile(r"^\[SMTP:(.+)\]$", re.IGNORECASE)


class CsvFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, empty, bad header)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class RowError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- values shared with the CLI ---------------------------------------------------------

def parse_quota_mb(text: str, field: str = "quota") -> int | None:
    """MB (``250``, ``0.5``) or ``unlimited`` -> bytes or None; refuses negatives."""
    raw = text.strip()
    if raw.lower() in ("unlimited", "none"):
        return None
    try:
        value = float(raw)
    except ValueError:
        raise RowError(field, f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise RowError(field, f"not a number: {text!r}")
    if value < 0:
        raise RowError(field, f"must not be negative, got {text!r}")
    return round(value * MB)


def format_mb(value: int | None) -> str:
    """Bytes -> MB text for CSV and tables (``unlimited`` for None)."""
    if value is None:
        return "unlimited"
    mb = value / MB
    return str(int(mb)) if mb == int(mb) else f"{mb:.3f}".rstrip("0")


def exact_mapping(directory: Directory, address: str) -> Address | None:
    """The address map entry for exactly ``address`` (a catch-all does not count)."""
    found = directory.resolve(address)
    if found is None or found.address.lower() != address.lower():
        return None
    return found


# --- export -----------------------------------------------------------------------------

def parse_fields(text: str | None, include_password: bool) -> list[str]:
    """The ``--fields`` list: known names only, no repeats; password only when asked."""
    names = ([n.strip().lower() for n in text.split(",") if n.strip()] if text
             else list(DEFAULT_EXPORT_FIELDS))
    if not names:
        raise CsvFileError("fields", "no fields given")
    allowed = (*EXPORT_FIELDS, PASSWORD_FIELD)
    for name in names:
        if name not in allowed:
            raise CsvFileError("fields", f"unknown field {name!r}; choose from "
                               + ", ".join(allowed))
    if len(set(names)) != len(names):
        raise CsvFileError("fields", "a field is named twice")
    if PASSWORD_FIELD in names and not include_password:
        raise CsvFileError("fields", "password is exported only with --include-password")
    if include_password and PASSWORD_FIELD not in names:
        names.append(PASSWORD_FIELD)
    return names


def mailbox_addresses(directory: Directory, postoffice: str) -> dict[str, list[str]]:
    """Connector target -> its SMTP addresses (plain ``local@domain``), in directory order."""
    found: dict[str, list[str]] = {}
    for entry in directory.list_addresses(postoffice=postoffice):
        match = _SMTP.match(entry.address)
        if match:
            found.setdefault(entry.target.lower(), []).append(match.group(1))
    return found


@dataclass
class ExportResult:
    rows: int = 0
    passwords_missing: int = 0


def export_users(directory: Directory, postoffice: str, out: TextIO,
                 fields: Sequence[str], *, include_password: bool = False) -> ExportResult:
    """Write the post office's mailboxes to ``out`` as CSV with a header row."""
    directory.get_postoffice(postoffice)
    addresses = mailbox_addresses(directory, postoffice)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    result = ExportResult()
    for box in sorted(directory.list_mailboxes(postoffice), key=lambda b: b.name.lower()):
        own = addresses.get(box.connector_address.lower(), [])
        row = []
        for name in fields:
            if name == PASSWORD_FIELD:
                secret = (directory.recoverable_secret(postoffice, box.name)
                          if include_password else None)
                if secret is None:
                    result.passwords_missing += 1
                row.append(secret or "")
            else:
                row.append(_export_cell(name, box, own))
        writer.writerow(row)
        result.rows += 1
    return result


def _export_cell(name: str, box: Mailbox, addresses: list[str]) -> str:
    if name == "emailaddress":
        return addresses[0] if addresses else ""
    if name == "mailbox":
        return box.name
    if name == "friendly_name":
        return str(box.options.get("friendly_name") or box.options.get("display_name") or "")
    if name == "quota_mb":
        return format_mb(box.quota_bytes)
    if name == "type":
        return box.type
    if name == "disabled":
        return "true" if box.options.get("disabled") else "false"
    if name == "used_mb":
        return format_mb(box.used_bytes)
    if name == "addresses":
        return ";".join(addresses)
    raise CsvFileError("fields", f"unknown field {name!r}")


# --- import -----------------------------------------------------------------------------

@dataclass
class ImportRow:
    line: int
    email: str
    local: str
    domain: str
    mailbox: str
    password: str | None
    quota_bytes: int | type[Ellipsis] | None  # Ellipsis: the default quota
    type: str
    options: dict[str, Any]
    generated: bool = False
    # Every address of the row as (field, local, ASCII domain), emailaddress first.
    addresses: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def domains(self) -> set[str]:
        return {domain for _, _, domain in self.addresses}


@dataclass
class ImportProblem:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@dataclass
class ImportResult:
    imported: list[ImportRow] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)
    domains_created: list[str] = field(default_factory=list)

    @property
    def generated_passwords(self) -> list[tuple[str, str]]:
        return [(r.email, r.password or "") for r in self.imported if r.generated]


def read_rows(data: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Decode and split the file: (column names, [(line number, cells)]).

    Raises CsvFileError for a file that is not UTF-8, is empty, or cannot be split.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise CsvFileError("file", f"line {line}: not UTF-8 text (byte {exc.start})") from None
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise CsvFileError("file", f"line {line}: contains a NUL character")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                rows.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise CsvFileError("file", f"line {start}: {exc}") from None
    if not rows:
        raise CsvFileError("file", "no users in the file (it is empty)")
    first = rows[0][1]
    if first[0].strip().lower().replace(" ", "").replace("_", "") in ("emailaddress", "email"):
        columns = []
        for cell in first:
            name = cell.strip().lower().replace(" ", "_")
            if name == "email_address":
                name = "emailaddress"
            if name not in IMPORT_COLUMNS and name not in IGNORED_COLUMNS:
                raise CsvFileError("file", f"line {rows[0][0]}: unknown column {cell!r} "
                                   "in the header")
            columns.append(name)
        if len(set(columns)) != len(columns):
            raise CsvFileError("file", f"line {rows[0][0]}: a column is named twice")
        rows = rows[1:]
        if not rows:
            raise CsvFileError("file", "no users in the file (only a header line)")
        return columns, rows
    return list(POSITIONAL_COLUMNS), rows


def _check_row(line: int, columns: Sequence[str], cells: Sequence[str],
               password_check: Callable[[str, str], None],
               option_parse: Callable[[str, str], Any]) -> ImportRow:
    if len(cells) > len(columns):
        raise RowError("columns", f"{len(cells)} columns, at most {len(columns)} expected")
    values = {IMPORT_COLUMNS.get(name, name): cell.strip()
              for name, cell in zip(columns, cells, strict=False)}
    email = values.get("emailaddress", "")
    if not email:
        raise RowError("emailaddress", "missing")
    local, domain = parse_email(email, "emailaddress")
    mailbox = values.get("mailbox") or local
    password = values.get("password") or None
    if password is not None:
        password_check(password, mailbox)
    quota: int | type[Ellipsis] | None = ...
    if values.get("quota"):
        quota = parse_quota_mb(values["quota"])
    box_type = (values.get("type") or "USER").upper()
    if box_type not in MAILBOX_TYPES:
        raise RowError("type", f"must be one of {', '.join(MAILBOX_TYPES)}; got {box_type!r}")
    options: dict[str, Any] = {}
    if values.get("disabled"):
        options["disabled"] = option_parse("disabled", values["disabled"])
    addresses = [("emailaddress", local, domain)]
    for part in (values.get("addresses") or "").split(";"):
        if part.strip():
            extra_local, extra_domain = parse_email(part, "addresses")
            if (extra_local.lower(), extra_domain) != (local.lower(), domain):
                addresses.append(("addresses", extra_local, extra_domain))
    return ImportRow(line, display_address(smtp_address(local, domain)), local, domain,
                     mailbox, password, quota, box_type, options, addresses=addresses)


def import_users(store: Any, postoffice: str, data: bytes, *,
                 progress: Callable[[int], None] | None = None) -> ImportResult:
    """Import users from CSV bytes into ``postoffice``; see the module docstring.

    ``store`` is a :class:`postroom.store.Store`. Raises CsvFileError (file) or
    DirectoryError (unknown post office) before changing anything; row problems are
    returned in the result.
    """
    from postroom.auth.policy import PasswordPolicy, PasswordPolicyError
    from postroom.settings.model import OptionError
    from postroom.settings.objects import MAILBOX

    directory: Directory = store.directory
    postoffice = directory.get_postoffice(postoffice).name
    columns, rows = read_rows(data)
    policy = PasswordPolicy.from_settings(store.settings)
    row_errors = (RowError, DirectoryError, OptionError, PasswordPolicyError)
    result = ImportResult()

    existing = {b.name.lower() for b in directory.list_mailboxes(postoffice)}
    seen_names: dict[str, int] = {}
    seen_emails: dict[str, int] = {}
    domain_owner: dict[str, str | None] = {}
    valid: list[ImportRow] = []
    for line, cells in rows:
        try:
            row = _check_row(line, columns, cells,
                             lambda pw, user: policy.check(pw, user),
                             lambda key, text: MAILBOX.get(key).parse(text))
            key = row.mailbox.lower()
            if key in existing:
                raise RowError("mailbox", f"{row.mailbox} already exists in {postoffice}")
            if key in seen_names:
                raise RowError("mailbox", f"{row.mailbox} already on line {seen_names[key]}")
            for field_name, local, domain in row.addresses:
                address = smtp_address(local, domain)
                if address.lower() in seen_emails:
                    raise RowError(field_name, f"{display_address(address)} already on line "
                                   f"{seen_emails[address.lower()]}")
                if domain not in domain_owner:
                    try:
                        domain_owner[domain] = directory.get_domain(domain).postoffice
                    except DirectoryError:
                        domain_owner[domain] = None
                owner = domain_owner[domain]
                if owner is not None and owner.lower() != postoffice.lower():
                    raise RowError(field_name, f"domain {domain} belongs to post office {owner}")
                taken = exact_mapping(directory, address)
                if taken is not None:
                    raise RowError(field_name, f"{display_address(address)} is already mapped "
                                   f"to {taken.target}")
        except row_errors as exc:
            result.problems.append(_problem(line, exc))
            continue
        seen_names[key] = line
        for _, local, domain in row.addresses:
            seen_emails[smtp_address(local, domain).lower()] = line
        if row.password is None:
            row.password = policy.random_password(row.mailbox)
            row.generated = True
        valid.append(row)

    for domain in sorted({d for r in valid for d in r.domains if domain_owner[d] is None}):
        directory.create_domain(domain, postoffice)
        result.domains_created.append(domain)

    def create(row: ImportRow) -> ImportProblem | None:
        try:
            _create_row(store, postoffice, row)
        except row_errors as exc:
            return _problem(row.line, exc)
        return None

    done = 0
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="import") as pool:
        for row, problem in zip(valid, pool.map(create, valid), strict=True):
            if problem is None:
                result.imported.append(row)
            else:
                result.problems.append(problem)
            done += 1
            if progress is not None:
                progress(done)

    used = {d for r in result.imported for d in r.domains}
    for domain in list(result.domains_created):
        if domain not in used:
            directory.delete_domain(domain)
            result.domains_created.remove(domain)
    result.problems.sort(key=lambda p: p.line)
    return result


def _create_row(store: Any, postoffice: str, row: ImportRow) -> None:
    """One mailbox and its addresses; the mailbox goes again if an address fails."""
    directory: Directory = store.directory
    kwargs: dict[str, Any] = {"type": row.type, "options": row.options or None}
    if row.quota_bytes is not ...:
        kwargs["quota_bytes"] = row.quota_bytes
    assert row.password is not None
    directory.create_mailbox(postoffice, row.mailbox, row.password, **kwargs)
    try:
        for _, local, domain in row.addresses:
            address = smtp_address(local, domain)
            if exact_mapping(directory, address) is None:
                directory.add_address(address, f"[SF:{postoffice}/{row.mailbox}]")
    except BaseException:
        directory.delete_mailbox(postoffice, row.mailbox)
        raise


def _problem(line: int, exc: Exception) -> ImportProblem:
    field_name = getattr(exc, "field", "row")
    message = getattr(exc, "message", None)
    if message is None:
        problems = getattr(exc, "problems", None)
        message = "; ".join(problems) if problems else str(exc)
    return ImportProblem(line, str(field_name), str(message))


def import_with_progress(store: Any, postoffice: str, data: bytes, *,
                         interactive: bool = True) -> ImportResult:
    """:func:`import_users` with a progress bar when a person watches a large import."""
    import sys

    if not (interactive and sys.stdout.isatty() and data.count(b"\n") >= PROGRESS_ROWS):
        return import_users(store, postoffice, data)
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("importing users", total=data.count(b"\n") or None)
        return import_users(store, postoffice, data,
                            progress=lambda n: bar.update(task, completed=n))


def write_passwords(path: Path, pairs: Iterable[tuple[str, str]]) -> None:
    """Write ``emailaddress,password`` lines to a new file readable by its owner only."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["emailaddress", "password"])
        writer.writerows(pairs)
