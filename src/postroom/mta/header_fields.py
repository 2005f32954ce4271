"""A message's header fields as (name, value) pairs, without the email package.

Why: the MTA (``Received`` lines, for loop detection) and the post office connector
(``X-ME-Content``, ``Auto-Submitted``, ``List-*`` ...) look at a few header fields of
every message. Building an :class:`email.message.Message` with the standard
library's parser for that costs more than everything else the MTA does per message;
this scan costs a few microseconds.

Equivalence: :func:`header_fields` returns exactly the fields, in order, that
``email.parser.Parser(policy=compat32).parsestr(text, headersonly=True).items()``
returns (``tests/mta/test_header_fields.py`` compares them on generated garbage):

* lines end at ``\\r\\n``, ``\\r`` or ``\\n``;
* the header section ends before the first line that is neither a field
  (``name:``, name of printable ASCII without ``:``), a continuation (leading space
  or tab) nor a ``From `` line; the empty line is such a line;
* a continuation extends the field before it (one at the very start is dropped); the
  value keeps its inner line breaks, loses the blanks after the colon and the line
  break at its end (compat32);
* ``From `` lines: the first line (mbox envelope) is skipped, one that is the last
  line of the section ends it, others are skipped; a line starting with ``:`` (no
  name) is skipped.

Untrusted input: any text (decode bytes as Latin-1 first: it never fails); nothing
here raises.
"""

from __future__ import annotations

import re

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_FIELD_START = re.compile(r"From |[\041-\071\073-\176]*:|[\t ]")


def header_fields(text: str) -> list[tuple[str, str]]:
    """The header fields of a message (or of its header block) ``text``."""
    lines: list[str] = []
    for line in _LINE.findall(text):
        if not _FIELD_START.match(line):
            break
        lines.append(line)
    fields: list[tuple[str, str]] = []
    name = ""
    parts: list[str] = []
    last = len(lines) - 1
    for number, line in enumerate(lines):
        if line[0] in " \t":
            if name:
                parts.append(line)
            continue
        if name:
            fields.append(_field(name, parts))
            name = ""
        if line.startswith("From "):
            if number == last and number != 0:
                break       # the body's first line, as the standard parser decides
            continue
        colon = line.find(":")
        if colon <= 0:
            continue
        name, parts = line[:colon], [line]
    if name:
        fields.append(_field(name, parts))
    return fields


def _field(name: str, parts: list[str]) -> tuple[str, str]:
    value = parts[0].split(":", 1)[1].lstrip(" \t")
    if len(parts) > 1:
        value += "".join(parts[1:])
    return name, value.rstrip("\r\n")


def header_text(head: bytes) -> str:
    """Header bytes as text: Latin-1 (every byte is a character), NUL as a space."""
    return head.replace(b"\x00", b" ").decode("latin-1")


def count_fields(head: bytes, name: str) -> int:
    """How many fields called ``name`` (any case) the header block ``head`` has."""
    wanted = name.lower()
    return sum(1 for field, _value in header_fields(header_text(head))
               if field.lower() == wanted)
