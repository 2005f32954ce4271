"""Address and name syntax of the directory: domains, local parts, connector addresses.

Manual 3 (addresses inside the system carry their connector: ``[SMTP:bob@example.com]``,
``[SF:postoffice/mailbox]``, ``[LS:postoffice/list]``), 5.3.2 (post office names are
used after ``@`` in logins), 5.4.1 (domain names), 5.5.3 (mailbox names), 5.6 and 5.7.

Everything here is untrusted input from administrators, CSV files, web forms and, for
:func:`parse_email`, SMTP clients. Each check raises :class:`AddressError` (a
:class:`~postroom.store.directory.DirectoryError`) naming the field.

Rules chosen, and why:

* Domains follow IDNA 2008 with UTS 46 mapping (the ``idna`` package): Unicode input
  such as ``bücher.example`` is stored as ``xn--bcher-kva.example`` in lower case and
  shown in Unicode. STD 3 rules apply, so ``_``, spaces and empty labels are refused;
  labels are at most 63 octets and names at most 253 (RFC 1035 2.3.4).
* Local parts of addresses are RFC 5322 dot-atoms (``atext`` plus non-ASCII letters
  for RFC 6531), at most 64 octets (RFC 5321 4.5.3.1.1). ``*`` alone is the catch-all.
  Quoted local parts are refused: no mailbox could be created for them anyway.
* Mailbox, group and list names become login names (``name@postoffice``), SMTP local
  parts (manual 5.5.4 creates ``name@domain``) and directory names on disk, so they
  are restricted to ASCII letters, digits, ``.``, ``-`` and ``_`` (1-64, no leading,
  trailing or doubled dot). ``+`` is refused: it is kept free for sub-addressing
  (``bob+news@``). Group names may also contain ``@``, because the manual's example
  group name is ``staff@example.com`` (5.6.2).
* Post office names: 1-64 of letters, digits, ``-``, ``_``, ``.``, not starting with
  ``.`` (they are often the customer's domain name, manual 5.3).

Known limits: comparison of local parts is case-insensitive (the store's collation),
which RFC 5321 permits a receiving server to choose.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import idna

from postroom.store.directory import DirectoryError

MAX_LOCAL_PART = 64
MAX_DOMAIN = 253
MAX_NAME = 64
CATCH_ALL_LOCAL = "*"
CONNECTORS = ("SMTP", "SF", "LS")

_ATEXT = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~")
_POSTOFFICE = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,63}$")
_OBJECT = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")
_GROUP = re.compile(r"^[A-Za-z0-9_\-@]+(\.[A-Za-z0-9_\-@]+)*$")
_CONNECTOR = re.compile(r"^\[([A-Za-z]+):(.*)\]$", re.DOTALL)


class AddressError(DirectoryError):
    """An address, domain or name that the directory refuses."""


@dataclass(frozen=True)
class ConnectorAddress:
    """A parsed connector address: ``[SMTP:local@domain]`` or ``[SF:po/name]``."""

    connector: str        # SMTP | SF | LS
    local: str = ""       # SMTP: local part
    domain: str = ""      # SMTP: ASCII domain
    postoffice: str = ""  # SF, LS
    name: str = ""        # SF: mailbox or group; LS: list

    def __str__(self) -> str:
        if self.connector == "SMTP":
            return smtp_address(self.local, self.domain)
        return f"[{self.connector}:{self.postoffice}/{self.name}]"


# --- domains ---------------------------------------------------------------------------

def ascii_domain(text: str, field: str = "domain") -> str:
    """The ASCII (punycode), lower-case form of a domain name, or AddressError."""
    if not isinstance(text, str):
        raise AddressError(field, f"expected a domain name, got {text!r}")
    name = text.strip()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise AddressError(field, "domain name is empty")
    if any(ch.isspace() for ch in name):
        raise AddressError(field, f"domain name contains white space: {text!r}")
    if any(label == "" for label in name.split(".")):
        raise AddressError(field, f"domain name has an empty label: {text!r}")
    try:
        encoded = _idna_ascii(name)
    except (idna.IDNAError, UnicodeError) as exc:
        raise AddressError(field, f"not a valid domain name: {text!r} ({exc})") from None
    if len(encoded) > MAX_DOMAIN:
        raise AddressError(field, f"domain name longer than {MAX_DOMAIN} characters: {text!r}")
    if "." not in encoded:
        raise AddressError(field, f"domain name needs at least two labels: {text!r}")
    if encoded.rsplit(".", 1)[1].isdigit():
        raise AddressError(field, f"domain name has a numeric top-level label: {text!r}")
    return encoded


@functools.lru_cache(maxsize=4096)
def _idna_ascii(name: str) -> str:
    """IDNA 2008 + UTS 46 encoding, memoised: it costs ~10 us and SMTP asks for the same
    few domains on every RCPT (a pure function; errors are raised, never cached)."""
    return idna.encode(name, uts46=True, std3_rules=True).decode("ascii").lower()


@functools.lru_cache(maxsize=4096)
def unicode_domain(domain: str) -> str:
    """The display (Unicode) form of an ASCII domain; unchanged if it does not decode."""
    try:
        return idna.decode(domain)
    except (idna.IDNAError, UnicodeError):
        return domain


# --- local parts and addresses -----------------------------------------------------------

def check_local_part(local: str, field: str = "address", *, allow_catch_all: bool = False) -> str:
    """Validate an unquoted local part (RFC 5322 dot-atom, RFC 6531 UTF-8); return it."""
    if local == CATCH_ALL_LOCAL:
        if allow_catch_all:
            return local
        raise AddressError(field, "'*' alone stands for a catch-all and is not an address")
    if not local:
        raise AddressError(field, "the part before @ is empty")
    if len(local.encode("utf-8")) > MAX_LOCAL_PART:
        raise AddressError(field, f"the part before @ is longer than {MAX_LOCAL_PART} octets")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise AddressError(field, f"misplaced dot in {local!r}")
    for ch in local:
        if ch == "." or ch in _ATEXT or (ord(ch) > 127 and ch.isprintable() and not ch.isspace()):
            continue
        raise AddressError(field, f"character {ch!r} is not allowed before @ in {local!r}")
    return local


def parse_email(text: str, field: str = "address", *,
                allow_catch_all: bool = False) -> tuple[str, str]:
    """``local@domain`` -> (local, ASCII domain); AddressError naming ``field``."""
    if not isinstance(text, str):
        raise AddressError(field, f"expected an email address, got {text!r}")
    raw = text.strip()
    local, at, domain = raw.rpartition("@")
    if not at:
        raise AddressError(field, f"not an email address (no @): {text!r}")
    if any(ch.isspace() for ch in raw):
        raise AddressError(field, f"email address contains white space: {text!r}")
    check_local_part(local, field, allow_catch_all=allow_catch_all)
    return local, ascii_domain(domain, field)


def smtp_address(local: str, domain: str) -> str:
    return f"[SMTP:{local}@{domain}]"


def sf_address(postoffice: str, name: str) -> str:
    return f"[SF:{postoffice}/{name}]"


def ls_address(postoffice: str, name: str) -> str:
    return f"[LS:{postoffice}/{name}]"


def parse_connector(text: str, field: str = "address", *,
                    allow_catch_all: bool = False) -> ConnectorAddress:
    """Parse ``[SMTP:a@b]``, ``[SF:po/name]``, ``[LS:po/list]`` or a plain ``a@b``.

    A plain address is taken as SMTP. Domains come back in ASCII form; the connector
    name in upper case.
    """
    if not isinstance(text, str):
        raise AddressError(field, f"expected an address, got {text!r}")
    raw = text.strip()
    match = _CONNECTOR.match(raw)
    if not match:
        if raw.startswith("[") or raw.endswith("]"):
            raise AddressError(field, f"not a connector address such as [SMTP:a@b]: {text!r}")
        local, domain = parse_email(raw, field, allow_catch_all=allow_catch_all)
        return ConnectorAddress("SMTP", local=local, domain=domain)
    connector, value = match.group(1).upper(), match.group(2)
    if connector == "SMTP":
        local, domain = parse_email(value, field, allow_catch_all=allow_catch_all)
        return ConnectorAddress("SMTP", local=local, domain=domain)
    if connector in ("SF", "LS"):
        postoffice, slash, name = value.partition("/")
        if not slash or not postoffice or not name:
            raise AddressError(field, f"expected [{connector}:postoffice/name], got {text!r}")
        check_postoffice_name(postoffice, field)
        if connector == "SF":
            check_group_name(name, field)  # the wider of the mailbox and group rules
        else:
            check_object_name(name, field)
        return ConnectorAddress(connector, postoffice=postoffice, name=name)
    raise AddressError(field, f"unknown connector {connector!r} (expected one of "
                              f"{', '.join(CONNECTORS)}): {text!r}")


def normalise_smtp(text: str, field: str = "address", *, allow_catch_all: bool = False) -> str:
    """A plain or connector SMTP address as ``[SMTP:local@ascii-domain]``."""
    parsed = parse_connector(text, field, allow_catch_all=allow_catch_all)
    if parsed.connector != "SMTP":
        raise AddressError(field, f"expected an SMTP address, got {text!r}")
    return str(parsed)


def display_address(connector_address: str) -> str:
    """``[SMTP:bob@xn--bcher-kva.example]`` -> ``bob@bücher.example`` for people."""
    try:
        parsed = parse_connector(connector_address, allow_catch_all=True)
    except AddressError:
        return connector_address
    if parsed.connector == "SMTP":
        return f"{parsed.local}@{unicode_domain(parsed.domain)}"
    return str(parsed)


# --- object names ----------------------------------------------------------------------

def check_postoffice_name(name: str, field: str = "postoffice") -> str:
    if not isinstance(name, str) or not name:
        raise AddressError(field, "post office name is empty")
    if len(name) > MAX_NAME:
        raise AddressError(field, f"post office name longer than {MAX_NAME} characters")
    if not _POSTOFFICE.match(name):
        raise AddressError(field, f"post office name {name!r} may only contain letters, "
                                  "digits, '-', '_' and '.', and must not start with '.'")
    return name


def check_object_name(name: str, field: str = "name", what: str = "name") -> str:
    """A mailbox or list name (also the local part of its default address)."""
    if not isinstance(name, str) or not name:
        raise AddressError(field, f"{what} is empty")
    if len(name) > MAX_NAME:
        raise AddressError(field, f"{what} longer than {MAX_NAME} characters")
    if not _OBJECT.match(name):
        raise AddressError(field, f"{what} {name!r} may only contain letters, digits, '.', "
                                  "'-' and '_' (no leading, trailing or doubled dot)")
    return name


def check_group_name(name: str, field: str = "name") -> str:
    """A group name: like a mailbox name, but ``@`` is allowed (``staff@example.com``)."""
    if not isinstance(name, str) or not name:
        raise AddressError(field, "group name is empty")
    if len(name) > MAX_NAME:
        raise AddressError(field, f"group name longer than {MAX_NAME} characters")
    if not _GROUP.match(name):
        raise AddressError(field, f"group name {name!r} may only contain letters, digits, "
                                  "'.', '-', '_' and '@' (no leading, trailing or doubled dot)")
    return name
