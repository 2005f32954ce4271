"""How catalogue modules declare options, and the few kinds that need their own checks.

Each catalogue module lists its options as ``opt(key, kind, default, section,
description, ...)`` calls, one per manual option (the manual section is the second
positional text so a reader can find the dialog). ``manual_id`` defaults to the key:
where Postroom uses a shorter key than the manual inventory (``smtp.port`` for the
manual's ``smtp.inbound.port``) the inventory id is given explicitly, and options that
the manual does not have (``smtp.smtps_port``) pass ``manual_id=""``.

Three kinds go beyond :class:`~postroom.settings.model.Option`'s built-in checks, all
on administrator input that other code will hand to the operating system:

* ``addresses``: listener bind addresses, each a single IPv4 or IPv6 address (no
  ranges, no wildcards: a socket binds to one address);
* ``nameservers``: DNS resolvers as ``IP``, ``IPv4:PORT`` or ``[IPv6]:PORT``;
* ``timezone``: an IANA zone name known to this system's tz database.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from postroom.net.dns import parse_nameserver
from postroom.settings.model import Kind, Option, OptionError


@dataclass(frozen=True)
class AddressListOption(Option):
    """A list of single IP addresses (listener bind addresses)."""

    def validate(self, value: Any) -> Any:
        for item in value if isinstance(value, list) else ():
            if not isinstance(item, str):
                continue
            try:
                ipaddress.ip_address(item)
            except ValueError:
                raise OptionError(self.key, f"not a single IP address: {item!r}") from None
        return super().validate(value)

    def describe_type(self) -> str:
        return "list of IP addresses"


@dataclass(frozen=True)
class NameserverListOption(Option):
    """DNS resolvers, each ``IP``, ``IPv4:PORT`` or ``[IPv6]:PORT``; empty means the system's."""

    def parse(self, raw: str) -> Any:
        # "[::1]:53" starts like a JSON list; only a real JSON list is read as one.
        text = raw.strip()
        if text.startswith("["):
            try:
                json.loads(text)
            except json.JSONDecodeError:
                items = [part.strip() for part in text.replace("\n", ",").split(",")]
                return self.validate([item for item in items if item])
        return super().parse(raw)

    def validate(self, value: Any) -> Any:
        items = super().validate(value)
        for item in items:
            try:
                parse_nameserver(item)
            except ValueError as exc:
                raise OptionError(
                    self.key, f"not a nameserver (IP, IP:PORT or [IPv6]:PORT): {item!r} ({exc})"
                ) from None
        return items

    def describe_type(self) -> str:
        return "list of IP[:PORT]"


@dataclass(frozen=True)
class TimezoneOption(Option):
    """An IANA time zone name such as ``Europe/Paris``."""

    def validate(self, value: Any) -> Any:
        text = super().validate(value)
        try:
            ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError):
            raise OptionError(
                self.key, f"not a known time zone (e.g. Europe/Paris): {text!r}") from None
        return text

    def describe_type(self) -> str:
        return "time zone"


_SPECIAL: dict[str, tuple[type[Option], Kind]] = {
    "addresses": (AddressListOption, "ip_list"),
    "nameservers": (NameserverListOption, "list"),
    "timezone": (TimezoneOption, "str"),
}


def opt(key: str, kind: str, default: Any, section: str, description: str, *,
        choices: tuple[str, ...] = (), minimum: int | None = None,
        maximum: int | None = None, unit: str = "", live: bool = True,
        manual_id: str | None = None, secret: bool = False) -> Option:
    """Declare one option; the default is validated here so a bad catalogue fails at import."""
    cls, real_kind = _SPECIAL.get(kind, (Option, kind))  # type: ignore[arg-type]
    option = cls(
        key=key, kind=real_kind, default=default, description=description, section=section,
        choices=choices, minimum=minimum, maximum=maximum, unit=unit, live=live,
        manual_id=key if manual_id is None else manual_id, secret=secret,
    )
    if kind == "enum" and not choices:
        raise ValueError(f"{key}: an enum needs choices")
    option.validate(default)
    return option
