"""Reading settings for the policy: live, per call.

Checks read ``store.settings.get(key)`` on every call (a dictionary lookup on cached
values), so an administrator's change applies to the next command without a restart.
"""

from __future__ import annotations

from typing import Any, Protocol


class SettingsReader(Protocol):
    """What the policy needs of :class:`postroom.settings.server.Settings`."""

    def get(self, key: str) -> Any: ...


def read(settings: SettingsReader, key: str) -> Any:
    """The effective value of ``key`` (an unknown key is a programming error)."""
    return settings.get(key)
