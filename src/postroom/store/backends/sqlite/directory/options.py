"""Per-object option documents: validated changes in, JSON with sealed secrets out.

Manual 5.3-5.7 and 5.5.8: every directory object carries an option set declared in
:mod:`postroom.settings.objects`. A row keeps only the values that differ from their
defaults, as one JSON document (columns exist only for what is queried, joined or
updated under concurrency), so a later change of a default reaches every object that
never set the option.

Options marked ``secret`` (a domain's ``dkim.private_key``, a list's
``posting_password``) never reach the document in plain text: they are sealed with
the server key (``store.secrets``, AES-GCM) as ``{"$secret": "<base64>"}``, with
``KIND:ROW_ID:KEY`` as associated data, so a sealed value copied to another row or
another key does not open. One codec for every kind rather than a column per secret:
the option sets grow with the manual, and a secret option added later is covered
without a migration.

A sealed value that does not open (another server key, a document edited by hand) is
logged and treated as unset in records, but kept as it is when other options of the
row change, so an unrelated change does not destroy it.

Untrusted input: option values (CLI, CSV, web admin) are checked by the option set
before anything is written; the stored document itself is trusted only as far as
being JSON (an unreadable document reads as "all defaults").
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from typing import Any

from postroom.settings import objects
from postroom.settings.model import OptionError, OptionSet
from postroom.store.directory import DirectoryError
from postroom.store.secrets import SecretBox, SecretError

log = logging.getLogger("postroom.directory")

SECRET_FIELD = "$secret"


def load_json(text: str) -> dict[str, Any]:
    """A stored options document as a dict (sealed secrets stay sealed)."""
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def dump_json(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), sort_keys=True, ensure_ascii=False)


def option_changes(option_set: OptionSet, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validated option changes; OptionError becomes DirectoryError naming the key."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise DirectoryError("options", f"expected a mapping of option values, got {options!r}")
    try:
        return objects.validate_changes(option_set, options)
    except OptionError as exc:
        raise DirectoryError(exc.field, exc.message) from None


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {SECRET_FIELD}


def _context(kind: str, row_id: int, key: str) -> str:
    return f"{kind}:{row_id}:{key}"


def seal(secrets: SecretBox, kind: str, row_id: int, values: Mapping[str, Any]) -> str:
    """The JSON document to store for ``values`` (plain), secret options sealed."""
    option_set = objects.ALL[kind]
    document: dict[str, Any] = {}
    for key, value in values.items():
        if (key in option_set and option_set.get(key).secret
                and value not in ("", None) and not is_sealed(value)):
            blob = secrets.encrypt(json.dumps(value), _context(kind, row_id, key))
            value = {SECRET_FIELD: base64.b64encode(blob).decode("ascii")}
        document[key] = value
    return dump_json(document)


def unseal(secrets: SecretBox, kind: str, row_id: int, text: str) -> dict[str, Any]:
    """The stored values of a row in plain text; a seal that does not open stays sealed."""
    values: dict[str, Any] = {}
    for key, value in load_json(text).items():
        if is_sealed(value):
            try:
                blob = base64.b64decode(value[SECRET_FIELD], validate=True)
                value = json.loads(secrets.decrypt(blob, _context(kind, row_id, key)))
            except (SecretError, ValueError, TypeError) as exc:
                log.warning("option %s of %s %d cannot be decrypted: %s", key, kind, row_id, exc)
        values[key] = value
    return values


def effective(kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults with the stored values over them; secrets that did not open are unset."""
    return objects.effective(objects.ALL[kind],
                             {k: v for k, v in values.items() if not is_sealed(v)})
