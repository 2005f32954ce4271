"""Fixtures for the inbound policy tests: a real store with one post office
``example`` (domain ``example.com``, mailbox ``bob``), a clock the test moves, and
helpers that build sessions and paths the way the protocol core parses them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from postroom.connectors.smtp.address import Path, parse_forward_path, parse_reverse_path
from postroom.connectors.smtp.policy import InboundPolicy, SessionFacts
from postroom.settings.model import OptionError
from postroom.store import Store

PASSWORD = "Correct-Horse-42-battery"
REMOTE_IP = "203.0.113.9"        # an unauthenticated, non-privileged client
SERVER_IP = "198.51.100.25"      # the address clients connect to


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Overlay:
    """The store's settings plus values for keys the catalogue does not declare yet
    (the policy reads those with local defaults): lets tests set them."""

    def __init__(self, settings: Any, extra: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self.extra = dict(extra or {})

    def get(self, key: str) -> Any:
        if key in self.extra:
            return self.extra[key]
        return self.settings.get(key)

    def get_shared(self, key: str) -> Any:
        if key in self.extra:
            return self.extra[key]
        return self.settings.get_shared(key)

    def set(self, key: str, value: Any) -> None:
        try:
            self.settings.set(key, value)
        except OptionError:
            self.extra[key] = value


@pytest.fixture
def hosted(store: Store) -> Store:
    d = store.directory
    d.create_postoffice("example")
    d.create_domain("example.com", "example")
    d.create_mailbox("example", "bob", PASSWORD)
    if d.resolve("bob@example.com") is None:
        d.add_address("bob@example.com", "[SF:example/bob]")
    store.settings.set("smtp.general.default_mail_domain_name", "example.com")
    return store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(hosted: Store) -> Overlay:
    return Overlay(hosted.settings)


@pytest.fixture
def policy(hosted: Store, settings: Overlay, clock: FakeClock) -> Iterator[InboundPolicy]:
    yield InboundPolicy(settings, hosted.directory, clock)


def session(ip: str = REMOTE_IP, **kwargs: Any) -> SessionFacts:
    kwargs.setdefault("server_ip", SERVER_IP)
    return SessionFacts(client_ip=ip, **kwargs)  # type: ignore[arg-type]


def authed(ip: str = REMOTE_IP, **kwargs: Any) -> SessionFacts:
    return session(ip, authenticated=("example", "bob"), tls=True, **kwargs)


def rcpt(text: str) -> Path:
    return parse_forward_path(f"<{text}>", smtputf8=True)


def sender(text: str) -> Path:
    return parse_reverse_path(f"<{text}>", smtputf8=True)
