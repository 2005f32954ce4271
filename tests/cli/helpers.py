"""Small helpers shared by the CLI tests: a valid password and text normalising."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PASSWORD = "Tr0ub4dor&3x"


def flat(text: str) -> str:
    """Collapse whitespace: rich wraps long error lines at the terminal width."""
    return " ".join(text.split())


def names(records: Any, key: str = "name") -> set[str]:
    return {r[key] for r in records}


def setup_postoffice(cli: Callable[..., Any], po: str = "example",
                     domain: str = "example.com") -> None:
    cli("postoffice", "create", po)
    if domain:
        cli("domain", "create", domain, "--postoffice", po)
