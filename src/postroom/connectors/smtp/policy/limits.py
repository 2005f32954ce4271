"""Counting limits (manual 6.2.3.3 maximum connections, 6.2.3.6 recipients per message
and per hour, dropping clients after failed commands, adding them to the deny list).

The counters live in memory, in one process, behind small objects with an injectable
clock so tests drive time: :class:`SlidingWindow` (events per key in the last N
seconds), :class:`ConnectionCounter` (open sessions, total and per IP) and
:class:`DropCounter` (connections dropped per IP, for "add to denied IP addresses").
Keys are client-controlled (IPs, sender addresses), so every structure is bounded:
old events are pruned on use and the number of keys is capped (the oldest key goes).

Replies: 452 4.5.3 too many recipients in one message (RFC 5321 §4.5.3.1.10: the
client sends the rest in another transaction), 450 4.7.1 hourly limit, 421 4.7.0 too
many connections or too many errors (then the connection is closed).

Known limits: with several server processes each counts on its own; a recipient is
counted when RCPT is accepted, even if the message is later refused.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable

from postroom.connectors.smtp.policy import verdict as v
from postroom.connectors.smtp.policy.options import SettingsReader, read
from postroom.connectors.smtp.policy.session import IPAddress, SessionFacts
from postroom.connectors.smtp.policy.verdict import Verdict

Clock = Callable[[], float]
HOUR = 3600.0
DAY = 86_400.0


class SlidingWindow:
    """How many events each key had in the last ``window`` seconds."""

    def __init__(self, window: float, clock: Clock, max_keys: int = 100_000) -> None:
        self.window = window
        self._clock = clock
        self._max_keys = max_keys
        self._events: OrderedDict[Hashable, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _pruned(self, key: Hashable, now: float) -> deque[float] | None:
        events = self._events.get(key)
        if events is None:
            return None
        cutoff = now - self.window
        while events and events[0] <= cutoff:
            events.popleft()
        if not events:
            del self._events[key]
            return None
        return events

    def count(self, key: Hashable) -> int:
        with self._lock:
            events = self._pruned(key, self._clock())
            return len(events) if events else 0

    def add(self, key: Hashable, n: int = 1) -> int:
        """Record ``n`` events now; returns the count in the window afterwards."""
        with self._lock:
            now = self._clock()
            events = self._pruned(key, now)
            if events is None:
                events = self._events[key] = deque()
                if len(self._events) > self._max_keys:
                    self._events.popitem(last=False)
            else:
                self._events.move_to_end(key)
            events.extend([now] * n)
            return len(events)


class ConnectionCounter:
    """Open sessions in total and per client IP."""

    def __init__(self) -> None:
        self.total = 0
        self._per_ip: dict[IPAddress, int] = {}
        self._lock = threading.Lock()

    def count(self, ip: IPAddress) -> int:
        return self._per_ip.get(ip, 0)

    def admit(self, ip: IPAddress, max_total: int, max_per_ip: int | None) -> Verdict | None:
        """Count the session in, or refuse (nothing counted). ``None`` max: no per-IP limit."""
        with self._lock:
            if self.total >= max_total:
                return Verdict.refuse(v.TOO_MANY_CONNECTIONS, "too-many-connections",
                                      detail=f"total {self.total}", drop=True)
            current = self._per_ip.get(ip, 0)
            if max_per_ip is not None and current >= max_per_ip:
                return Verdict.refuse(v.TOO_MANY_CONNECTIONS, "too-many-connections-ip",
                                      detail=f"{ip} has {current}", drop=True)
            self.total += 1
            self._per_ip[ip] = current + 1
            return None

    def release(self, ip: IPAddress) -> None:
        with self._lock:
            current = self._per_ip.get(ip, 0)
            if current <= 0:
                return
            self.total -= 1
            if current == 1:
                del self._per_ip[ip]
            else:
                self._per_ip[ip] = current - 1


class DropCounter(SlidingWindow):
    """Connections dropped for failed commands, per IP, over the last day."""

    def __init__(self, clock: Clock, window: float = DAY) -> None:
        super().__init__(window, clock)


def check_recipients_per_message(settings: SettingsReader,
                                 session: SessionFacts) -> Verdict | None:
    if not read(settings, "smtp.security.max_recipients_per_message_enabled"):
        return None
    limit = read(settings, "smtp.security.max_recipients_per_message")
    if session.counters.recipients >= limit:
        return Verdict.refuse(v.TOO_MANY_RECIPIENTS, "too-many-recipients", detail=str(limit))
    return None


def rate_keys(session: SessionFacts, *, count_ip: bool = True) -> list[tuple[str, str]]:
    """Whose hourly budget a recipient uses: the client IP (unless white-listed), and
    the authenticated mailbox or else the envelope sender."""
    keys = [("ip", str(session.client_ip))] if count_ip else []
    if session.authenticated is not None:
        keys.append(("user", "/".join(session.authenticated).lower()))
    elif session.mail_from is not None and not session.mail_from.is_null:
        keys.append(("sender", session.mail_from.address.lower()))
    return keys


class RecipientRate:
    """Recipients per hour per sender and per client IP (6.2.3.6)."""

    def __init__(self, clock: Clock) -> None:
        self.window = SlidingWindow(HOUR, clock)

    def check(self, settings: SettingsReader, session: SessionFacts, *,
              count_ip: bool = True) -> Verdict | None:
        if not read(settings, "smtp.security.max_recipients_per_hour_enabled"):
            return None
        limit = read(settings, "smtp.security.max_recipients_per_hour")
        for key in rate_keys(session, count_ip=count_ip):
            if self.window.count(key) >= limit:
                return Verdict.refuse(v.HOURLY_LIMIT, "hourly-limit", detail=f"{key[0]}={key[1]}")
        return None

    def record(self, settings: SettingsReader, session: SessionFacts, *,
               count_ip: bool = True) -> None:
        if read(settings, "smtp.security.max_recipients_per_hour_enabled"):
            for key in rate_keys(session, count_ip=count_ip):
                self.window.add(key)


def check_failed_commands(settings: SettingsReader, session: SessionFacts, drops: DropCounter,
                          *, may_auto_block: bool) -> Verdict | None:
    """After a refused command: drop the client when it reached the failure limit, and
    ask the server to deny its IP when it was dropped often enough (not white-listed)."""
    if not read(settings, "smtp.security.drop_on_failed_commands_enabled"):
        return None
    if session.counters.failed_commands < read(settings,
                                               "smtp.security.drop_on_failed_commands_count"):
        return None
    dropped = drops.add(session.client_ip)
    flags = []
    if (may_auto_block and read(settings, "smtp.security.add_to_denied_ips_enabled")
            and dropped >= read(settings, "smtp.security.add_to_denied_ips_count")):
        flags.append(v.FLAG_DENY_IP)
    return Verdict.refuse(v.TOO_MANY_ERRORS, "too-many-errors",
                          detail=f"{session.counters.failed_commands} failed", drop=True,
                          flags=flags)
