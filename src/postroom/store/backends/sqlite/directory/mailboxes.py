"""Mailboxes (manual 5.5): creation with quota and addresses, passwords, and logins.

Manual 5.2.3 (new mailbox size limit; one address per domain for every new mailbox),
5.2.4 (encrypt passwords), 5.3.7.9 (the post office's default message), 5.5.3 (type,
quota). Names and passwords are untrusted: the name is checked by
:mod:`postroom.store.addresses`, the password by the password policy before it is
hashed, and nothing is written until every check passed.

Settings read: ``messaging_manager.security.encrypt_passwords``,
``messaging_manager.administration.new_mailbox_size_limit`` (+ ``_enabled``),
``messaging_manager.administration.auto_create_address_per_domain``, and the password
policy (``localhost.policies.*``).

Decisions:

* A new mailbox gets ``name@domain`` for every domain of its post office (5.2.3, when
  ``auto_create_address_per_domain`` is on); an address already mapped elsewhere is
  skipped, not an error.
* The quota of a new mailbox is the post office's ``default_quota_mb``, else the
  server's new mailbox size limit when that is enabled, else unlimited.
* The mailbox type (USER, ADMIN, SYSADMIN) is the ``type`` column.
* A recoverable copy of the password (for CRAM-MD5 and APOP) is kept, encrypted and
  bound to the row, only while ``encrypt_passwords`` is on.
* The hidden public folder mailbox (:mod:`.public_root`) is never listed; a deleted
  mailbox's name leaves every ACL of its post office, so a new mailbox of that name
  does not inherit its rights.
* Logins: ``mailbox@postoffice`` first, then any SMTP address mapped exactly (not a
  catch-all) to a mailbox. Unknown logins still pay for one hash verification, so
  response time does not reveal which mailboxes exist.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Mapping
from functools import cache
from typing import Any

from postroom.auth.passwords import hash_password, needs_rehash, verify_password
from postroom.auth.policy import PasswordPolicy
from postroom.settings import objects
from postroom.store.addresses import (
    check_object_name,
    normalise_smtp,
    parse_connector,
    sf_address,
    smtp_address,
)
from postroom.store.backends.sqlite.acl import forget_identifier
from postroom.store.backends.sqlite.directory.address_map import forget_target
from postroom.store.backends.sqlite.directory.options import load_json, option_changes
from postroom.store.backends.sqlite.directory.rows import (
    MB,
    UNSET,
    DirectoryRows,
    mailbox_row,
    postoffice_row,
    sf_name_taken,
)
from postroom.store.directory import (
    DEFAULT_MAILBOX_TYPE,
    MAILBOX_TYPES,
    PUBLIC_ROOT,
    DirectoryError,
    Mailbox,
)
from postroom.store.secrets import SecretError

log = logging.getLogger("postroom.directory")

_LOGIN_SELECT = ("SELECT m.*, p.name AS po_name FROM mailbox m JOIN postoffice p "
                 "ON p.id = m.postoffice_id WHERE p.name = ? AND m.name = ?")


@cache
def _dummy_hash() -> str:
    return hash_password("postroom-no-such-mailbox")


def _check_quota(quota_bytes: Any) -> int | None:
    if quota_bytes is None:
        return None
    if isinstance(quota_bytes, bool) or not isinstance(quota_bytes, int):
        raise DirectoryError("quota", f"expected a number of bytes, got {quota_bytes!r}")
    if quota_bytes < 0:
        raise DirectoryError("quota", f"must not be negative, got {quota_bytes}")
    return quota_bytes


def _check_type(type: Any) -> str:
    text = type.upper() if isinstance(type, str) else type
    if text not in MAILBOX_TYPES:
        raise DirectoryError("type", f"must be one of {', '.join(MAILBOX_TYPES)}; "
                                     f"got {type!r}")
    return text


class Mailboxes(DirectoryRows):
    def _default_quota(self, po: sqlite3.Row) -> int | None:
        stored = load_json(po["options"])
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
                       quota_bytes: int | None = UNSET, type: str = DEFAULT_MAILBOX_TYPE,
                       options: Mapping[str, Any] | None = None) -> Mailbox:
        name = check_object_name(name, "name", "mailbox name")
        box_type = _check_type(type)
        quota = UNSET if quota_bytes is UNSET else _check_quota(quota_bytes)
        changes = option_changes(objects.MAILBOX, options)
        postoffice_row(self._conn, postoffice)    # unknown post office before the policy
        if not isinstance(password, str):
            raise DirectoryError("password", "expected text")
        PasswordPolicy.from_settings(self._store.settings).check(password, name)
        password_hash = hash_password(password)
        stored = objects.merge(objects.MAILBOX, {}, changes)
        auto = self._store.settings.get(
            "messaging_manager.administration.auto_create_address_per_domain")
        with self._store.transaction() as conn:
            po = postoffice_row(conn, postoffice)
            taken = sf_name_taken(conn, po["id"], name)
            if taken:
                raise DirectoryError("name", f"a {taken} named {name} already exists in post "
                                             f"office {po['name']}")
            if quota is UNSET:
                quota = self._default_quota(po)
            cursor = conn.execute(
                "INSERT INTO mailbox (postoffice_id, name, type, password_hash, quota_bytes, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (po["id"], name, box_type, password_hash, quota, time.time()))
            box_id = int(cursor.lastrowid or 0)
            self._write_options(conn, "mailbox", box_id, stored)
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
            box = self._mailbox(mailbox_row(conn, po, name), po["name"])
        self._place_default_message(po, box)
        return box

    def _place_default_message(self, po: sqlite3.Row, box: Mailbox) -> None:
        """Manual 5.3.7.9: the post office's default message goes into each new mailbox."""
        text = load_json(po["options"]).get("default_message") or ""
        if not text:
            return
        data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
        try:
            self._store.messages.append(box.postoffice, box.name, "Inbox", data)
        except (OSError, ValueError) as exc:
            log.warning("default message not placed in %s: %s", box.login, exc)

    def get_mailbox(self, postoffice: str, name: str) -> Mailbox:
        conn = self._conn
        po = postoffice_row(conn, postoffice)
        return self._mailbox(mailbox_row(conn, po, name), po["name"])

    def list_mailboxes(self, postoffice: str) -> list[Mailbox]:
        conn = self._conn
        po = postoffice_row(conn, postoffice)
        rows = conn.execute("SELECT * FROM mailbox WHERE postoffice_id = ? AND name != ? "
                            "ORDER BY name COLLATE NOCASE", (po["id"], PUBLIC_ROOT)).fetchall()
        return [self._mailbox(r, po["name"]) for r in rows]

    def update_mailbox(self, postoffice: str, name: str, *,
                       options: Mapping[str, Any] | None = None,
                       quota_bytes: int | None = UNSET, type: str | None = None) -> Mailbox:
        changes = option_changes(objects.MAILBOX, options)
        quota = UNSET if quota_bytes is UNSET else _check_quota(quota_bytes)
        box_type = None if type is None else _check_type(type)
        with self._store.transaction() as conn:
            po = postoffice_row(conn, postoffice)
            row = mailbox_row(conn, po, name)
            stored = objects.merge(objects.MAILBOX, self._stored_options("mailbox", row),
                                   changes)
            self._write_options(conn, "mailbox", row["id"], stored)
            if box_type is not None:
                conn.execute("UPDATE mailbox SET type = ? WHERE id = ?", (box_type, row["id"]))
            if quota is not UNSET:
                conn.execute("UPDATE mailbox SET quota_bytes = ? WHERE id = ?",
                             (quota, row["id"]))
            return self._mailbox(mailbox_row(conn, po, name), po["name"])

    def set_password(self, postoffice: str, name: str, password: str) -> None:
        box = self.get_mailbox(postoffice, name)
        if not isinstance(password, str):
            raise DirectoryError("password", "expected text")
        PasswordPolicy.from_settings(self._store.settings).check(password, box.name)
        password_hash = hash_password(password)
        secret = self._password_secret(box.id, password)
        with self._store.transaction() as conn:
            row = mailbox_row(conn, postoffice_row(conn, postoffice), name)
            conn.execute("UPDATE mailbox SET password_hash = ?, password_secret = ? WHERE id = ?",
                         (password_hash, secret, row["id"]))

    def delete_mailbox(self, postoffice: str, name: str) -> None:
        with self._store.transaction() as conn:
            po = postoffice_row(conn, postoffice)
            row = mailbox_row(conn, po, name)
            forget_target(conn, sf_address(po["name"], row["name"]))
            forget_identifier(conn, po["id"], row["name"])
            conn.execute("DELETE FROM mailbox WHERE id = ?", (row["id"],))
        self._remove_files(po["name"], row["name"])

    # -- logins --------------------------------------------------------------------------

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
            row = conn.execute(_LOGIN_SELECT, (after, local)).fetchone()
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
            row = conn.execute(_LOGIN_SELECT, (target.postoffice, target.name)).fetchone()
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
                or load_json(row["po_options"]).get("disabled")):
            return None
        if needs_rehash(row["password_hash"]):
            with self._store.transaction() as conn:
                conn.execute("UPDATE mailbox SET password_hash = ? WHERE id = ?",
                             (hash_password(password), box.id))
        return box

    def recoverable_secret(self, postoffice: str, name: str) -> str | None:
        conn = self._conn
        row = mailbox_row(conn, postoffice_row(conn, postoffice), name)
        if row["password_secret"] is None:
            return None
        try:
            return self._store.secrets.decrypt(row["password_secret"], f"mailbox:{row['id']}")
        except SecretError as exc:
            log.warning("password of mailbox %s@%s cannot be recovered: %s",
                        name, postoffice, exc)
            return None
