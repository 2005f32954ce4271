"""When to try a deferred message again, when to give up, when to tell the sender.

Manual 6.2.3.8 ("SMTP - Delivery"): the first, second and third retries wait
``smtp.delivery.first_retry`` / ``second_retry`` / ``third_retry`` minutes (15, 30,
60), later ones ``subsequent_retries`` (240); a message still undelivered after
``failed_message_lifetime`` hours (30) is given up: the sender gets an NDR and the
message goes to the bad mail area. Delay notifications (``delay_notifications``:
``never`` / ``first`` / ``every``) go out only once ``delay_notification_after``
hours have passed since the first attempt.

Pure functions of the settings, the attempt count and "now": the service passes its
clock in, so tests move time instead of sleeping.

The attempt count and the first attempt's time survive a partial success (the
entry is replaced by one carrying the remaining recipients) in
``envelope.extra["smtp_out"]`` (:class:`History`); ``QueueEntry.attempts`` counts
claims, so a claim taken back after a crash counts as an attempt (the schedule
moves on a step sooner, never later).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from postroom.store.queue import QueueEntry

HISTORY_KEY = "smtp_out"


class SettingsReader(Protocol):
    def get(self, key: str) -> Any: ...


@dataclass(frozen=True)
class History:
    """What earlier entries of this message went through (kept in ``extra``)."""

    attempts: int          # delivery attempts made, this one included
    first_attempt: float   # when the first attempt began (the lifetime counts from it)
    delay_notices: int     # delay notifications already sent
    not_before: float      # do not attempt before (set when the entry was replaced)

    @classmethod
    def of(cls, entry: QueueEntry, now: float) -> History:
        data = entry.envelope.extra.get(HISTORY_KEY)
        data = data if isinstance(data, dict) else {}

        def number(key: str, default: float) -> float:
            value = data.get(key, default)
            return float(value) if isinstance(value, int | float) else default

        return cls(attempts=int(number("attempts", 0)) + max(1, entry.attempts),
                   first_attempt=number("first_attempt", min(entry.created_at, now)),
                   delay_notices=int(number("delay_notices", 0)),
                   not_before=number("not_before", 0.0))

    def carried(self, *, delay_notices: int, not_before: float) -> dict[str, Any]:
        """The ``extra["smtp_out"]`` of a replacement entry (its own claims count on)."""
        return {"attempts": self.attempts, "first_attempt": self.first_attempt,
                "delay_notices": delay_notices, "not_before": not_before}


def retry_delay(settings: SettingsReader, attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1 = the first)."""
    key = {1: "first_retry", 2: "second_retry", 3: "third_retry"}.get(attempts,
                                                                        "subsequent_retries")
    return 60.0 * max(1, int(settings.get(f"smtp.delivery.{key}")))


def expired(settings: SettingsReader, history: History, now: float) -> bool:
    """The failed message lifetime has run out: give up instead of deferring."""
    lifetime = 3600.0 * int(settings.get("smtp.delivery.failed_message_lifetime"))
    return now - history.first_attempt >= lifetime


def next_attempt(settings: SettingsReader, history: History, now: float) -> float:
    """When to try again; never later than the end of the lifetime (one last attempt
    then, so a message is not kept four hours past its lifetime)."""
    lifetime_end = history.first_attempt + \
        3600.0 * int(settings.get("smtp.delivery.failed_message_lifetime"))
    return max(now + 1.0, min(now + retry_delay(settings, history.attempts), lifetime_end))


def delay_notice_due(settings: SettingsReader, history: History, now: float) -> bool:
    """Whether this deferral should tell the sender (before NOTIFY is considered)."""
    mode = str(settings.get("smtp.delivery.delay_notifications"))
    if mode == "never" or (mode == "first" and history.delay_notices > 0):
        return False
    after = 3600.0 * int(settings.get("smtp.delivery.delay_notification_after"))
    return now - history.first_attempt >= after
