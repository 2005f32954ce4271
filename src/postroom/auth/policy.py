"""Password policy (manual 5.8.2, Localhost - Policies).

Applied on every create and change of a mailbox password, whichever tool makes
it (CLI, CSV import, web admin, webmail). The manual leaves the individual rules
to its on-line documentation; these are the ones administrators expect today:
a minimum length, a mix of character classes, and not containing the user name.
Settings read: ``localhost.policies.enforce_password_policy``,
``localhost.policies.password_min_length``, ``localhost.policies.password_min_classes``,
``localhost.policies.password_disallow_username``.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any


class PasswordPolicyError(ValueError):
    """The password breaks the policy; the message lists every rule it breaks."""

    def __init__(self, problems: list[str], field: str = "password") -> None:
        super().__init__(f"{field}: " + "; ".join(problems))
        self.field = field
        self.problems = problems


@dataclass(frozen=True)
class PasswordPolicy:
    enforce: bool = True
    min_length: int = 10
    min_classes: int = 3
    disallow_username: bool = True

    @classmethod
    def from_settings(cls, settings: Any) -> PasswordPolicy:
        """Build the policy from the server settings (anything with ``get(key)``)."""
        return cls(
            enforce=settings.get("localhost.policies.enforce_password_policy"),
            min_length=settings.get("localhost.policies.password_min_length"),
            min_classes=settings.get("localhost.policies.password_min_classes"),
            disallow_username=settings.get("localhost.policies.password_disallow_username"),
        )

    def problems(self, password: str, username: str = "") -> list[str]:
        """Every rule ``password`` breaks, as sentences for the administrator."""
        found: list[str] = []
        if not password:
            return ["must not be empty"]
        if any(ch in password for ch in "\r\n\x00"):
            found.append("must not contain line breaks or NUL characters")
        if not self.enforce:
            return found
        if len(password) < self.min_length:
            found.append(f"must be at least {self.min_length} characters long")
        classes = _classes(password)
        if classes < self.min_classes:
            found.append(
                f"must mix at least {self.min_classes} of: lower case, upper case, digits, "
                "symbols")
        if self.disallow_username and username:
            local = username.split("@", 1)[0].lower()
            if len(local) >= 3 and local in password.lower():
                found.append("must not contain the user name")
        return found

    def check(self, password: str, username: str = "", field: str = "password") -> None:
        found = self.problems(password, username)
        if found:
            raise PasswordPolicyError(found, field)

    def random_password(self, username: str = "") -> str:
        """A password that satisfies this policy (all four classes, at least 16 chars)."""
        length = max(16, self.min_length)
        alphabet = string.ascii_letters + string.digits + "-_.!#%+="
        while True:
            candidate = "".join(secrets.choice(alphabet) for _ in range(length))
            if _classes(candidate) == 4 and not self.problems(candidate, username):
                return candidate


def _classes(password: str) -> int:
    return sum((
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ))
