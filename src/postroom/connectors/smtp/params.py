"""MAIL FROM and RCPT TO parameters, and the xtext encoding they use.

Untrusted input from the SMTP client. Sources: RFC 5321 §4.1.2 (``esmtp-param =
esmtp-keyword ["=" esmtp-value]``), RFC 1870 (SIZE), RFC 6152 and RFC 3030 (BODY=
7BIT / 8BITMIME / BINARYMIME), RFC 6531 (SMTPUTF8), RFC 3461 §4 (RET, ENVID, NOTIFY,
ORCPT), RFC 4954 §5 (AUTH=), RFC 3461 §4 (xtext).

A parameter is accepted only when its extension is offered (the caller passes the
offered set); anything else is "not recognized" (555 5.5.4). Values that break
their grammar are 501 5.5.4. Duplicate keywords are refused.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from postroom.connectors.smtp import wire

_KEYWORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_XTEXT_HEX = re.compile(r"\+([0-9A-F]{2})")
MAX_ENVID = 100
"""RFC 3461 §4.4: ENVID is at most 100 characters."""
MAX_ORCPT = 500
"""RFC 3461 §4.2: ORCPT is at most 500 characters."""
_NOTIFY_VALUES = frozenset({"SUCCESS", "FAILURE", "DELAY"})


class ParamError(ValueError):
    """A parameter was refused; ``reply`` is what to answer."""

    def __init__(self, reply: wire.Reply) -> None:
        super().__init__(reply.lines[0])
        self.reply = reply


def split_params(text: str) -> dict[str, str | None]:
    """``KEY=value KEY2 ...`` into a dict with upper-cased keys."""
    params: dict[str, str | None] = {}
    for item in text.split(" "):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not _KEYWORD.match(key) or (sep and not value):
            raise ParamError(wire.PARAM_SYNTAX.with_text(f"Invalid parameter {item!r}"))
        key = key.upper()
        if key in params:
            raise ParamError(wire.PARAM_SYNTAX.with_text(f"Duplicate parameter {key}"))
        if sep and any(ch == "=" or not ("!" <= ch <= "~" or ord(ch) >= 0xA0) for ch in value):
            raise ParamError(wire.PARAM_SYNTAX.with_text(f"Invalid value for {key}"))
        params[key] = value if sep else None
    return params


def xtext_decode(value: str) -> str:
    """Decode RFC 3461 xtext (``+XX`` hex escapes, upper-case hex only)."""
    if "+" in _XTEXT_HEX.sub("", value):
        raise ValueError("invalid xtext escape")

    def unescape(match: re.Match[str]) -> str:
        return chr(int(match.group(1), 16))

    return _XTEXT_HEX.sub(unescape, value)


def xtext_encode(value: str) -> str:
    """Encode a string as RFC 3461 xtext: ``+``, ``=``, controls and space as ``+XX``."""
    out = []
    for ch in value:
        if "!" <= ch <= "~" and ch not in "+=":
            out.append(ch)
        else:
            for byte in ch.encode("utf-8"):
                out.append(f"+{byte:02X}")
    return "".join(out)


def check_mail_params(params: dict[str, str | None], offered: Collection[str]) -> dict[str, object]:
    """Validate MAIL FROM parameters against the offered extensions.

    Returns typed values: ``size`` (int), ``body``, ``smtputf8`` (bool), ``ret``,
    ``envid`` and ``auth``. ``offered`` holds EHLO keywords (``SIZE``, ``8BITMIME``,
    ``BINARYMIME``, ``SMTPUTF8``, ``DSN``, ``AUTH``).
    """
    typed: dict[str, object] = {"smtputf8": False}
    for key, value in params.items():
        if key == "SIZE" and "SIZE" in offered:
            if value is None or not value.isdigit() or not value.isascii() or len(value) > 20:
                raise ParamError(wire.PARAM_SYNTAX.with_text("SIZE needs a number of octets"))
            typed["size"] = int(value)
        elif key == "BODY" and "8BITMIME" in offered:
            body = (value or "").upper()
            allowed = {"7BIT", "8BITMIME"} | ({"BINARYMIME"} if "BINARYMIME" in offered else set())
            if body not in allowed:
                raise ParamError(wire.PARAM_SYNTAX.with_text(f"Unsupported BODY={value}"))
            typed["body"] = body
        elif key == "SMTPUTF8" and "SMTPUTF8" in offered:
            if value is not None:
                raise ParamError(wire.PARAM_SYNTAX.with_text("SMTPUTF8 takes no value"))
            typed["smtputf8"] = True
        elif key == "RET" and "DSN" in offered:
            ret = (value or "").upper()
            if ret not in ("FULL", "HDRS"):
                raise ParamError(wire.PARAM_SYNTAX.with_text("RET must be FULL or HDRS"))
            typed["ret"] = ret
        elif key == "ENVID" and "DSN" in offered:
            typed["envid"] = _xtext_value(key, value, MAX_ENVID)
        elif key == "AUTH" and "AUTH" in offered:
            typed["auth"] = _xtext_value(key, value, 500)
        else:
            raise ParamError(wire.MAIL_PARAMS_UNKNOWN.with_text(f"Parameter {key} not supported"))
    return typed


def check_rcpt_params(params: dict[str, str | None], offered: Collection[str]) -> dict[str, object]:
    """Validate RCPT TO parameters (NOTIFY, ORCPT of RFC 3461 when DSN is offered)."""
    typed: dict[str, object] = {}
    for key, value in params.items():
        if key == "NOTIFY" and "DSN" in offered:
            items = tuple(part.upper() for part in (value or "").split(","))
            flags = set(items)
            if items == ("NEVER",) or (flags <= _NOTIFY_VALUES and len(flags) == len(items)):
                typed["notify"] = items
            else:
                raise ParamError(
                    wire.PARAM_SYNTAX.with_text("NOTIFY must be NEVER or SUCCESS,FAILURE,DELAY")
                )
        elif key == "ORCPT" and "DSN" in offered:
            orcpt = _xtext_value(key, value, MAX_ORCPT)
            addr_type, sep, address = orcpt.partition(";")
            if not sep or not _KEYWORD.match(addr_type) or not address:
                raise ParamError(wire.PARAM_SYNTAX.with_text("ORCPT must be addr-type;address"))
            typed["orcpt"] = orcpt
        else:
            raise ParamError(wire.MAIL_PARAMS_UNKNOWN.with_text(f"Parameter {key} not supported"))
    return typed


def _xtext_value(key: str, value: str | None, limit: int) -> str:
    if value is None or len(value) > limit:
        raise ParamError(wire.PARAM_SYNTAX.with_text(f"{key} needs a value of at most {limit}"))
    try:
        return xtext_decode(value)
    except ValueError as exc:
        raise ParamError(wire.PARAM_SYNTAX.with_text(f"{key} is not valid xtext")) from exc
