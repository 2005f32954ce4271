"""Envelope paths: the ``<...>`` of MAIL FROM and RCPT TO (RFC 5321 §4.1.2, RFC 6531 §3.3).

Untrusted input: everything here comes from the SMTP client. The grammar followed::

    Reverse-path = Path / "<>"            Forward-path = Path / "<postmaster>"
    Path         = "<" [ A-d-l ":" ] Mailbox ">"
    A-d-l        = At-domain *( "," At-domain )     ; source route, "@a,@b:"
    Mailbox      = Local-part "@" ( Domain / address-literal )
    Local-part   = Dot-string / Quoted-string

With SMTPUTF8 declared for the transaction (RFC 6531), atoms and quoted strings may
hold UTF-8 characters and domain labels may be U-labels (checked with IDNA 2008);
without it any non-ASCII character is refused with ``reason="utf8"`` so the caller
can answer ``553 5.6.7``. CR, LF, NUL and other controls are refused everywhere.

We parse; we do not judge. Source routes are kept in :attr:`Path.source_route` (RFC
5321 §4.1.1.3 says to ignore them; the relay policy may refuse them instead), and
the percent hack ``user%other@relay`` and bang paths ``host!user@relay`` are
reported by :attr:`Path.has_percent_hack` and :attr:`Path.has_bang_path` so the
relay policy (manual 6.2.3.5) can refuse relaying through them.

Known limits: no local-part length limit is enforced (SRS and VERP addresses exceed
RFC 5321's 64 octets in real mail); the line-length limit bounds the path instead.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import idna

_ATEXT_ASCII = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)
_LDH_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_GENERAL_TAG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f\x80-\x9f]")
"""C0 and C1 controls and DEL: never valid in a command line or an address."""
MAX_DOMAIN_LENGTH = 255


class AddressError(ValueError):
    """A path was refused. ``reason`` is ``"syntax"`` or ``"utf8"`` (non-ASCII
    without SMTPUTF8), so the protocol can pick 501 or 553 5.6.7."""

    def __init__(self, message: str, reason: str = "syntax") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class Path:
    """A parsed envelope path.

    ``local`` is the local part with quoting removed (``"a b"@x`` gives ``a b``);
    ``domain`` is as written (an address literal keeps its brackets); both are empty
    for the null reverse-path ``<>``, and ``domain`` is empty for ``<postmaster>``.
    ``raw`` is the text between the angle brackets.
    """

    local: str
    domain: str
    is_literal: bool = False
    source_route: tuple[str, ...] = ()
    raw: str = ""
    quoted: bool = False

    @property
    def is_null(self) -> bool:
        """The null reverse-path ``<>`` (bounces, RFC 5321 §4.5.5)."""
        return not self.local and not self.domain

    @property
    def is_postmaster(self) -> bool:
        """``<postmaster>`` without a domain (RFC 5321 §4.1.1.3)."""
        return not self.domain and self.local.lower() == "postmaster"

    @property
    def address(self) -> str:
        """``local@domain`` with the local part re-quoted when it needs quotes."""
        if self.is_null:
            return ""
        local = self.local
        if not _is_dot_string(local, utf8=True):
            escaped = local.replace("\\", "\\\\").replace('"', '\\"')
            local = f'"{escaped}"'
        return f"{local}@{self.domain}" if self.domain else local

    @property
    def is_utf8(self) -> bool:
        """True when the address needs SMTPUTF8 to be carried on (RFC 6531)."""
        return not self.address.isascii()

    @property
    def has_percent_hack(self) -> bool:
        """``user%elsewhere@us``: an old way to ask for relaying."""
        return "%" in self.local

    @property
    def has_bang_path(self) -> bool:
        """``host!user@us``: a UUCP-style route, another way to ask for relaying."""
        return "!" in self.local

    @property
    def literal_ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The IP address of an address literal (``[192.0.2.1]``, ``[IPv6:...]``)."""
        if not self.is_literal:
            return None
        inner = self.domain[1:-1]
        if inner.lower().startswith("ipv6:"):
            return ipaddress.IPv6Address(inner[5:])
        try:
            return ipaddress.IPv4Address(inner)
        except ValueError:
            return None


NULL_PATH = Path("", "", raw="")


def split_path(text: str) -> tuple[str, str]:
    """Split ``<path> rest`` into the bracketed path and the rest (parameters).

    Quote-aware: a ``>`` inside a quoted local part does not end the path.
    Raises :class:`AddressError` when the brackets or quotes do not balance.
    """
    if not text.startswith("<"):
        raise AddressError("the address must be enclosed in <>")
    if '"' not in text:
        # No quoted local part (almost every address): the first ">" ends the path,
        # found by ``str.find`` instead of the character loop below.
        close = text.find(">", 1)
        if close < 0:
            if "<" in text[1:]:
                raise AddressError("unexpected '<' inside the address")
            raise AddressError("missing '>' after the address")
        if "<" in text[1:close]:
            raise AddressError("unexpected '<' inside the address")
        return text[: close + 1], text[close + 1 :]
    in_quotes = False
    index = 1
    while index < len(text):
        ch = text[index]
        if in_quotes:
            if ch == "\\":
                index += 2
                continue
            if ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif ch == "<":
            raise AddressError("unexpected '<' inside the address")
        elif ch == ">":
            return text[: index + 1], text[index + 1 :]
        index += 1
    if in_quotes:
        raise AddressError("unbalanced quotes in the address")
    raise AddressError("missing '>' after the address")


def parse_reverse_path(text: str, *, smtputf8: bool = False) -> Path:
    """Parse the MAIL FROM path (``<>`` allowed)."""
    inner = _strip_brackets(text)
    if inner == "":
        return NULL_PATH
    return _parse_path(inner, smtputf8=smtputf8)


def parse_forward_path(text: str, *, smtputf8: bool = False) -> Path:
    """Parse the RCPT TO path (``<postmaster>`` allowed, ``<>`` refused)."""
    inner = _strip_brackets(text)
    if inner == "":
        raise AddressError("the null path <> is not a valid recipient")
    if inner.lower() == "postmaster":
        return Path(inner, "", raw=inner)
    return _parse_path(inner, smtputf8=smtputf8)


def _strip_brackets(text: str) -> str:
    if len(text) < 2 or text[0] != "<" or text[-1] != ">":
        raise AddressError("the address must be enclosed in <>")
    inner = text[1:-1]
    if CONTROL_CHARACTER.search(inner):
        raise AddressError("control characters are not allowed in addresses")
    return inner


def _parse_path(inner: str, *, smtputf8: bool) -> Path:
    if not smtputf8 and not inner.isascii():
        raise AddressError("non-ASCII address without SMTPUTF8", reason="utf8")
    route: tuple[str, ...] = ()
    mailbox = inner
    if inner.startswith("@"):
        colon = _route_end(inner)
        hops = inner[:colon].split(",")
        if any(not hop.startswith("@") for hop in hops):
            raise AddressError("each source-route hop must start with '@'")
        route = tuple(hop[1:] for hop in hops)
        for hop in route:
            _check_domain(hop, smtputf8=smtputf8)
        mailbox = inner[colon + 1 :]
    local, domain, quoted = _split_mailbox(mailbox, smtputf8=smtputf8)
    is_literal = domain.startswith("[")
    if is_literal:
        _check_address_literal(domain)
    else:
        _check_domain(domain, smtputf8=smtputf8)
    return Path(local, domain, is_literal, route, inner, quoted)


def _route_end(inner: str) -> int:
    colon = inner.find(":")
    if colon < 0:
        raise AddressError("source route without ':'")
    return colon


def _split_mailbox(mailbox: str, *, smtputf8: bool) -> tuple[str, str, bool]:
    if mailbox.startswith('"'):
        local, end = _parse_quoted(mailbox, smtputf8=smtputf8)
        rest = mailbox[end:]
        if not rest.startswith("@"):
            raise AddressError("expected '@' after the quoted local part")
        return local, rest[1:], True
    at = mailbox.rfind("@")
    if at <= 0:
        raise AddressError("the address must be local-part@domain")
    local = mailbox[:at]
    if not _is_dot_string(local, utf8=smtputf8):
        raise AddressError(f"invalid local part {local!r}")
    return local, mailbox[at + 1 :], False


def _parse_quoted(text: str, *, smtputf8: bool) -> tuple[str, int]:
    out = []
    index = 1
    while index < len(text):
        ch = text[index]
        if ch == "\\":
            if index + 1 >= len(text):
                break
            escaped = text[index + 1]
            if not (" " <= escaped <= "~"):
                raise AddressError("invalid quoted-pair in local part")
            out.append(escaped)
            index += 2
            continue
        if ch == '"':
            return "".join(out), index + 1
        if not (" " <= ch <= "~" or (smtputf8 and ord(ch) >= 0xA0)):
            raise AddressError("invalid character in quoted local part")
        out.append(ch)
        index += 1
    raise AddressError("unbalanced quotes in the local part")


def _is_dot_string(local: str, *, utf8: bool) -> bool:
    if not local:
        return False
    for atom in local.split("."):
        if not atom:
            return False
        for ch in atom:
            if ch in _ATEXT_ASCII:
                continue
            if utf8 and ord(ch) >= 0xA0:
                continue
            return False
    return True


def _check_domain(domain: str, *, smtputf8: bool) -> None:
    if not domain:
        raise AddressError("missing domain")
    if len(domain.encode("utf-8")) > MAX_DOMAIN_LENGTH:
        raise AddressError("domain longer than 255 octets")
    for label in domain.split("."):
        if label.isascii():
            if not _LDH_LABEL.match(label):
                raise AddressError(f"invalid domain {domain!r}")
            continue
        if not smtputf8:
            raise AddressError("non-ASCII domain without SMTPUTF8", reason="utf8")
        try:
            idna.encode(label, uts46=False)
        except (idna.IDNAError, UnicodeError) as exc:
            raise AddressError(f"invalid internationalised domain label {label!r}") from exc


def _check_address_literal(domain: str) -> None:
    if not domain.endswith("]") or len(domain) < 3:
        raise AddressError("unbalanced brackets in the address literal")
    inner = domain[1:-1]
    if "[" in inner or "]" in inner:
        raise AddressError("unbalanced brackets in the address literal")
    if inner.lower().startswith("ipv6:"):
        try:
            ipaddress.IPv6Address(inner[5:])
        except ValueError as exc:
            raise AddressError(f"invalid IPv6 address literal {domain!r}") from exc
        return
    if ":" in inner:
        tag, _, content = inner.partition(":")
        if not _GENERAL_TAG.match(tag) or not content:
            raise AddressError(f"invalid address literal {domain!r}")
        if any(not ("!" <= ch <= "~") or ch in "[]\\" for ch in content):
            raise AddressError(f"invalid address literal {domain!r}")
        return
    try:
        ipaddress.IPv4Address(inner)
    except ValueError as exc:
        raise AddressError(f"invalid IPv4 address literal {domain!r}") from exc
