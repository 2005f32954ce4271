"""The typed option model shared by server settings and per-object options.

Every option the manual describes (server property pages of chapter 6, and the
post office, domain, mailbox, group and list pages of chapter 5) is declared once
as an :class:`Option`: its key, kind, default, limits and the manual section it
comes from. The CLI, the web admin and the REST API all parse and validate
through these declarations, so a value that is refused in one place is refused
everywhere, with the same message naming the field.

Values are kept as JSON-compatible Python values (bool, int, str, list of str).
Text arriving from a command line is turned into such a value by
:meth:`Option.parse`; values arriving already typed (JSON, web forms) go through
:meth:`Option.validate`.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["bool", "int", "str", "text", "enum", "list", "ip_list", "path", "time", "email"]

_TRUE = {"1", "true", "yes", "on", "enabled", "y"}
_FALSE = {"0", "false", "no", "off", "disabled", "n"}


class OptionError(ValueError):
    """A value or key was refused; ``field`` names the option for the message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Option:
    """One setting: what it is, what it accepts, and where the manual describes it.

    ``live`` says whether running services pick a change up without a restart
    (the manual marks a few settings as needing a service restart; listener
    addresses are the usual case).
    """

    key: str
    kind: Kind
    default: Any
    description: str
    section: str = ""
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    unit: str = ""
    live: bool = True
    manual_id: str = ""
    secret: bool = False

    def parse(self, raw: str) -> Any:
        """Turn command-line text into a value of this option's kind, then validate it."""
        text = raw.strip()
        if self.kind == "bool":
            low = text.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise OptionError(self.key, f"expected a boolean (true/false), got {raw!r}")
        if self.kind == "int":
            try:
                number = int(text)
            except ValueError:
                raise OptionError(self.key, f"expected an integer, got {raw!r}") from None
            return self.validate(number)
        if self.kind in ("list", "ip_list"):
            if text.startswith("["):
                try:
                    items = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise OptionError(self.key, f"not a JSON list: {exc}") from None
            else:
                items = [part.strip() for part in text.replace("\n", ",").split(",")]
            return self.validate([item for item in items if item != ""])
        return self.validate(text)

    def validate(self, value: Any) -> Any:
        """Check an already-typed value; return it in canonical form or raise OptionError."""
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise OptionError(self.key, f"expected a boolean, got {value!r}")
            return value
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise OptionError(self.key, f"expected an integer, got {value!r}")
            if self.minimum is not None and value < self.minimum:
                raise OptionError(self.key, f"must be at least {self.minimum}, got {value}")
            if self.maximum is not None and value > self.maximum:
                raise OptionError(self.key, f"must be at most {self.maximum}, got {value}")
            return value
        if self.kind in ("list", "ip_list"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise OptionError(self.key, f"expected a list of strings, got {value!r}")
            if self.kind == "ip_list":
                for item in value:
                    _check_ip_pattern(self.key, item)
            return list(value)
        if not isinstance(value, str):
            raise OptionError(self.key, f"expected text, got {value!r}")
        if self.kind == "enum" and value not in self.choices:
            lowered = {c.lower(): c for c in self.choices}
            if value.lower() in lowered:
                return lowered[value.lower()]
            raise OptionError(self.key, f"must be one of {', '.join(self.choices)}; got {value!r}")
        if self.kind in ("str", "path", "email", "time") and ("\n" in value or "\x00" in value):
            raise OptionError(self.key, "must be a single line")
        if self.kind == "email" and value and ("@" not in value or " " in value):
            raise OptionError(self.key, f"not an email address: {value!r}")
        return value

    def describe_type(self) -> str:
        """A short human description of what the option accepts, for `settings list`."""
        if self.kind == "enum":
            return "one of " + "|".join(self.choices)
        if self.kind == "int":
            bounds = ""
            if self.minimum is not None or self.maximum is not None:
                low = "" if self.minimum is None else str(self.minimum)
                high = "" if self.maximum is None else str(self.maximum)
                bounds = f" {low}..{high}"
            return f"int{bounds}{' ' + self.unit if self.unit else ''}"
        return self.kind


def _check_ip_pattern(key: str, item: str) -> None:
    """Accept an address, a CIDR range, or a dotted wildcard such as ``192.168.*.*``."""
    if "*" in item:
        parts = item.split(".")
        if len(parts) == 4 and all(p == "*" or (p.isdigit() and int(p) < 256) for p in parts):
            return
        raise OptionError(key, f"not an IP address, range or wildcard: {item!r}")
    try:
        ipaddress.ip_network(item, strict=False)
    except ValueError:
        raise OptionError(key, f"not an IP address or range: {item!r}") from None


@dataclass
class OptionSet:
    """A named collection of options: the server settings, or one kind of object."""

    name: str
    options: dict[str, Option] = field(default_factory=dict)

    def add(self, *options: Option) -> None:
        for option in options:
            if option.key in self.options:
                raise ValueError(f"option {option.key} declared twice")
            self.options[option.key] = option

    def extend(self, options: Iterable[Option]) -> None:
        self.add(*options)

    def __iter__(self) -> Iterator[Option]:
        return iter(sorted(self.options.values(), key=lambda o: o.key))

    def __contains__(self, key: object) -> bool:
        return key in self.options

    def __len__(self) -> int:
        return len(self.options)

    def get(self, key: str) -> Option:
        """Return the option or raise OptionError naming the nearest valid key."""
        try:
            return self.options[key]
        except KeyError:
            raise OptionError(key, self.unknown_message(key)) from None

    def unknown_message(self, key: str) -> str:
        near = difflib.get_close_matches(key, self.options.keys(), n=1, cutoff=0.5)
        if not near:
            # A key that is a suffix of a real key (e.g. "port") still deserves a hint.
            tail = [k for k in self.options if k.endswith("." + key) or k.split(".")[-1] == key]
            near = sorted(tail)[:1]
        hint = f"; did you mean {near[0]}?" if near else ""
        return f"unknown {self.name} option{hint}"

    def defaults(self) -> dict[str, Any]:
        return {o.key: o.default for o in self.options.values()}

    def with_prefix(self, prefix: str) -> list[Option]:
        prefix = prefix.rstrip(".")
        return [o for o in self if o.key == prefix or o.key.startswith(prefix + ".")]
