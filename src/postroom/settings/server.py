"""Server settings: the manual's server-wide options (chapters 5 to 11), stored in the store.

:data:`SERVER` holds every declared option (see :mod:`postroom.settings.catalogue`).
:class:`Settings` is the one place that reads and writes their values: the CLI, the
web admin and the REST API all call :meth:`Settings.set`, which validates, stores the
value as JSON in table ``setting(key, value, changed_at)`` and bumps the meta row
``settings_generation`` in the same transaction. A running service calls
:meth:`Settings.reload_if_changed` (the supervisor does, every few seconds) to see
changes made by another process without a restart; ``get`` itself is a dict lookup
on values cached for the current generation, so it is cheap on hot paths.

Secret options (relay and smart host passwords ...) are stored encrypted under the
server key (``store.secrets``, AES-GCM with the option key as associated data).

Rows are administrator input that may come from an older or newer Postroom: unknown
keys, undecodable JSON and values that no longer validate are ignored on read (the
default applies) rather than stopping a service; a warning is logged once per load.

Known limits: the cache is per :class:`Settings` instance; a change made through
another instance is seen only after ``reload_if_changed``.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from postroom.settings.catalogue import all_options
from postroom.settings.model import Option, OptionError, OptionSet

if TYPE_CHECKING:
    from postroom.store import Store

log = logging.getLogger("postroom.settings")

SERVER = OptionSet("server")
SERVER.extend(all_options())

GENERATION_KEY = "settings_generation"
_SECRET_FIELD = "$secret"


class Settings:
    """Effective server settings of one store: stored overrides over declared defaults."""

    def __init__(self, store: Store, options: OptionSet = SERVER) -> None:
        self._store = store
        self.options = options
        self._lock = threading.Lock()
        self._overrides: dict[str, Any] = {}
        self._values: dict[str, Any] = options.defaults()
        self._generation = -1
        self._data_versions: dict[int, int] = {}
        self._loaded = False

    # -- reading ---------------------------------------------------------------------

    def get(self, key: str) -> Any:
        """The effective value of ``key``; OptionError (with a nearest-key hint) if unknown."""
        if not self._loaded:
            self._load()
        try:
            value = self._values[key]
        except KeyError:
            raise OptionError(key, self.options.unknown_message(key)) from None
        return list(value) if type(value) is list else value   # _copy, inline: hot

    def get_shared(self, key: str) -> Any:
        """:meth:`get` without the copy of a list: the cached object itself, the same
        one until the settings are next loaded, so a caller may key its own derived
        cache on it (compiled IP lists). Callers must not change it."""
        if not self._loaded:
            self._load()
        try:
            return self._values[key]
        except KeyError:
            raise OptionError(key, self.options.unknown_message(key)) from None

    def option(self, key: str) -> Option:
        return self.options.get(key)

    def items(self, prefix: str = "") -> list[tuple[Option, Any, bool]]:
        """(option, value, is_default) for every option under ``prefix`` (all if empty)."""
        if not self._loaded:
            self._load()
        selected = self.options.with_prefix(prefix) if prefix else list(self.options)
        return [(o, _copy(self._values[o.key]), o.key not in self._overrides) for o in selected]

    def changed(self) -> dict[str, Any]:
        """The stored overrides (key -> value), whether or not they equal the default."""
        if not self._loaded:
            self._load()
        return {key: _copy(value) for key, value in sorted(self._overrides.items())}

    def generation(self) -> int:
        """How many changes have ever been made (meta row ``settings_generation``)."""
        return _read_generation(self._store.conn)

    def reload_if_changed(self) -> bool:
        """Re-read the settings if another connection changed them; True if values changed.

        Cheap when nothing happened: ``PRAGMA data_version`` tells whether any other
        connection committed since the last look; only then is the generation read.
        """
        conn = self._store.conn
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if self._loaded and self._data_versions.get(id(conn)) == version:
            return False
        self._data_versions[id(conn)] = version
        if self._loaded and _read_generation(conn) == self._generation:
            return False
        before = dict(self._values)
        self._load()
        return before != self._values

    # -- writing ---------------------------------------------------------------------

    def set(self, key: str, value: Any) -> Any:
        """Validate and store ``value`` for ``key``; returns the stored (canonical) value."""
        option = self.options.get(key)
        value = option.validate(value)
        self._write(option, value)
        return value

    def set_text(self, key: str, text: str) -> Any:
        """Parse command-line text for ``key``, then store it like :meth:`set`."""
        option = self.options.get(key)
        value = option.parse(text)
        self._write(option, value)
        return value

    def reset(self, key: str) -> Any:
        """Remove the override of ``key``; returns the default now in effect."""
        option = self.options.get(key)
        with self._changing() as conn:
            conn.execute("DELETE FROM setting WHERE key = ?", (key,))
        return option.default

    def _write(self, option: Option, value: Any) -> None:
        stored = self._encode(option, value)
        with self._changing() as conn:
            conn.execute(
                "INSERT INTO setting(key, value, changed_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                "changed_at = excluded.changed_at",
                (option.key, stored, time.time()),
            )

    @contextmanager
    def _changing(self) -> Iterator[sqlite3.Connection]:
        """One transaction: the caller's change plus the generation bump; then reload."""
        with self._store.transaction() as conn:
            yield conn
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, '1') ON CONFLICT(key) DO UPDATE "
                "SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
                (GENERATION_KEY,),
            )
        if conn.in_transaction:
            # The outer transaction may still roll back: re-read when needed, and again
            # once it has committed (another thread may have re-read meanwhile, before
            # the change was visible to it).
            self._loaded = False
            self._store.after_commit(self._invalidate)
        else:
            self._load()

    def _invalidate(self) -> None:
        self._loaded = False

    # -- storage format -------------------------------------------------------------

    def _encode(self, option: Option, value: Any) -> str:
        if option.secret and value not in ("", None):
            blob = self._store.secrets.encrypt(json.dumps(value), _secret_context(option.key))
            return json.dumps({_SECRET_FIELD: base64.b64encode(blob).decode("ascii")})
        return json.dumps(value)

    def _decode(self, option: Option, text: str) -> Any:
        value = json.loads(text)
        if isinstance(value, dict) and _SECRET_FIELD in value:
            blob = base64.b64decode(value[_SECRET_FIELD])
            value = json.loads(self._store.secrets.decrypt(blob, _secret_context(option.key)))
        return option.validate(value)

    def _load(self) -> None:
        conn = self._store.conn
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN")  # one consistent snapshot of generation and rows
        try:
            generation = _read_generation(conn)
            rows = conn.execute("SELECT key, value FROM setting").fetchall()
        finally:
            if own:
                conn.execute("COMMIT")
        overrides: dict[str, Any] = {}
        ignored: list[str] = []
        for key, text in rows:
            option = self.options.options.get(key)
            if option is None:
                ignored.append(f"{key} (unknown)")
                continue
            try:
                overrides[key] = self._decode(option, text)
            except (ValueError, TypeError) as exc:  # bad JSON, bad secret, no longer valid
                ignored.append(f"{key} ({exc})")
        if ignored:
            log.warning("ignoring stored settings: %s", "; ".join(ignored))
        values = self.options.defaults()
        values.update(overrides)
        with self._lock:
            self._overrides = overrides
            self._values = values
            self._generation = generation
            self._loaded = True


def _copy(value: Any) -> Any:
    """Lists are handed out as copies so a caller cannot change the cache."""
    return list(value) if isinstance(value, list) else value


def _secret_context(key: str) -> str:
    return f"setting:{key}"


def _read_generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (GENERATION_KEY,)).fetchone()
    try:
        return int(row[0]) if row else 0
    except (TypeError, ValueError):
        return 0
