"""SEARCH and SORT result options (RFC 4731 ESEARCH, RFC 5267 ESORT's RETURN for SORT)
and the saved search result of SEARCHRES (RFC 5182).

``RETURN (...)`` asks for an ``ESEARCH`` response instead of the classic ``SEARCH`` /
``SORT`` list; :func:`esearch` writes it. ``SAVE`` keeps the result in the selected
folder for ``$`` (:attr:`.selected.SelectedFolder.saved`); :func:`to_save` applies the
table of RFC 5182 §2.1: with ``MIN`` and/or ``MAX`` but neither ``ALL`` nor ``COUNT``
only those messages are saved, otherwise every message found; ``SAVE`` alone gives no
ESEARCH response at all (:func:`answers`).

Why UIDs: the saved result is kept as UIDs, never sequence numbers, so it survives
expunges (RFC 5182 §2.1: an expunged message leaves the saved result; UIDs are never
reused, so dropping the gone ones when ``$`` is read is the same) and means the same
messages in ``FETCH $`` and ``UID FETCH $`` (§2.2).

For SORT (RFC 5267 §3.1) the numbers keep the sort order: ``MIN`` / ``MAX`` are the
first and last message of the sorted list, ``ALL`` lists them in that order.
"""

from __future__ import annotations

from collections.abc import Sequence

from postroom.services.imap.search import SequenceSet

OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})


def check(options: Sequence[str]) -> None:
    """ValueError naming a RETURN option we do not know (RFC 4466: answer BAD)."""
    for option in options:
        if option not in OPTIONS:
            raise ValueError(f"unknown RETURN option {option}")


def answers(options: Sequence[str]) -> bool:
    """Whether an ESEARCH response is due: ``RETURN ()`` means ALL; ``(SAVE)`` alone
    asks only for the saved result (RFC 5182 §2.1)."""
    return set(options) != {"SAVE"}


def to_save(options: Sequence[str], uids: Sequence[int]) -> list[int]:
    """The UIDs ``SAVE`` keeps, from the result's UIDs in result order (UID order for
    SEARCH, sort order for SORT), per the table of RFC 5182 §2.1."""
    wanted = set(options)
    if not uids or "ALL" in wanted or "COUNT" in wanted or not wanted & {"MIN", "MAX"}:
        return sorted(uids)
    kept = set()
    if "MIN" in wanted:
        kept.add(uids[0])
    if "MAX" in wanted:
        kept.add(uids[-1])
    return sorted(kept)


def esearch(tag: str, uid: bool, options: Sequence[str], numbers: Sequence[int], *,
            sorted_order: bool = False, modseq: int | None = None) -> str:
    """The ``ESEARCH`` response text; ``numbers`` are sequence numbers or UIDs in result
    order (ascending for SEARCH, sort order for SORT)."""
    wanted = set(options) - {"SAVE"} or {"ALL"}
    parts = [f'ESEARCH (TAG "{tag}")'] + (["UID"] if uid else [])
    if numbers:
        if "MIN" in wanted:
            parts.append(f"MIN {numbers[0] if sorted_order else min(numbers)}")
        if "MAX" in wanted:
            parts.append(f"MAX {numbers[-1] if sorted_order else max(numbers)}")
    if "COUNT" in wanted:
        parts.append(f"COUNT {len(numbers)}")
    if "ALL" in wanted and numbers:
        parts.append(f"ALL {_in_order(numbers) if sorted_order else SequenceSet.of(numbers)}")
    if modseq and numbers:
        parts.append(f"MODSEQ {modseq}")
    return " ".join(parts)


def _in_order(numbers: Sequence[int]) -> str:
    """A sequence set that keeps the given order: ascending runs of consecutive numbers
    become ranges, nothing is reordered."""
    out: list[str] = []
    start = prev = numbers[0]
    for n in numbers[1:]:
        if n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = n
    out.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(out)
