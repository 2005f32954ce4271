"""The directory in the embedded SQLite store (implements ``postroom.store.directory``).

Manual 5.2.3 (new mailbox size limit; one address per domain for every new mailbox),
5.2.4 (encrypt passwords), 5.3-5.7 (post offices, domains, mailboxes, groups, lists),
5.5.8 (POP retrieval entries). Names, addresses and option values are untrusted
(CLI, CSV import, web admin): they are checked by :mod:`postroom.store.addresses` and
the option sets of :mod:`postroom.settings.objects` before anything is written, and
every change runs in one ``BEGIN IMMEDIATE`` transaction, so a refused call changes
nothing.

Settings read: ``messaging_manager.security.encrypt_passwords``,
``messaging_manager.administration.new_mailbox_size_limit`` (+ ``_enabled``),
``messaging_manager.administration.auto_create_address_per_domain``, and the password
policy (``localhost.policies.*``).

Decisions:

* A new mailbox gets ``name@domain`` for every domain of its post office (5.2.3, when
  ``auto_create_address_per_domain`` is on); an address already mapped elsewhere is
  skipped, not an error. New domains add no addresses to existing mailboxes (5.5.1).
* Mailboxes and groups share the ``[SF:postoffice/name]`` namespace (the post office
  connector expands either), so a group may not take a mailbox's name and vice versa.
* A group gets its e-mail addresses the way the manual's "Add email" does (5.6.2):
  ordinary address map entries ``[SMTP:staff@example.com] -> [SF:po/group]``.
* A list's ``domain`` option (5.7.3 "Select domain for this list") maps
  ``[SMTP:list@domain] -> [LS:po/list]``; more addresses go through ``add_address``.
* The domain option ``catch_all`` names an address; it is kept in the address map as
  ``[SMTP:*@domain]`` pointing at that address's target (or at a remote address, which
  the manual allows but warns against). ``resolve`` tries the exact address, then the
  catch-all. Whether the target is disabled is the delivering connector's business.
* The mailbox type has no column in schema version 2; it is kept in the options
  document under the private key ``_type`` (never a valid option key).
* Logins: ``mailbox@postoffice`` first, then any SMTP address mapped exactly (not a
  catch-all) to a mailbox. Unknown logins still pay for one hash verification, so
  response time does not reveal which mailboxes exist.

Known limits: a post office's or domain's records are re-read on every call (no cache);
fine for administration and logins, callers on hot paths should cache.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from postroom.auth.passwords import hash_password, needs_rehash, verify_password
from postroom.auth.policy import PasswordPolicy
from postroom.settings import objects
from postroom.settings.model import OptionError, OptionSet
from postroom.store.addresses import (
    ConnectorAddress,
    ascii_domain,
    check_group_name,
    check_object_name,
    check_postoffice_name,
    ls_address,
    normalise_smtp,
    parse_connector,
    parse_email,
    sf_address,
    smtp_address,
    unicode_domain,
)
from postroom.store.directory import (
    DEFAULT_MAILBOX_TYPE,
    MAILBOX_TYPES,
    Address,
    DirectoryError,
    Domain,
    Group,
    Mailbox,
    MailList,
    PopRetrieval,
    PostOffice,
)
from postroom.store.secrets import SecretError

if TYPE_CHECKING:
    from postroom.store import Store

log = logging.getLogger("postroom.directory")

MB = 1024 * 1024
_TYPE_KEY = "_type"
_UNSET: Any = ...


@cache
def _dummy_hash() -> str:
    return hash_password("postroom-no-such-mailbox")


def _loads(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), sort_keys=True, ensure_ascii=False)


def _changes(option_set: OptionSet, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validated option changes; OptionError becomes DirectoryError naming the key."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise DirectoryError("options", f"expected a mapping of option values, got {options!r}")
    try:
        return objects.validate_changes(option_set, options)
    except OptionError as exc:
        raise DirectoryError(exc.field, exc.message) from None


class SqliteDirectory:
    """Post offices, domains, mailboxes, the address map, groups, lists, POP retrieval."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- shared lookups ------------------------------------------------------------------

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._store.conn

    def _po(self, conn: sqlite3.Connection, name: str, field: str = "postoffice") -> sqlite3.Row:
        if not isinstance(name, str) or not name.strip():
            raise DirectoryError(field, "post office name is empty")
        row = conn.execute("SELECT * FROM postoffice WHERE name = ?", (name.strip(),)).fetchone()
        if row is None:
            raise DirectoryError(field, f"no post office named {name!r}")
        return row

    def _po_by_id(self, conn: sqlite3.Connection, po_id: int) -> sqlite3.Row:
        return conn.execute("SELECT * FROM postoffice WHERE id = ?", (po_id,)).fetchone()

    def _domain_row(self, conn: sqlite3.Connection, name: str,
                    field: str = "domain") -> sqlite3.Row:
        ascii_name = ascii_domain(name, field)
        row = conn.execute("SELECT * FROM domain WHERE name = ?", (ascii_name,)).fetchone()
        if row is None:
            raise DirectoryError(field, f"no domain named {name!r}")
        return row

    def _mailbox_row(self, conn: sqlite3.Connection, po: sqlite3.Row, name: str,
                     field: str = "mailbox") -> sqlite3.Row:
        row = conn.execute("SELECT * FROM mailbox WHERE postoffice_id = ? AND name = ?",
                           (po["id"], name)).fetchone()
        if row is None:
            raise DirectoryError(field, f"no mailbox {name!r} in post office {po['name']}")
        return row

    def _group_row(self, conn: sqlite3.Connection, po: sqlite3.Row, name: str,
                   field: str = "group") -> sqlite3.Row:
        row = conn.execute("SELECT * FROM mail_group WHERE postoffice_id = ? AND name = ?",
                           (po["id"], name)).fetchone()
        if row is None:
            raise DirectoryError(field, f"no group {name!r} in post office {po['name']}")
        return row

    def _list_row(self, conn: sqlite3.Connection, po: sqlite3.Row, name: str,
                  field: str = "list") -> sqlite3.Row:
        row = conn.execute("SELECT * FROM mail_list WHERE postoffice_id = ? AND name = ?",
                           (po["id"], name)).fetchone()
        if row is None:
            raise DirectoryError(field, f"no list {name!r} in post office {po['name']}")
        return row

    def _sf_name_taken(self, conn: sqlite3.Connection, po_id: int, name: str) -> str | None:
        """'mailbox' or 'group' when ``[SF:po/name]`` is already used, else None."""
        if conn.execute("SELECT 1 FROM mailbox WHERE postoffice_id = ? AND name = ?",
                        (po_id, name)).fetchone():
            return "mailbox"
        if conn.execute("SELECT 1 FROM mail_group WHERE postoffice_id = ? AND name = ?",
                        (po_id, name)).fetchone():
            return "group"
        return None

    # -- records -----------------------------------------------------------------------

    def _postoffice(self, row: sqlite3.Row) -> PostOffice:
        return PostOffice(id=row["id"], name=row["name"], created_at=row["created_at"],
                          options=objects.effective(objects.POSTOFFICE, _loads(row["options"])))

    def _domain(self, row: sqlite3.Row, po_name: str | None = None) -> Domain:
        if po_name is None:
            po_name = self._po_by_id(self._conn, row["postoffice_id"])["name"]
        return Domain(id=row["id"], name=row["name"], display_name=unicode_domain(row["name"]),
                      postoffice=po_name,
                      options=objects.effective(objects.DOMAIN, _loads(row["options"])))

    def _mailbox(self, row: sqlite3.Row, po_name: str) -> Mailbox:
        stored = _loads(row["options"])
        return Mailbox(
            id=row["id"], postoffice=po_name, name=row["name"],
            type=stored.get(_TYPE_KEY, DEFAULT_MAILBOX_TYPE),
            quota_bytes=row["quota_bytes"], used_bytes=row["used_bytes"],
            message_count=row["message_count"],
            options=objects.effective(objects.MAILBOX, stored), created_at=row["created_at"],
            has_recoverable_secret=row["password_secret"] is not None)

    def _group(self, conn: sqlite3.Connection, row: sqlite3.Row, po_name: str) -> Group:
        members = [r["member"] for r in conn.execute(
            "SELECT member FROM group_member WHERE group_id = ? ORDER BY rowid", (row["id"],))]
        return Group(id=row["id"], postoffice=po_name, name=row["name"], members=members,
                     options=objects.effective(objects.GROUP, _loads(row["options"])))

    def _list(self, row: sqlite3.Row, po_name: str) -> MailList:
        return MailList(id=row["id"], postoffice=po_name, name=row["name"],
                        options=objects.effective(objects.LIST, _loads(row["options"])))

    # == post offices (5.3) ==============================================================

    def create_postoffice(self, name: str,
                          options: Mapping[str, Any] | None = None) -> PostOffice:
        name = check_postoffice_name(name.strip() if isinstance(name, str) else name, "name")
        changes = _changes(objects.POSTOFFICE, options)
        stored = objects.merge(objects.POSTOFFICE, {}, changes)
        with self._store.transaction() as conn:
            existing = conn.execute("SELECT name FROM postoffice WHERE name = ?",
                                    (name,)).fetchone()
            if existing:
                raise DirectoryError("name", f"post office {existing['name']} already exists")
            conn.execute("INSERT INTO postoffice (name, options, created_at) VALUES (?, ?, ?)",
                         (name, _dumps(stored), time.time()))
            return self._postoffice(self._po(conn, name))

    def get_postoffice(self, name: str) -> PostOffice:
        return self._postoffice(self._po(self._conn, name))

    def list_postoffices(self) -> list[PostOffice]:
        rows = self._conn.execute("SELECT * FROM postoffice ORDER BY name COLLATE NOCASE")
        return [self._postoffice(r) for r in rows]

    def update_postoffice(self, name: str, options: Mapping[str, Any]) -> PostOffice:
        changes = _changes(objects.POSTOFFICE, options)
        with self._store.transaction() as conn:
            row = self._po(conn, name)
            stored = objects.merge(objects.POSTOFFICE, _loads(row["options"]), changes)
            conn.execute("UPDATE postoffice SET options = ? WHERE id = ?",
                         (_dumps(stored), row["id"]))
            return self._postoffice(self._po(conn, name))

    def delete_postoffice(self, name: str, *, force: bool = False) -> None:
        with self._store.transaction() as conn:
            row = self._po(conn, name)
            boxes = [r["name"] for r in conn.execute(
                "SELECT name FROM mailbox WHERE postoffice_id = ?", (row["id"],))]
            if boxes and not force:
                raise DirectoryError("postoffice", f"post office {row['name']} still has "
                                     f"{len(boxes)} mailbox(es); delete them first or use "
                                     "--force")
            prefix = f"[SF:{row['name']}/"
            conn.execute("DELETE FROM group_member WHERE substr(member, 1, ?) = ? COLLATE NOCASE",
                         (len(prefix), prefix))
            conn.execute("DELETE FROM postoffice WHERE id = ?", (row["id"],))
        for box in boxes:
            self._remove_files(row["name"], box)

    def _remove_files(self, postoffice: str, mailbox: str) -> None:
        try:
            self._store.messages.remove_mailbox_files(postoffice, mailbox)
        except OSError as exc:  # the rows are gone; leftovers are reported, not fatal
            log.warning("could not remove files of mailbox %s@%s: %s", mailbox, postoffice, exc)

    # == domains (5.4) ====================================================================

    def create_domain(self, name: str, postoffice: str,
                      options: Mapping[str, Any] | None = None) -> Domain:
        ascii_name = ascii_domain(name, "domain")
        changes = _changes(objects.DOMAIN, options)
        with self._store.transaction() as conn:
            po = self._po(conn, postoffice)
            existing = conn.execute(
                "SELECT p.name FROM domain d JOIN postoffice p ON p.id = d.postoffice_id "
                "WHERE d.name = ?", (ascii_name,)).fetchone()
            if existing:
                raise DirectoryError("domain", f"domain {unicode_domain(ascii_name)} already "
                                     f"belongs to post office {existing['name']}")
            stored = objects.merge(objects.DOMAIN, {}, changes)
            conn.execute("INSERT INTO domain (name, postoffice_id, options) VALUES (?, ?, ?)",
                         (ascii_name, po["id"], _dumps(stored)))
            row = self._domain_row(conn, ascii_name)
            if "catch_all" in changes:
                self._sync_catch_all(conn, row, stored.get("catch_all", ""))
            return self._domain(row, po["name"])

    def get_domain(self, name: str) -> Domain:
        return self._domain(self._domain_row(self._conn, name))

    def list_domains(self, postoffice: str | None = None) -> list[Domain]:
        conn = self._conn
        sql = ("SELECT d.*, p.name AS po_name FROM domain d "
               "JOIN postoffice p ON p.id = d.postoffice_id")
        args: tuple[Any, ...] = ()
        if postoffice is not None:
            sql += " WHERE d.postoffice_id = ?"
            args = (self._po(conn, postoffice)["id"],)
        rows = conn.execute(sql + " ORDER BY d.name", args).fetchall()
        return [self._domain(r, r["po_name"]) for r in rows]

    def update_domain(self, name: str, options: Mapping[str, Any]) -> Domain:
        changes = _changes(objects.DOMAIN, options)
        with self._store.transaction() as conn:
            row = self._domain_row(conn, name)
            stored = objects.merge(objects.DOMAIN, _loads(row["options"]), changes)
            conn.execute("UPDATE domain SET options = ? WHERE id = ?",
                         (_dumps(stored), row["id"]))
            if "catch_all" in changes:
                self._sync_catch_all(conn, row, stored.get("catch_all", ""))
            return self._domain(self._domain_row(conn, name))

    def delete_domain(self, name: str) -> None:
        with self._store.transaction() as conn:
            row = self._domain_row(conn, name)
            suffix = f"@{row['name']}]"
            conn.execute("DELETE FROM address WHERE postoffice_id = ? AND "
                         "substr(address, -?) = ? COLLATE NOCASE",
                         (row["postoffice_id"], len(suffix), suffix))
            for entry in conn.execute("SELECT id, options FROM mail_list WHERE postoffice_id = ?",
                                      (row["postoffice_id"],)).fetchall():
                stored = _loads(entry["options"])
                if stored.get("domain") == row["name"]:
                    del stored["domain"]
                    conn.execute("UPDATE mail_list SET options = ? WHERE id = ?",
                                 (_dumps(stored), entry["id"]))
            conn.execute("DELETE FROM domain WHERE id = ?", (row["id"],))

    def _sync_catch_all(self, conn: sqlite3.Connection, domain: sqlite3.Row, value: str) -> None:
        """Make ``[SMTP:*@domain]`` point where the ``catch_all`` option says (or nowhere)."""
        key = smtp_address("*", domain["name"])
        conn.execute("DELETE FROM address WHERE address = ?", (key,))
        if not value:
            return
        local, dom = parse_email(value, "catch_all")
        found = conn.execute("SELECT * FROM address WHERE address = ?",
                             (smtp_address(local, dom),)).fetchone()
        if found is not None:
            if found["postoffice_id"] != domain["postoffice_id"]:
                raise DirectoryError("catch_all", f"{value} belongs to another post office")
            target = found["target"]
        elif conn.execute("SELECT 1 FROM domain WHERE name = ?", (dom,)).fetchone():
            raise DirectoryError("catch_all", f"no mailbox or group has the address {value}")
        else:
            target = smtp_address(local, dom)   # remote catch-all (discouraged, 5.4.2)
        conn.execute("INSERT INTO address (address, target, postoffice_id) VALUES (?, ?, ?)",
                     (key, target, domain["postoffice_id"]))

    # == mailboxes (5.5) ==================================================================

    def _check_quota(self, quota_bytes: Any) -> int | None:
        if quota_bytes is None:
            return None
        if isinstance(quota_bytes, bool) or not isinstance(quota_bytes, int):
            raise DirectoryError("quota", f"expected a number of bytes, got {quota_bytes!r}")
        if quota_bytes < 0:
            raise DirectoryError("quota", f"must not be negative, got {quota_bytes}")
        return quota_bytes

    def _check_type(self, type: Any) -> str:
        text = type.upper() if isinstance(type, str) else type
        if text not in MAILBOX_TYPES:
            raise DirectoryError("type", f"must be one of {', '.join(MAILBOX_TYPES)}; "
                                         f"got {type!r}")
        return text

    def _default_quota(self, po: sqlite3.Row) -> int | None:
        stored = _loads(po["options"])
        if stored.get("default_quota_mb") is not None:
            return int(stored["default_quota_mb"]) * MB
        settings = self._store.settings
        if settings.get("messaging_manager.administration.new_mailbox_size_limit_enabled"):
            return int(settings.get("messaging_manager.administration.new_mailbox_size_limit")) * MB
        return None

    def _password_secret(self, mailbox_id: int, password: str) -> bytes | None:
        if not self._store.settings.get("messaging_manager.security.encrypt_passwords"):
            return None
        return self._store.secrets.encrypt(password, f"mailbox:{mailbox_id}")

    def create_mailbox(self, postoffice: str, name: str, password: str, *,
                       quota_bytes: int | None = _UNSET, type: str = DEFAULT_MAILBOX_TYPE,
                       options: Mapping[str, Any] | None = None) -> Mailbox:
        name = check_object_name(name, "name", "mailbox name")
        box_type = self._check_type(type)
        quota = _UNSET if quota_bytes is _UNSET else self._check_quota(quota_bytes)
        changes = _changes(objects.MAILBOX, options)
        self._po(self._conn, postoffice)          # unknown post office before the policy
        if not isinstance(password, str):
            raise DirectoryError("password", "expected text")
        PasswordPolicy.from_settings(self._store.settings).check(password, name)
        password_hash = hash_password(password)
        stored = objects.merge(objects.MAILBOX, {}, changes)
        if box_type != DEFAULT_MAILBOX_TYPE:
            stored[_TYPE_KEY] = box_type
        auto = self._store.settings.get(
            "messaging_manager.administration.auto_create_address_per_domain")
        with self._store.transaction() as conn:
            po = self._po(conn, postoffice)
            taken = self._sf_name_taken(conn, po["id"], name)
            if taken:
                raise DirectoryError("name", f"a {taken} named {name} already exists in post "
                                             f"office {po['name']}")
            if quota is _UNSET:
                quota = self._default_quota(po)
            cursor = conn.execute(
                "INSERT INTO mailbox (postoffice_id, name, password_hash, quota_bytes, options, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (po["id"], name, password_hash, quota, _dumps(stored), time.time()))
            box_id = int(cursor.lastrowid or 0)
            secret = self._password_secret(box_id, password)
            if secret is not None:
                conn.execute("UPDATE mailbox SET password_secret = ? WHERE id = ?",
                             (secret, box_id))
            self._store.messages.create_folders(conn, box_id)
            if auto:
                target = sf_address(po["name"], name)
                for domain in conn.execute("SELECT name FROM domain WHERE postoffice_id = ? "
                                           "ORDER BY name", (po["id"],)).fetchall():
                    conn.execute("INSERT OR IGNORE INTO address (address, target, postoffice_id) "
                                 "VALUES (?, ?, ?)",
                                 (smtp_address(name, domain["name"]), target, po["id"]))
            box = self._mailbox(self._mailbox_row(conn, po, name), po["name"])
        self._place_default_message(po, box)
        return box

    def _place_default_message(self, po: sqlite3.Row, box: Mailbox) -> None:
        """Manual 5.3.7.9: the post office's default message goes into each new mailbox."""
        text = _loads(po["options"]).get("default_message") or ""
        if not text:
            return
        data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
        try:
            self._store.messages.append(box.postoffice, box.name, "Inbox", data)
        except (OSError, ValueError) as exc:
            log.warning("default message not placed in %s: %s", box.login, exc)

    def get_mailbox(self, postoffice: str, name: str) -> Mailbox:
        conn = self._conn
        po = self._po(conn, postoffice)
        return self._mailbox(self._mailbox_row(conn, po, name), po["name"])

    def list_mailboxes(self, postoffice: str) -> list[Mailbox]:
        conn = self._conn
        po = self._po(conn, postoffice)
        rows = conn.execute("SELECT * FROM mailbox WHERE postoffice_id = ? "
                            "ORDER BY name COLLATE NOCASE", (po["id"],)).fetchall()
        return [self._mailbox(r, po["name"]) for r in rows]

    def update_mailbox(self, postoffice: str, name: str, *,
                       options: Mapping[str, Any] | None = None,
                       quota_bytes: int | None = _UNSET, type: str | None = None) -> Mailbox:
        changes = _changes(objects.MAILBOX, options)
        quota = _UNSET if quota_bytes is _UNSET else self._check_quota(quota_bytes)
        box_type = None if type is None else self._check_type(type)
        with self._store.transaction() as conn:
            po = self._po(conn, postoffice)
            row = self._mailbox_row(conn, po, name)
            old = _loads(row["options"])
            stored = objects.merge(objects.MAILBOX, old, changes)
            kind = box_type or old.get(_TYPE_KEY, DEFAULT_MAILBOX_TYPE)
            if kind != DEFAULT_MAILBOX_TYPE:
                stored[_TYPE_KEY] = kind
            conn.execute("UPDATE mailbox SET options = ? WHERE id = ?",
                         (_dumps(stored), row["id"]))
            if quota is not _UNSET:
                conn.execute("UPDATE mailbox SET quota_bytes = ? WHERE id = ?",
                             (quota, row["id"]))
            return self._mailbox(self._mailbox_row(conn, po, name), po["name"])

    def set_password(self, postoffice: str, name: str, password: str) -> None:
        box = self.get_mailbox(postoffice, name)
        if not isinstance(password, str):
            raise DirectoryError("password", "expected text")
        PasswordPolicy.from_settings(self._store.settings).check(password, box.name)
        password_hash = hash_password(password)
        secret = self._password_secret(box.id, password)
        with self._store.transaction() as conn:
            row = self._mailbox_row(conn, self._po(conn, postoffice), name)
            conn.execute("UPDATE mailbox SET password_hash = ?, password_secret = ? WHERE id = ?",
                         (password_hash, secret, row["id"]))

    def delete_mailbox(self, postoffice: str, name: str) -> None:
        with self._store.transaction() as conn:
            po = self._po(conn, postoffice)
            row = self._mailbox_row(conn, po, name)
            self._forget_target(conn, sf_address(po["name"], row["name"]))
            conn.execute("DELETE FROM mailbox WHERE id = ?", (row["id"],))
        self._remove_files(po["name"], row["name"])

    def _forget_target(self, conn: sqlite3.Connection, target: str) -> None:
        """Remove the address mappings and group memberships of a target being deleted."""
        for entry in conn.execute("SELECT address FROM address WHERE target = ? COLLATE NOCASE",
                                  (target,)).fetchall():
            parsed = parse_connector(entry["address"], allow_catch_all=True)
            if parsed.local == "*":     # the domain's catch-all pointed here: clear it
                self._clear_catch_all_option(conn, parsed.domain)
        conn.execute("DELETE FROM address WHERE target = ? COLLATE NOCASE", (target,))
        conn.execute("DELETE FROM group_member WHERE member = ?", (target,))

    def _clear_catch_all_option(self, conn: sqlite3.Connection, domain: str) -> None:
        row = conn.execute("SELECT id, options FROM domain WHERE name = ?", (domain,)).fetchone()
        if row is None:
            return
        stored = _loads(row["options"])
        if stored.pop("catch_all", None) is not None:
            conn.execute("UPDATE domain SET options = ? WHERE id = ?", (_dumps(stored), row["id"]))

    def find_login(self, login: str, *, separators: str = "@") -> Mailbox | None:
        """The mailbox a login names: ``mailbox@postoffice`` or a mapped SMTP address.

        ``separators`` are the characters accepted in place of ``@`` (POP3/SMTP
        "Alternate @ characters"); ``@`` itself is always accepted.
        """
        if not isinstance(login, str) or not login or "[" in login or "]" in login:
            return None
        conn = self._conn
        for sep in dict.fromkeys("@" + (separators or "")):
            if not sep or sep not in login:
                continue
            local, _, after = login.strip().rpartition(sep)
            if not local or not after:
                continue
            row = conn.execute(
                "SELECT m.*, p.name AS po_name FROM mailbox m JOIN postoffice p "
                "ON p.id = m.postoffice_id WHERE p.name = ? AND m.name = ?",
                (after, local)).fetchone()
            if row is not None:
                return self._mailbox(row, row["po_name"])
            try:
                address = normalise_smtp(f"{local}@{after}")
            except DirectoryError:
                continue
            mapped = conn.execute("SELECT target FROM address WHERE address = ?",
                                  (address,)).fetchone()
            if mapped is None:
                continue
            try:
                target = parse_connector(mapped["target"])
            except DirectoryError:
                continue
            if target.connector != "SF":
                continue
            row = conn.execute(
                "SELECT m.*, p.name AS po_name FROM mailbox m JOIN postoffice p "
                "ON p.id = m.postoffice_id WHERE p.name = ? AND m.name = ?",
                (target.postoffice, target.name)).fetchone()
            if row is not None:
                return self._mailbox(row, row["po_name"])
        return None

    def authenticate(self, login: str, password: str, *,
                     separators: str = "@") -> Mailbox | None:
        """The mailbox if ``password`` is right and the mailbox may log in, else None.

        Refused: unknown logins, disabled mailboxes, mailboxes with
        ``prevent_authentication``, mailboxes of a disabled post office.
        """
        box = self.find_login(login, separators=separators)
        if box is None or not isinstance(password, str):
            verify_password(_dummy_hash(), "x")
            return None
        row = self._conn.execute(
            "SELECT m.password_hash, p.options AS po_options FROM mailbox m "
            "JOIN postoffice p ON p.id = m.postoffice_id WHERE m.id = ?", (box.id,)).fetchone()
        if row is None or not verify_password(row["password_hash"], password):
            return None
        if (box.options.get("disabled") or box.options.get("prevent_authentication")
                or _loads(row["po_options"]).get("disabled")):
            return None
        if needs_rehash(row["password_hash"]):
            with self._store.transaction() as conn:
                conn.execute("UPDATE mailbox SET password_hash = ? WHERE id = ?",
                             (hash_password(password), box.id))
        return box

    def recoverable_secret(self, postoffice: str, name: str) -> str | None:
        conn = self._conn
        row = self._mailbox_row(conn, self._po(conn, postoffice), name)
        if row["password_secret"] is None:
            return None
        try:
            return self._store.secrets.decrypt(row["password_secret"], f"mailbox:{row['id']}")
        except SecretError as exc:
            log.warning("password of mailbox %s@%s cannot be recovered: %s",
                        name, postoffice, exc)
            return None

    # == address map =====================================================================

    def _target(self, conn: sqlite3.Connection, target: str,
                field: str = "target") -> tuple[str, int]:
        """Canonical target address and its post office id; the target must exist."""
        parsed = parse_connector(target, field)
        if parsed.connector == "SMTP":
            raise DirectoryError(field, "a target must be a mailbox or group [SF:po/name] or a "
                                        "list [LS:po/list]")
        po = self._po(conn, parsed.postoffice, field)
        if parsed.connector == "SF":
            for table in ("mailbox", "mail_group"):
                row = conn.execute(f"SELECT name FROM {table} WHERE postoffice_id = ? "
                                   "AND name = ?", (po["id"], parsed.name)).fetchone()
                if row is not None:
                    return sf_address(po["name"], row["name"]), po["id"]
            raise DirectoryError(field, f"no mailbox or group {parsed.name!r} in post office "
                                        f"{po['name']}")
        row = self._list_row(conn, po, parsed.name, field)
        return ls_address(po["name"], row["name"]), po["id"]

    def add_address(self, address: str, target: str) -> Address:
        key = normalise_smtp(address, "address", allow_catch_all=True)
        parsed = parse_connector(key, allow_catch_all=True)
        with self._store.transaction() as conn:
            canonical, po_id = self._target(conn, target)
            domain = conn.execute("SELECT * FROM domain WHERE name = ?",
                                  (parsed.domain,)).fetchone()
            po = self._po_by_id(conn, po_id)
            if domain is None or domain["postoffice_id"] != po_id:
                raise DirectoryError("address", f"{unicode_domain(parsed.domain)} is not a "
                                     f"domain of post office {po['name']}")
            existing = conn.execute("SELECT target FROM address WHERE address = ?",
                                    (key,)).fetchone()
            if existing:
                raise DirectoryError("address", f"{key} is already mapped to "
                                                f"{existing['target']}")
            conn.execute("INSERT INTO address (address, target, postoffice_id) VALUES (?, ?, ?)",
                         (key, canonical, po_id))
            return Address(address=key, target=canonical, postoffice=po["name"])

    def delete_address(self, address: str) -> None:
        key = normalise_smtp(address, "address", allow_catch_all=True)
        with self._store.transaction() as conn:
            if conn.execute("SELECT 1 FROM address WHERE address = ?", (key,)).fetchone() is None:
                raise DirectoryError("address", f"{key} is not mapped")
            conn.execute("DELETE FROM address WHERE address = ?", (key,))
            parsed = parse_connector(key, allow_catch_all=True)
            if parsed.local == "*":
                self._clear_catch_all_option(conn, parsed.domain)

    def list_addresses(self, *, postoffice: str | None = None,
                       target: str | None = None) -> list[Address]:
        conn = self._conn
        sql = ("SELECT a.address, a.target, p.name AS po_name FROM address a "
               "JOIN postoffice p ON p.id = a.postoffice_id WHERE 1 = 1")
        args: list[Any] = []
        if postoffice is not None:
            sql += " AND a.postoffice_id = ?"
            args.append(self._po(conn, postoffice)["id"])
        if target is not None:
            sql += " AND a.target = ? COLLATE NOCASE"
            args.append(target.strip())
        rows = conn.execute(sql + " ORDER BY a.id", args).fetchall()
        return [Address(r["address"], r["target"], r["po_name"]) for r in rows]

    def resolve(self, address: str) -> Address | None:
        """The mapping for ``address``: the exact entry, else the domain's catch-all."""
        key = normalise_smtp(address, "address", allow_catch_all=True)
        parsed = parse_connector(key, allow_catch_all=True)
        conn = self._conn
        for candidate in (key, smtp_address("*", parsed.domain)):
            row = conn.execute(
                "SELECT a.address, a.target, p.name AS po_name FROM address a "
                "JOIN postoffice p ON p.id = a.postoffice_id WHERE a.address = ?",
                (candidate,)).fetchone()
            if row is not None:
                return Address(row["address"], row["target"], row["po_name"])
        return None

    # == groups (5.6) =====================================================================

    def create_group(self, postoffice: str, name: str,
                     options: Mapping[str, Any] | None = None) -> Group:
        name = check_group_name(name, "name")
        stored = objects.merge(objects.GROUP, {}, _changes(objects.GROUP, options))
        with self._store.transaction() as conn:
            po = self._po(conn, postoffice)
            taken = self._sf_name_taken(conn, po["id"], name)
            if taken:
                raise DirectoryError("name", f"a {taken} named {name} already exists in post "
                                             f"office {po['name']}")
            conn.execute("INSERT INTO mail_group (postoffice_id, name, options) VALUES (?, ?, ?)",
                         (po["id"], name, _dumps(stored)))
            return self._group(conn, self._group_row(conn, po, name), po["name"])

    def get_group(self, postoffice: str, name: str) -> Group:
        conn = self._conn
        po = self._po(conn, postoffice)
        return self._group(conn, self._group_row(conn, po, name), po["name"])

    def list_groups(self, postoffice: str) -> list[Group]:
        conn = self._conn
        po = self._po(conn, postoffice)
        rows = conn.execute("SELECT * FROM mail_group WHERE postoffice_id = ? "
                            "ORDER BY name COLLATE NOCASE", (po["id"],)).fetchall()
        return [self._group(conn, r, po["name"]) for r in rows]

    def update_group(self, postoffice: str, name: str, options: Mapping[str, Any]) -> Group:
        """Change a group's options (``disabled``). Added to the Protocol's methods."""
        changes = _changes(objects.GROUP, options)
        with self._store.transaction() as conn:
            po = self._po(conn, postoffice)
            row = self._group_row(conn, po, name)
            stored = objects.merge(objects.GROUP, _loads(row["options"]), changes)
            conn.execute("UPDATE mail_group SET options = ? WHERE id = ?",
                         (_dumps(stored), row["id"]))
            return self._group(conn, self._group_row(conn, po, name), po["name"])

    def _member(self, conn: sqlite3.Connection, member: str) -> str:
        """A member as a canonical connector address; local targets must exist."""
        parsed: ConnectorAddress = parse_connector(member, "member")
        if parsed.connector == "SMTP":
            return str(parsed)
        return self._target(conn, str(parsed), "member")[0]

    def add_group_member(self, postoffice: str, name: str, member: str) -> Group:
        with self._store.transaction() as conn:
            po = self._po(conn, postoffice)
            row = self._group_row(conn, po, name)
            address = self._member(conn, member)
            if address.lower() == sf_address(po["name"], row["name"]).lower():
                raise DirectoryError("member", "a group cannot be a member of itself")
            if conn.execute("SELECT 1 FROM group_member WHERE group_id = ? AND member = ?",
                            (row["id"], address)).fetchone():
                raise DirectoryError("member", f"{address} is already a member of {row['name']}")
            conn.execute("INSERT INTO group_member (group_id, member) VALUES (?, ?)",
                         (row["id"], address))
            return self._group(conn, row, po["name"])

    def remove_group_member(self, postoffice: str, name: str, member: str) -> Group:
        with self._store.transaction() as conn:
            po = self._po(conn, postoffice)
            row = self._group_row(conn, po, name)
            parsed = parse_connector(member, "member")
            address = str(parsed)
            if conn.execute("DELETE FROM group_member WHERE group_id = ? AND member = ?",
                            (row["id"], address)).rowcount == 0:
                raise DirectoryError("member", f"{address} is not a member of {row['name']}")
            return self._group(conn, row, po["name"])

    def delete_group(self, postoffice: str, name: str) -> None:
        with self._store.transaction() as conn:
            po = self._po(conn, postoffice)
            row = self._group_row(conn, po, name)
            self._forget_target(conn, sf_address(po["name"], row["name"]))
            conn.execute("DELETE FROM mail_group WHERE id = ?", (row["id"],))

    # == lists (5.7) ======================================================================

    def _list_domain(self, conn: sqlite3.Connection, po: sqlite3.Row, name: str,
                     old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        """Keep ``[SMTP:list@domain] -> [LS:po/list]`` in step with the ``domain`` option."""
        before, after = old.get("domain", ""), new.get("domain", "")
        if before == after:
            return
        target = ls_address(po["name"], name)
        if before:
            conn.execute("DELETE FROM address WHERE address = ? AND target = ? COLLATE NOCASE",
                         (smtp_address(name, before), target))
        if not after:
            return
        domain = conn.execute("SELECT postoffice_id FROM domain WHERE name = ?",
                              (after,)).fetchone()
        if domain is None or domain["postoffice_id"] != po["id"]:
            raise DirectoryError("domain", f"{unicode_domain(after)} is not a domain of post "
                                           f"office {po['name']}")
        key = smtp_address(name, after)
        existing = conn.execute("SELECT target FROM address WHERE address = ?", (key,)).fetchone()
        if existing:
            raise DirectoryError("domain", f"{key} is already mapped to {existing['target']}")
        conn.execute("INSERT INTO address (address, target, postoffice_id) VALUES (?, ?, ?)",
                     (key, target, po["id"]))

    def create_list(self, postoffice: str, name: str,
                    options: Mapping[str, Any] | None = None) -> MailList:
        name = check_object_name(name, "name", "list name")
        stored = objects.merge(objects.LIST, {}, _changes(objects.LIST, options))
        with self._store.transaction() as conn:
            po = self._po(conn, postoffice)
            existing = conn.execute("SELECT name FROM mail_list WHERE postoffice_id = ? AND "
                                    "name = ?", (po["id"], name)).fetchone()
            if existing:
                raise DirectoryError("name", f"a list named {existing['name']} already exists "
                                             f"in post office {po['name']}")
            conn.execute("INSERT INTO mail_list (postoffice_id, name, options) VALUES (?, ?, ?)",
                         (po["id"], name, _dumps(stored)))
            self._list_domain(conn, po, name, {}, stored)
            return self._list(self._list_row(conn, po, name), po["name"])

    def get_list(self, postoffice: str, name: str) -> MailList:
        conn = self._conn
        po = self._po(conn, postoffice)
        return self._list(self._list_row(conn, po, name), po["name"])

    def list_lists(self, postoffice: str) -> list[MailList]:
        conn = self._conn
        po = self._po(conn, postoffice)
        rows = conn.execute("SELECT * FROM mail_list WHERE postoffice_id = ? "
                            "ORDER BY name COLLATE NOCASE", (po["id"],)).fetchall()
        return [self._list(r, po["name"]) for r in rows]

    def update_list(self, postoffice: str, name: str, options: Mapping[str, Any]) -> MailList:
        changes = _changes(objects.LIST, options)
        with self._store.transaction() as conn:
            po = self._po(conn, postoffice)
            row = self._list_row(conn, po, name)
            old = _loads(row["options"])
            stored = objects.merge(objects.LIST, old, changes)
            conn.execute("UPDATE mail_list SET options = ? WHERE id = ?",
                         (_dumps(stored), row["id"]))
            self._list_domain(conn, po, row["name"], old, stored)
            return self._list(self._list_row(conn, po, name), po["name"])

    def delete_list(self, postoffice: str, name: str) -> None:
        with self._store.transaction() as conn:
            po = self._po(conn, postoffice)
            row = self._list_row(conn, po, name)
            self._forget_target(conn, ls_address(po["name"], row["name"]))
            conn.execute("DELETE FROM mail_list WHERE id = ?", (row["id"],))

    # == POP retrieval entries (5.5.8) ======================================================

    def _pop_entry(self, row: sqlite3.Row) -> PopRetrieval:
        return PopRetrieval(id=row["id"], postoffice=row["po_name"], mailbox=row["mb_name"],
                            options=objects.effective(objects.POP_RETRIEVAL,
                                                      _loads(row["options"])))

    _POP_SELECT = ("SELECT r.*, m.name AS mb_name, p.name AS po_name FROM pop_retrieval r "
                   "JOIN mailbox m ON m.id = r.mailbox_id "
                   "JOIN postoffice p ON p.id = m.postoffice_id")

    def add_pop_retrieval(self, postoffice: str, mailbox: str, options: Mapping[str, Any],
                          password: str) -> PopRetrieval:
        changes = _changes(objects.POP_RETRIEVAL, options)
        values = objects.effective(objects.POP_RETRIEVAL,
                                   objects.merge(objects.POP_RETRIEVAL, {}, changes))
        for required in ("host", "username"):
            if not values[required]:
                raise DirectoryError(required, "is required for a POP retrieval entry")
        if not isinstance(password, str) or not password:
            raise DirectoryError("password", "is required for a POP retrieval entry")
        if any(ch in password for ch in "\r\n\x00"):
            raise DirectoryError("password", "must not contain line breaks or NUL characters")
        stored = objects.merge(objects.POP_RETRIEVAL, {}, changes)
        with self._store.transaction() as conn:
            po = self._po(conn, postoffice)
            box = self._mailbox_row(conn, po, mailbox)
            cursor = conn.execute("INSERT INTO pop_retrieval (mailbox_id, options) VALUES (?, ?)",
                                  (box["id"], _dumps(stored)))
            entry_id = int(cursor.lastrowid or 0)
            conn.execute("UPDATE pop_retrieval SET password_secret = ? WHERE id = ?",
                         (self._store.secrets.encrypt(password, f"pop_retrieval:{entry_id}"),
                          entry_id))
            return self._pop_entry(conn.execute(self._POP_SELECT + " WHERE r.id = ?",
                                                (entry_id,)).fetchone())

    def list_pop_retrieval(self, postoffice: str, mailbox: str) -> list[PopRetrieval]:
        conn = self._conn
        box = self._mailbox_row(conn, self._po(conn, postoffice), mailbox)
        rows = conn.execute(self._POP_SELECT + " WHERE r.mailbox_id = ? ORDER BY r.id",
                            (box["id"],)).fetchall()
        return [self._pop_entry(r) for r in rows]

    def all_pop_retrieval(self) -> list[PopRetrieval]:
        """Every POP retrieval entry of every mailbox (for the POP retrieval connector)."""
        rows = self._conn.execute(self._POP_SELECT + " ORDER BY r.id").fetchall()
        return [self._pop_entry(r) for r in rows]

    def pop_retrieval_password(self, entry_id: int) -> str:
        """The remote password of an entry (decrypted for the POP retrieval connector)."""
        row = self._conn.execute("SELECT password_secret FROM pop_retrieval WHERE id = ?",
                                 (entry_id,)).fetchone()
        if row is None:
            raise DirectoryError("entry_id", f"no POP retrieval entry {entry_id}")
        return self._store.secrets.decrypt(row["password_secret"], f"pop_retrieval:{entry_id}")

    def delete_pop_retrieval(self, entry_id: int) -> None:
        if isinstance(entry_id, bool) or not isinstance(entry_id, int):
            raise DirectoryError("entry_id", f"expected an entry number, got {entry_id!r}")
        with self._store.transaction() as conn:
            if conn.execute("DELETE FROM pop_retrieval WHERE id = ?", (entry_id,)).rowcount == 0:
                raise DirectoryError("entry_id", f"no POP retrieval entry {entry_id}")
