"""SORT and THREAD (RFC 5256), over the messages a SEARCH selected.

Standards: RFC 5256 §2.1 (base subject), §2.2 (sent date), §3 (SORT criteria, ties by
mailbox order), §4 (ORDEREDSUBJECT and REFERENCES threading), RFC 5957 (DISPLAY).

Input comes from the store and the message files (untrusted header text): duplicate or
missing Message-IDs, reference loops and absurd References chains are all handled as
RFC 5256 §4 prescribes (loops are never created; a duplicate ID gets a fresh one).

Both functions take a ``number`` function that turns a message into the number the
client sees (the sequence number, or the UID for UID SORT / UID THREAD).

Known limits: comparisons use i;ascii-casemap (RFC 5256 §3: ASCII letters folded,
other characters by code point), which is the collation RFC 5256 requires.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from postroom.services.imap.message import decode_words
from postroom.services.imap.search import SearchMessage

Number = Callable[[SearchMessage], int]
CRITERIA = frozenset({"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAY"})
THREAD_ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES")

_WSP = re.compile(r"[ \t\r\n]+")
_TRAILER = re.compile(r"(?:[ \t]*\(fwd\))+[ \t]*\Z|[ \t]+\Z", re.IGNORECASE)
_BLOB = r"\[[^\[\]]*\][ \t]*"
_LEADER = re.compile(rf"(?:{_BLOB})*(?:re|fwd?)[ \t]*(?:{_BLOB})?:|[ \t]+", re.IGNORECASE)
_BLOB_RE = re.compile(_BLOB)
_MSGID = re.compile(r"<([^<>]*)>")


def _seq(m: SearchMessage) -> int:
    return m.seq


def _casemap(s: str) -> str:
    """i;ascii-casemap: fold ASCII letters only."""
    return s.translate(_UPPER) if not s.isascii() else s.upper()


_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}


def base_subject(subject: str) -> tuple[str, bool]:
    """RFC 5256 §2.1: the base subject, and whether the subject marked a reply/forward."""
    s = _WSP.sub(" ", decode_words(subject))
    reply = False
    while True:
        # (2) trailers: "(fwd)" and white space at the end
        while True:
            t = _TRAILER.sub("", s)
            if t == s:
                break
            if "(fwd)" in s[len(t):].lower():
                reply = True
            s = t
        # (3)-(5) leaders and blobs, repeated until nothing changes
        while True:
            before = s
            while True:
                m = _LEADER.match(s)
                if not m or not m.group(0):
                    break
                if m.group(0).strip():
                    reply = True
                s = s[m.end():]
            m = _BLOB_RE.match(s)
            if m and s[m.end():]:
                s = s[m.end():]
            if s == before:
                break
        # (6) "[fwd: ...]"
        if s[:5].lower() == "[fwd:" and s.endswith("]"):
            s = s[5:-1]
            reply = True
            continue
        return _casemap(s), reply


def sent_date(m: SearchMessage) -> float:
    """RFC 5256 §2.2: the Date header in UTC, else the internal date."""
    d = m.view().date()
    return m.internal_date if d is None else d


def _first_mailbox(m: SearchMessage, header: str) -> str:
    for a in m.view().addresses(header):
        if a.host is not None:
            return _casemap(a.mailbox or "")
    return ""


def _display(m: SearchMessage) -> str:
    for a in m.view().addresses("from"):
        if a.host is not None:
            if a.name:
                return _casemap(decode_words(a.name))
            return _casemap(f"{a.mailbox}@{a.host}")
    return ""


_KEYS: dict[str, Callable[[SearchMessage], object]] = {
    "ARRIVAL": lambda m: m.internal_date,
    "CC": lambda m: _first_mailbox(m, "cc"),
    "DATE": sent_date,
    "FROM": lambda m: _first_mailbox(m, "from"),
    "SIZE": lambda m: m.size,
    "SUBJECT": lambda m: base_subject(m.view().header_value("subject"))[0],
    "TO": lambda m: _first_mailbox(m, "to"),
    "DISPLAY": _display,
}


def parse_criteria(criteria: Sequence[str]) -> list[tuple[str, bool]]:
    """Check SORT criteria: (name, reversed) pairs; ValueError names a bad one."""
    out: list[tuple[str, bool]] = []
    reverse = False
    for word in criteria:
        w = word.upper()
        if w == "REVERSE":
            if reverse:
                raise ValueError("REVERSE REVERSE in sort criteria")
            reverse = True
            continue
        if w not in CRITERIA:
            raise ValueError(f"unknown sort criterion {word!r}")
        out.append((w, reverse))
        reverse = False
    if reverse or not out:
        raise ValueError("sort criteria must end with a criterion")
    return out


def sort(criteria: Sequence[str], messages: Sequence[SearchMessage],
         number: Number = _seq) -> list[int]:
    """RFC 5256 SORT: the numbers of ``messages`` in criteria order.

    Messages equal on every criterion stay in mailbox (sequence) order, whatever
    REVERSE says. Raises ValueError for unknown criteria.
    """
    keys = parse_criteria(criteria)
    ordered = sorted(messages, key=_seq)
    for name, reverse in reversed(keys):   # stable sorts, least significant first
        ordered.sort(key=_KEYS[name], reverse=reverse)
    return [number(m) for m in ordered]


# --- THREAD ------------------------------------------------------------------------


@dataclass(eq=False)
class _Node:
    message: SearchMessage | None = None
    parent: _Node | None = None
    children: list[_Node] = field(default_factory=list)

    def ancestor_or_self(self, other: _Node) -> bool:
        node: _Node | None = self
        while node is not None:
            if node is other:
                return True
            node = node.parent
        return False

    def adopt(self, child: _Node) -> None:
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)


def thread(algorithm: str, messages: Sequence[SearchMessage], number: Number = _seq) -> str:
    """THREAD response data, e.g. ``(2)(3 6 (4 23)(44 7 96))``; ValueError if unknown."""
    algo = algorithm.upper()
    if algo == "ORDEREDSUBJECT":
        roots = _ordered_subject(messages)
    elif algo == "REFERENCES":
        roots = _references(messages)
    else:
        raise ValueError(f"unknown threading algorithm {algorithm!r}")
    return "".join("(" + _format(r, number) + ")" for r in roots)


def _format(node: _Node, number: Number) -> str:
    parts: list[str] = []
    while True:
        if node.message is not None:
            parts.append(str(number(node.message)))
        if len(node.children) == 1 and node.message is not None:
            node = node.children[0]
            continue
        if node.children:
            parts.append("".join("(" + _format(c, number) + ")" for c in node.children))
        return " ".join(parts)


def _date_key(m: SearchMessage) -> tuple[float, int]:
    return sent_date(m), m.seq


def _ordered_subject(messages: Sequence[SearchMessage]) -> list[_Node]:
    """RFC 5256 §4 ORDEREDSUBJECT: group by base subject, first message the parent."""
    by_subject: dict[str, list[SearchMessage]] = {}
    for m in sorted(messages, key=_date_key):
        subject = base_subject(m.view().header_value("subject"))[0]
        by_subject.setdefault(subject, []).append(m)
    roots: list[_Node] = []
    for group in by_subject.values():
        root = _Node(group[0])
        for m in group[1:]:
            root.adopt(_Node(m))
        roots.append(root)
    roots.sort(key=lambda r: _date_key(r.message))  # type: ignore[arg-type]
    return roots


def _references(messages: Sequence[SearchMessage]) -> list[_Node]:
    """RFC 5256 §4 REFERENCES (after Jamie Zawinski's threading algorithm)."""
    table: dict[str, _Node] = {}
    ordered = sorted(messages, key=_seq)
    for m in ordered:
        view = m.view()
        ids = _MSGID.findall(view.header_value("message-id"))
        mid = ids[0].strip() if ids and ids[0].strip() else None
        if mid is None or (mid in table and table[mid].message is not None):
            mid = f"\0unique-{m.seq}-{m.uid}"           # missing or duplicate Message-ID
        node = table.setdefault(mid, _Node())
        node.message = m
        refs = [r.strip() for r in _MSGID.findall(view.header_value("references"))
                if r.strip()]
        if not refs:
            first = _MSGID.findall(view.header_value("in-reply-to"))[:1]
            refs = [first[0].strip()] if first and first[0].strip() else []
        refs = refs[-1000:]
        prev: _Node | None = None
        for ref in refs:
            ref_node = table.setdefault(ref, _Node())
            if (prev is not None and ref_node.parent is None and ref_node is not prev
                    and not prev.ancestor_or_self(ref_node)):
                prev.adopt(ref_node)
            prev = ref_node
        if node.parent is not None:
            node.parent.children.remove(node)
            node.parent = None
        if prev is not None and prev is not node and not prev.ancestor_or_self(node):
            prev.adopt(node)
    roots = [n for n in table.values() if n.parent is None]
    roots = _prune(roots, at_root=True)
    roots = _group_by_subject(roots)
    _sort_siblings(roots)
    return roots


def _prune(nodes: list[_Node], at_root: bool) -> list[_Node]:
    """RFC 5256 §4 (4): drop empty dummies, promote dummies' children."""
    out: list[_Node] = []
    for node in nodes:
        node.children = _prune(node.children, at_root=False)
        for c in node.children:
            c.parent = node
        if node.message is None:
            if not node.children:
                continue
            if not at_root or len(node.children) == 1:
                for c in node.children:
                    c.parent = None
                out.extend(node.children)
                continue
        out.append(node)
    return out


def _subject_of(node: _Node) -> tuple[str, bool]:
    m = node.message if node.message is not None else node.children[0].message
    if m is None:
        return "", False
    return base_subject(m.view().header_value("subject"))


def _group_by_subject(roots: list[_Node]) -> list[_Node]:
    """RFC 5256 §4 (5): merge root threads with the same base subject."""
    table: dict[str, _Node] = {}
    for r in roots:
        subject, reply = _subject_of(r)
        if not subject:
            continue
        old = table.get(subject)
        if (old is None or (old.message is not None and r.message is None)
                or (old.message is not None and r.message is not None
                    and _subject_of(old)[1] and not reply)):
            table[subject] = r
    result = list(roots)
    for r in roots:
        subject, reply = _subject_of(r)
        entry = table.get(subject) if subject else None
        if entry is None or entry is r:
            continue
        if entry.message is None and r.message is None:
            for c in list(r.children):
                entry.adopt(c)
            result.remove(r)
        elif entry.message is None or (reply and not _subject_of(entry)[1]):
            entry.adopt(r)          # a sibling of the entry's children
            result.remove(r)
        else:
            dummy = _Node()
            result[result.index(entry)] = dummy
            result.remove(r)
            dummy.adopt(entry)
            dummy.adopt(r)
            table[subject] = dummy
    return result


def _first_date(node: _Node) -> tuple[float, int]:
    if node.message is not None:
        return _date_key(node.message)
    return _first_date(node.children[0]) if node.children else (0.0, 0)


def _sort_siblings(nodes: list[_Node]) -> None:
    for n in nodes:
        _sort_siblings(n.children)
    nodes.sort(key=_first_date)
