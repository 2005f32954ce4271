"""The IMAP view of one stored message: ENVELOPE, BODYSTRUCTURE, sections, BINARY.

Issue 8 asks for the MIME structure of a message to be parsed once and cached, not per
FETCH. :meth:`MessageView.parse` reads the raw ``.eml`` bytes once into a tree of byte
ranges; every FETCH item is then a slice or a short walk of that tree. The server keeps
views in an LRU keyed by message path.

Standards: RFC 3501 §6.4.5 (section specs and part numbering), §7.4.2 (ENVELOPE,
BODY, BODYSTRUCTURE), RFC 9051 §7.5.2 (the same for IMAP4rev2), RFC 3516 (BINARY),
RFC 2045/2046 (MIME headers, multipart delimiters), RFC 5322 (header fields, address
lists), RFC 2047 (encoded words, decoded only for SEARCH and SORT).

Why our own byte-range parser and not :mod:`email`: BODY[1.2] and partial fetches must
return the exact octets of the original, and :mod:`email` rebuilds parts instead of
remembering where they were; it is also several times slower (issue 8 wants parsing plus
BODYSTRUCTURE well under a millisecond for a 5 KB message).

Untrusted input: the whole message. Parsing never raises: no headers, NUL bytes, bare
LF, a multipart with no boundary or no delimiter, truncated parts, nesting bombs
(depth capped at :data:`MAX_DEPTH`, parts at :data:`MAX_PARTS`; what lies beyond
stays inside its parent's body) all give some structure. Work is linear in the
message size (a 2 MB folded header or 300,000 empty parts: about 0.3 s). Bare LF line
ends become CRLF once, so :attr:`MessageView.size` is the RFC822.SIZE clients see.

Known limits: header text in ENVELOPE and BODYSTRUCTURE is sent raw (as RFC 3501
intends: clients decode RFC 2047 and RFC 2231 themselves); 8-bit header bytes are read
as UTF-8 (invalid sequences become U+FFFD), so the server must encode response
strings as UTF-8 (literal lengths from :func:`quote` count UTF-8 octets). Partial
fetches (``<origin.count>``) are a slice the server takes of :meth:`section`.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import re
from dataclasses import dataclass, field
from datetime import UTC
from datetime import date as Date

MAX_DEPTH = 32          # nesting of multipart / message/rfc822 we descend into
MAX_PARTS = 2000        # parts per message; more are left inside their parent's body
SEARCH_TEXT_LIMIT = 4 * 1024 * 1024   # characters of decoded text kept for SEARCH

_QUOTABLE = re.compile(r'[^\x00-\x1f\x7f-\U0010ffff]*\Z')
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(=\?[^?\s]+\?[QqBb]\?[^?\s]*\?=)\s+(?==\?)")
_FOLD = re.compile(r"\r?\n(?=[ \t])")


# --- IMAP string helpers ----------------------------------------------------------


def quote(s: str) -> str:
    """A quoted string when possible, else a literal ``{n}\\r\\n...`` (n = UTF-8 octets).

    Quoted strings cannot carry CR, LF, NUL or other controls; non-ASCII text goes as
    a literal too, which every client accepts whether or not it enabled UTF8=ACCEPT.
    """
    if s.isascii() and _QUOTABLE.match(s):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{{{len(s.encode('utf-8'))}}}\r\n{s}"


def nstring(s: str | None) -> str:
    """``NIL`` for None, else :func:`quote`."""
    return "NIL" if s is None else quote(s)


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded words (lenient: unknown charsets and bad base64 pass)."""
    if "=?" not in text:
        return text
    text = _BETWEEN_WORDS.sub(r"\1", text)

    def one(m: re.Match[str]) -> str:
        charset, enc, payload = m.group(1).split("*", 1)[0], m.group(2), m.group(3)
        try:
            if enc in "Bb":
                raw = base64.b64decode(payload + "=" * (-len(payload) % 4))
            else:
                raw = binascii.a2b_qp(payload.replace("_", " ").encode("ascii"), header=True)
            return raw.decode(charset, errors="replace")
        except (LookupError, ValueError, binascii.Error):
            return m.group(0)

    return _ENCODED_WORD.sub(one, text)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


# --- header fields ------------------------------------------------------------------


@dataclass(slots=True)
class Header:
    """A header block: fields in order as (lower-case name, raw value with folding)."""

    fields: list[tuple[str, bytes]]
    # byte offsets of each field's first and past-last octet (for HEADER.FIELDS)
    spans: list[tuple[int, int]]

    def get(self, name: str) -> str | None:
        """The first field of that name, unfolded, raw (not RFC 2047 decoded)."""
        for n, v in self.fields:
            if n == name:
                return _FOLD.sub("", _text(v)).strip()
        return None

    def get_all(self, name: str) -> list[str]:
        return [_FOLD.sub("", _text(v)).strip() for n, v in self.fields if n == name]


def _parse_header(data: bytes, start: int, end: int) -> tuple[Header, int]:
    """Read header fields from ``start``; return them and where the body begins.

    The header ends at an empty line (consumed) or at the first line that is neither
    a field nor a continuation (then not consumed: a message with no headers).
    Linear in the header size, however many continuation lines a field has.
    """
    names: list[str] = []
    value_starts: list[int] = []
    spans: list[tuple[int, int]] = []
    pos = start
    body = end
    while pos < end:
        eol = data.find(b"\r\n", pos, end)
        next_pos = end if eol < 0 else eol + 2
        if eol == pos:                       # the empty line
            body = next_pos
            break
        if data[pos] in (0x20, 0x09) and spans:     # continuation line
            spans[-1] = (spans[-1][0], next_pos)
            pos = next_pos
            continue
        colon = data.find(b":", pos, end if eol < 0 else eol)
        m = _FIELD_NAME.match(data, pos, colon) if colon > pos else None
        if m is None or m.end() != colon:
            # Tolerate "Name :" (WSP before the colon, RFC 822 obsolete syntax).
            stripped = data[pos:colon].rstrip(b" \t") if colon > pos else b""
            if not stripped or not _FIELD_NAME.fullmatch(stripped):
                body = pos
                break
        names.append(data[pos:colon].rstrip(b" \t").decode("ascii", "replace").lower())
        value_starts.append(colon + 1)
        spans.append((pos, next_pos))
        pos = next_pos
    fields = []
    for name, vstart, (_, vend) in zip(names, value_starts, spans, strict=True):
        if data.endswith(b"\r\n", vstart, vend):
            vend -= 2
        fields.append((name, data[vstart:vend]))
    return Header(fields, spans), body


# --- Content-Type style values (RFC 2045 §5.1) -------------------------------------

_TSPECIALS = set('()<>@,;:\\"/[]?=')


def _split_params(value: str) -> tuple[str, list[tuple[str, str]]]:
    """``type/subtype; a=b; c="d"`` into the first token and raw (name, value) pairs."""
    main, params, i, n = [], [], 0, len(value)
    # main value up to the first ';' (comments removed)
    depth = 0
    while i < n and (value[i] != ";" or depth):
        c = value[i]
        if c == "(":
            depth += 1
        elif c == ")" and depth:
            depth -= 1
        elif not depth:
            main.append(c)
        i += 1
    while i < n:
        i += 1   # skip ';'
        while i < n and value[i] in " \t":
            i += 1
        j = i
        while j < n and value[j] not in "=;":
            j += 1
        name = value[i:j].strip()
        i = j
        if i >= n or value[i] == ";":
            continue
        i += 1
        while i < n and value[i] in " \t":
            i += 1
        if i < n and value[i] == '"':
            i += 1
            buf = []
            while i < n and value[i] != '"':
                if value[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(value[i])
                i += 1
            i += 1
            val = "".join(buf)
            while i < n and value[i] != ";":
                i += 1
        else:
            j = i
            while j < n and value[j] != ";":
                j += 1
            val = re.sub(r"\([^()]*\)", "", value[i:j]).strip()
            i = j
        if name and not (set(name) & _TSPECIALS - {"*"}) and " " not in name:
            params.append((name, val))
    return "".join(main).strip(), params


# --- addresses (RFC 5322 §3.4, obsolete forms tolerated) ---------------------------


@dataclass(frozen=True, slots=True)
class Address:
    """One ENVELOPE address: name, source route, local part, host (None = group mark)."""

    name: str | None
    adl: str | None
    mailbox: str | None
    host: str | None

    def imap(self) -> str:
        return (f"({nstring(self.name)} {nstring(self.adl)} {nstring(self.mailbox)}"
                f" {nstring(self.host)})")


_ADDR_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"?|\[[^\]]*\]?|[<>@,;:.]|[^\s<>@,;:."\[\]()]+|\s+|[^()]', re.DOTALL)


def _tokens(value: str) -> list[tuple[str, str]]:
    """Tokens as (kind, text): q quoted, c comment, s special, a atom; spaces marked."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c == "(":
            depth, j, buf = 1, i + 1, []
            while j < n and depth:
                if value[j] == "\\" and j + 1 < n:
                    buf.append(value[j + 1])
                    j += 2
                    continue
                depth += value[j] == "("
                depth -= value[j] == ")"
                if depth:
                    buf.append(value[j])
                j += 1
            out.append(("c", "".join(buf)))
            i = j
            continue
        if c == ")":
            i += 1
            continue
        m = _ADDR_TOKEN.match(value, i)
        assert m is not None  # the last branch matches any character but "(" and ")"
        t = m.group(0)
        i = m.end()
        if t[0] == '"':
            out.append(("q", re.sub(r"\\(.)", r"\1", t[1:-1] if t.endswith('"') and len(t) > 1
                                    else t[1:])))
        elif t.isspace():
            out.append(("w", " "))
        elif t in "<>@,;:." and len(t) == 1:
            out.append(("s", t))
        else:
            out.append(("a", t))
    return out


def _phrase(tokens: list[tuple[str, str]]) -> str | None:
    words: list[str] = []
    for kind, text in tokens:
        if kind in "qa" or (kind == "s" and text == "."):
            words.append(text)
        elif kind == "w" and words and words[-1] != " ":
            words.append(" ")
    s = "".join(words).strip()
    return s or None


def _addr_spec(tokens: list[tuple[str, str]]) -> tuple[str | None, str | None, str | None]:
    """(adl, mailbox, host) from the tokens of an addr-spec or angle-addr inside."""
    adl = None
    colon = next((k for k, t in enumerate(tokens) if t == ("s", ":")), -1)
    if colon >= 0 and any(t == ("s", "@") for t in tokens[:colon]):
        adl = "".join(t for kind, t in tokens[:colon] if kind not in "wc") or None
        tokens = tokens[colon + 1:]
    at = max((k for k, t in enumerate(tokens) if t == ("s", "@")), default=-1)
    local = tokens if at < 0 else tokens[:at]
    mailbox = "".join(t for kind, t in local if kind in "qas") or None
    if at < 0:
        return adl, mailbox, None
    host = "".join(t for kind, t in tokens[at + 1:] if kind in "as") or None
    return adl, mailbox, host


def _mailbox(tokens: list[tuple[str, str]]) -> Address | None:
    if not any(kind != "w" for kind, _ in tokens):
        return None
    lt = next((k for k, t in enumerate(tokens) if t == ("s", "<")), -1)
    if lt >= 0:
        gt = next((k for k, t in enumerate(tokens) if t == ("s", ">") and k > lt), len(tokens))
        name = _phrase(tokens[:lt])
        adl, mailbox, host = _addr_spec(tokens[lt + 1:gt])
        if name is None:
            comments = [t for kind, t in tokens if kind == "c" and t.strip()]
            name = comments[0].strip() if comments else None
    else:
        adl, mailbox, host = _addr_spec(tokens)
        comments = [t for kind, t in tokens if kind == "c" and t.strip()]
        name = comments[-1].strip() if comments else None
    if mailbox is None and host is None:
        return None
    # An address without a domain is not a group mark: send an empty host, not NIL.
    return Address(name, adl, mailbox or "", host if host is not None else "")


def parse_addresses(value: str) -> list[Address]:
    """An address list, with RFC 3501 group marks: (NIL NIL group NIL) ... (NIL NIL NIL NIL)."""
    tokens = _tokens(value)
    out: list[Address] = []
    current: list[tuple[str, str]] = []
    in_group = angle = False
    for kind, text in tokens:
        if kind == "s" and text == "<":
            angle = True
        elif kind == "s" and text == ">":
            angle = False
        if kind == "s" and not angle:
            if text == ":" and not in_group and not any(t == ("s", "@") for t in current):
                out.append(Address(None, None, _phrase(current) or "", None))
                in_group, current = True, []
                continue
            if text == ",":
                a = _mailbox(current)
                if a:
                    out.append(a)
                current = []
                continue
            if text == ";" and in_group:
                a = _mailbox(current)
                if a:
                    out.append(a)
                out.append(Address(None, None, None, None))
                in_group, current = False, []
                continue
        current.append((kind, text))
    a = _mailbox(current)
    if a:
        out.append(a)
    if in_group:
        out.append(Address(None, None, None, None))
    return out


def _address_list(header: Header, name: str) -> str:
    values = header.get_all(name)
    addresses = [a for v in values for a in parse_addresses(v)]
    if not addresses:
        return "NIL"
    return "(" + "".join(a.imap() for a in addresses) + ")"


def envelope_of(header: Header) -> str:
    """RFC 3501 §7.4.2 ENVELOPE from a header block (raw strings, as the RFC intends)."""
    def first(name: str) -> str | None:
        v = header.get(name)
        return v if v else None

    from_ = _address_list(header, "from")
    sender = _address_list(header, "sender")
    reply_to = _address_list(header, "reply-to")
    fields = (
        nstring(first("date")), nstring(first("subject")), from_,
        from_ if sender == "NIL" else sender,
        from_ if reply_to == "NIL" else reply_to,
        _address_list(header, "to"), _address_list(header, "cc"), _address_list(header, "bcc"),
        nstring(first("in-reply-to")), nstring(first("message-id")),
    )
    return "(" + " ".join(fields) + ")"


# --- the part tree -----------------------------------------------------------------


@dataclass(slots=True)
class Part:
    """One MIME entity: header at [start, body_start), body at [body_start, end)."""

    start: int
    body_start: int
    end: int
    header: Header
    maintype: str = "text"
    subtype: str = "plain"
    params: list[tuple[str, str]] = field(default_factory=list)
    children: list[Part] = field(default_factory=list)
    message: Part | None = None      # the encapsulated message of a message/rfc822 part

    @property
    def multipart(self) -> bool:
        return self.maintype == "multipart"

    def encoding(self) -> str:
        return (self.header.get("content-transfer-encoding") or "7BIT").upper()

    def param(self, name: str) -> str | None:
        for n, v in self.params:
            if n.lower() == name:
                return v
        return None


class _Builder:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.count = 0

    def entity(self, start: int, end: int, depth: int, digest: bool = False) -> Part:
        self.count += 1
        header, body_start = _parse_header(self.data, start, end)
        part = Part(start, body_start, end, header)
        ctype = header.get("content-type")
        if ctype:
            main, params = _split_params(ctype)
            t, _, s = main.partition("/")
            t, s = t.strip().lower(), s.strip().lower()
            if t and s and "/" not in s and " " not in t + s:
                part.maintype, part.subtype, part.params = t, s, params
            else:          # RFC 2045 §5.2: a syntax error means text/plain; charset=us-ascii
                part.params = [("charset", "us-ascii")]
        elif digest:
            part.maintype, part.subtype = "message", "rfc822"
        else:
            part.params = [("charset", "us-ascii")]
        if depth >= MAX_DEPTH or self.count >= MAX_PARTS:
            if part.maintype in ("multipart", "message"):
                part.maintype, part.subtype = "application", "octet-stream"
            return part
        if part.multipart:
            self.split(part, depth)
        elif (part.maintype, part.subtype) in (("message", "rfc822"), ("message", "global")) \
                and part.encoding() in ("7BIT", "8BIT", "BINARY"):
            part.message = self.entity(body_start, end, depth + 1)
        return part

    def split(self, part: Part, depth: int) -> None:
        boundary = part.param("boundary")
        data, start, end = self.data, part.body_start, part.end
        digest = part.subtype == "digest"
        if boundary:
            delim = b"--" + boundary.encode("utf-8", "replace")
            marks: list[tuple[int, int, bool]] = []   # (line start, line end + CRLF, close)
            pos = start
            while True:
                if pos == start and data.startswith(delim, start, end):
                    at = start
                else:
                    crlf = data.find(b"\r\n" + delim, pos, end)
                    if crlf < 0:
                        break
                    at = crlf + 2
                after = at + len(delim)
                eol = data.find(b"\r\n", after, end)
                line_end = end if eol < 0 else eol + 2
                rest = data[after:end if eol < 0 else eol]
                close = rest.startswith(b"--")
                if close or not rest.strip(b" \t"):
                    marks.append((at, line_end, close))
                    if close:
                        break
                pos = max(after, at + 1)
                if pos >= end:
                    break
            for k, (_at, line_end, close) in enumerate(marks):
                if close:
                    break
                if k + 1 < len(marks):
                    nxt = marks[k + 1][0]
                    stop = nxt - 2 if nxt - 2 >= line_end else line_end
                else:
                    stop = end
                if self.count >= MAX_PARTS:
                    break               # the rest stays inside this part's body
                part.children.append(self.entity(line_end, stop, depth + 1, digest))
        if not part.children:
            # No boundary or no delimiter: show the body as text, as MIME readers do.
            part.maintype, part.subtype, part.params = "text", "plain", [("charset", "us-ascii")]


def _params_imap(params: list[tuple[str, str]]) -> str:
    if not params:
        return "NIL"
    return "(" + " ".join(f"{quote(n.upper())} {quote(v)}" for n, v in params) + ")"


class MessageView:
    """The parsed structure of one message; build with :meth:`parse`, then cache it."""

    __slots__ = ("_cache", "data", "root")

    def __init__(self, data: bytes, root: Part) -> None:
        self.data = data
        self.root = root
        self._cache: dict[str, object] = {}

    @classmethod
    def parse(cls, data: bytes) -> MessageView:
        """Parse raw message bytes (any line ends); never raises on message content."""
        if b"\n" in data and data.count(b"\n") != data.count(b"\r\n"):
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        return cls(data, _Builder(data).entity(0, len(data), 0))

    @property
    def size(self) -> int:
        """RFC822.SIZE: the octets BODY[] returns (CRLF line ends)."""
        return len(self.data)

    # -- ENVELOPE / BODYSTRUCTURE --

    def envelope(self) -> str:
        env = self._cache.get("envelope")
        if env is None:
            env = self._cache["envelope"] = envelope_of(self.root.header)
        return env  # type: ignore[return-value]

    def bodystructure(self, extensible: bool = True) -> str:
        key = "bs" if extensible else "body"
        out = self._cache.get(key)
        if out is None:
            out = self._cache[key] = self._structure(self.root, extensible)
        return out  # type: ignore[return-value]

    def _structure(self, part: Part, ext: bool) -> str:
        h = part.header
        if part.multipart:
            kids = "".join(self._structure(c, ext) for c in part.children)
            s = f"({kids} {quote(part.subtype.upper())}"
            if ext:
                s += " " + _params_imap(part.params) + " " + self._ext_common(h)
            return s + ")"
        body = self.data[part.body_start:part.end]
        fields = " ".join((
            quote(part.maintype.upper()), quote(part.subtype.upper()),
            _params_imap(part.params), nstring(h.get("content-id")),
            nstring(h.get("content-description")), quote(part.encoding()), str(len(body))))
        if part.message is not None:
            fields += (f" {envelope_of(part.message.header)}"
                       f" {self._structure(part.message, ext)} {_lines(body)}")
        elif part.maintype == "text":
            fields += f" {_lines(body)}"
        if ext:
            fields += f" {nstring(h.get('content-md5'))} {self._ext_common(h)}"
        return f"({fields})"

    @staticmethod
    def _ext_common(h: Header) -> str:
        disp = h.get("content-disposition")
        if disp:
            main, params = _split_params(disp)
            d = f"({quote(main.upper())} {_params_imap(params)})" if main else "NIL"
        else:
            d = "NIL"
        lang = h.get("content-language")
        if lang:
            tags = [t.strip() for t in re.sub(r"\([^()]*\)", "", lang).split(",") if t.strip()]
            lang_s = ("NIL" if not tags else quote(tags[0]) if len(tags) == 1
                      else "(" + " ".join(quote(t) for t in tags) + ")")
        else:
            lang_s = "NIL"
        return f"{d} {lang_s} {nstring(h.get('content-location'))}"

    # -- sections --

    def _find(self, numbers: list[int]) -> Part | None:
        """RFC 3501 §6.4.5 part numbering; None if there is no such part."""
        node, is_message = self.root, True
        for n in numbers:
            if not is_message and node.message is not None:
                node, is_message = node.message, True
            if node.children:
                if not 1 <= n <= len(node.children):
                    return None
                node, is_message = node.children[n - 1], False
            elif is_message and n == 1:
                is_message = False
            else:
                return None
        return node

    def has_part(self, part: str) -> bool:
        """True if the numeric part spec ("", "1", "2.3") names an existing part."""
        return self._find(_numbers(part)) is not None

    def section(self, spec: str) -> bytes | None:
        """The octets of ``BODY[spec]``; None when the part does not exist.

        ``spec`` is the text between the brackets: "", "HEADER", "TEXT", "1.2",
        "1.MIME", "2.HEADER.FIELDS (From Subject)", "HEADER.FIELDS.NOT (X-A)" ...
        Raises ValueError for a spec that is not section syntax.
        """
        if "HEADER.FIELDS" in spec:
            # Kept per spec: a client's message list asks for the same few fields of
            # the same messages at every refresh.
            cached = self._cache.get(spec)
            if cached is not None:
                return cached  # type: ignore[return-value]
        numbers, rest = _split_spec(spec)
        node = self._find(numbers)
        if node is None:
            return None
        data = self.data
        if not rest:
            if not numbers:
                return data
            return data[node.body_start:node.end]
        word = rest.split(None, 1)[0].upper()
        if word == "MIME":
            if not numbers:
                raise ValueError("MIME needs a part number")
            return data[node.start:node.body_start]
        if numbers:
            if node.message is None:
                return None
            node = node.message
        if word == "TEXT":
            return data[node.body_start:node.end]
        if word == "HEADER":
            return data[node.start:node.body_start]
        if word in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            names = _field_names(rest[len(word):])
            keep = word == "HEADER.FIELDS"
            out = [data[a:b] for (name, _), (a, b) in zip(node.header.fields, node.header.spans,
                                                         strict=True)
                   if (name in names) is keep]
            lines = b"".join(x if x.endswith(b"\r\n") else x + b"\r\n" for x in out)
            self._cache[spec] = lines + b"\r\n"
            return self._cache[spec]  # type: ignore[return-value]
        raise ValueError(f"unknown section text {word!r}")

    # -- BINARY (RFC 3516) --

    def binary(self, part: str) -> bytes | None:
        """``BINARY[part]``: the part's body with its transfer encoding removed.

        None when the Content-Transfer-Encoding is unknown (answer UNKNOWN-CTE);
        ``b""`` when there is no such part (check :meth:`has_part` to tell apart).
        Multiparts and messages come back as they are.
        """
        numbers = _numbers(part)
        node = self._find(numbers)
        if node is None:
            return b""
        if not numbers:
            return self.data
        body = self.data[node.body_start:node.end]
        if node.multipart or node.message is not None:
            return body
        return _decode_cte(body, node.encoding())

    def binary_size(self, part: str) -> int | None:
        out = self.binary(part)
        return None if out is None else len(out)

    # -- values for SEARCH and SORT --

    def header_value(self, name: str) -> str:
        """The first field ``name``: unfolded and RFC 2047 decoded ("" if absent)."""
        v = self.root.header.get(name.lower())
        return decode_words(v) if v else ""

    def header_values(self, name: str) -> list[str]:
        """Every field ``name``, unfolded and decoded (SEARCH HEADER matches any)."""
        return [decode_words(v) for v in self.root.header.get_all(name.lower())]

    def has_header(self, name: str) -> bool:
        name = name.lower()
        return any(n == name for n, _ in self.root.header.fields)

    def header_text(self) -> str:
        """The whole header block as text (SEARCH TEXT covers the header too)."""
        raw = _text(self.data[self.root.start:self.root.body_start])
        return decode_words(_FOLD.sub("", raw))

    def addresses(self, name: str) -> list[Address]:
        """The parsed addresses of header ``name`` (group marks included)."""
        return [a for v in self.root.header.get_all(name.lower()) for a in parse_addresses(v)]

    def date(self) -> float | None:
        """The Date header as a POSIX timestamp (no zone = UTC); None if absent or bad."""
        dt = self._datetime()
        return None if dt is None else dt.timestamp()

    def sent_date(self) -> Date | None:
        """The calendar date written in the Date header (SENTON/SENTBEFORE/SENTSINCE)."""
        dt = self._datetime()
        return None if dt is None else dt.date()

    def _datetime(self):  # type: ignore[no-untyped-def]
        if "dt" not in self._cache:
            raw = self.root.header.get("date")
            dt = None
            if raw:
                try:
                    dt = email.utils.parsedate_to_datetime(raw)
                    if dt.tzinfo is None:
                        dt = dt.replace(tzinfo=UTC)
                except (TypeError, ValueError, IndexError, OverflowError):
                    dt = None
            self._cache["dt"] = dt
        return self._cache["dt"]

    def text_for_search(self) -> str:
        """Decoded text of the text/* parts, at most :data:`SEARCH_TEXT_LIMIT` characters."""
        out = self._cache.get("text")
        if out is None:
            chunks: list[str] = []
            total = 0
            for node in self._leaves(self.root):
                if node.maintype != "text" or total >= SEARCH_TEXT_LIMIT:
                    continue
                # 4 encoded octets per character at most (base64 of UTF-8)
                body = self.data[node.body_start:min(node.end, node.body_start
                                                     + 4 * (SEARCH_TEXT_LIMIT - total))]
                raw = _decode_cte(body, node.encoding())
                if raw is None:
                    raw = body
                charset = node.param("charset") or "us-ascii"
                try:
                    text = raw.decode(charset, errors="replace")
                except LookupError:
                    text = raw.decode("utf-8", errors="replace")
                chunks.append(text[:SEARCH_TEXT_LIMIT - total])
                total += len(chunks[-1])
            out = self._cache["text"] = "\n".join(chunks)
        return out  # type: ignore[return-value]

    def folded_search_text(self) -> str:
        """:meth:`text_for_search`, case-folded once and cached (SEARCH BODY/TEXT)."""
        out = self._cache.get("folded")
        if out is None:
            out = self._cache["folded"] = self.text_for_search().casefold()
        return out  # type: ignore[return-value]

    def _leaves(self, node: Part):  # type: ignore[no-untyped-def]
        if node.children:
            for c in node.children:
                yield from self._leaves(c)
        elif node.message is not None:
            yield from self._leaves(node.message)
        else:
            yield node


def _lines(body: bytes) -> int:
    """Text lines of a body: line ends, plus a last line without one."""
    return body.count(b"\n") + (1 if body and not body.endswith(b"\n") else 0)


def _decode_cte(body: bytes, encoding: str) -> bytes | None:
    if encoding in ("7BIT", "8BIT", "BINARY", ""):
        return body
    if encoding == "BASE64":
        clean = re.sub(rb"[^A-Za-z0-9+/]", b"", body)
        clean = clean[: len(clean) - len(clean) % 4] if len(clean) % 4 == 1 else clean
        try:
            return base64.b64decode(clean + b"=" * (-len(clean) % 4))
        except binascii.Error:
            return None
    if encoding == "QUOTED-PRINTABLE":
        return binascii.a2b_qp(body)
    return None


def _numbers(part: str) -> list[int]:
    part = part.strip()
    if not part:
        return []
    out = []
    for piece in part.split("."):
        if not (piece.isascii() and piece.isdigit()) or piece[0] == "0":
            raise ValueError(f"invalid part number {part!r}")
        out.append(int(piece))
    return out


def _split_spec(spec: str) -> tuple[list[int], str]:
    """Split "1.2.HEADER.FIELDS (A)" into ([1, 2], "HEADER.FIELDS (A)")."""
    spec = spec.strip()
    numbers: list[int] = []
    pos = 0
    while pos < len(spec) and spec[pos].isdigit():
        dot = spec.find(".", pos)
        piece = spec[pos:] if dot < 0 else spec[pos:dot]
        if not (piece.isascii() and piece.isdigit()) or piece[0] == "0":
            raise ValueError(f"invalid section {spec!r}")
        numbers.append(int(piece))
        if dot < 0:
            return numbers, ""
        pos = dot + 1
        if pos >= len(spec):
            raise ValueError(f"invalid section {spec!r}")
    rest = spec[pos:]
    word = rest.split(None, 1)[0].upper() if rest else ""
    if rest and word not in ("HEADER", "TEXT", "MIME", "HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        raise ValueError(f"invalid section {spec!r}")
    if word in ("HEADER", "TEXT", "MIME") and rest.strip().upper() != word:
        raise ValueError(f"invalid section {spec!r}")
    return numbers, rest


def _field_names(text: str) -> set[str]:
    text = text.strip()
    if not (text.startswith("(") and text.endswith(")")):
        raise ValueError("HEADER.FIELDS needs a parenthesised list of field names")
    names = re.findall(r'"((?:[^"\\]|\\.)*)"|([^\s"()]+)', text[1:-1])
    out = {(q or a).lower() for q, a in names}
    if not out:
        raise ValueError("HEADER.FIELDS needs at least one field name")
    return out
