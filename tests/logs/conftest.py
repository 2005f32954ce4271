"""A clock the tests move by hand, so midnight comes when a test wants it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

PARIS_WINTER = timezone(timedelta(hours=1))


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 1, 25, 23, 59, 58, tzinfo=PARIS_WINTER))
