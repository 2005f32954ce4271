"""Account lockout (manual 5.8.2), shared by every service through the store."""

from __future__ import annotations

import asyncio

import pytest

from postroom.auth.lockout import Lockout
from postroom.auth.logins import LoginChecker
from postroom.auth.sasl import Credentials
from postroom.store import Store

PASSWORD = "Correct-Horse-42!"


@pytest.fixture
def boxes(store: Store) -> Store:
    store.directory.create_postoffice("example")
    store.directory.create_mailbox("example", "bob", PASSWORD)
    store.directory.create_mailbox("example", "carol", PASSWORD)
    store.settings.set("localhost.policies.lockout_enabled", True)
    store.settings.set("localhost.policies.lockout_failed_attempts", 3)
    return store


def check(checker: LoginChecker, user: str, password: str) -> str:
    return checker.check_now(Credentials("PLAIN", user, password), "192.0.2.1").reason


def test_lockout_after_n_failures_even_with_the_right_password(boxes: Store) -> None:
    checker = LoginChecker(boxes, service="pop3")
    assert check(checker, "bob@example", "wrong") == "bad-credentials"
    assert check(checker, "bob@example", "wrong") == "bad-credentials"
    assert check(checker, "bob@example", "wrong") == "locked"
    assert check(checker, "bob@example", PASSWORD) == "locked"
    assert check(checker, "carol@example", PASSWORD) == "ok"      # others unaffected
    checker.close()


def test_lockout_is_shared_between_services_and_store_handles(boxes: Store) -> None:
    smtp = LoginChecker(boxes, service="smtp")
    check(smtp, "bob@example", "wrong")
    check(smtp, "bob@example", "wrong")
    other = Store.open(boxes.home.root)       # another process would open it like this
    pop3 = LoginChecker(other, service="pop3")
    assert check(pop3, "bob@example", "wrong") == "locked"
    assert check(smtp, "bob@example", PASSWORD) == "locked"
    pop3.close()
    smtp.close()
    other.close()


def test_lockout_expires_after_an_hour(boxes: Store) -> None:
    now = [1_000_000.0]
    lockout = Lockout(boxes, clock=lambda: now[0])
    checker = LoginChecker(boxes, service="imap", lockout=lockout)
    for _ in range(3):
        check(checker, "bob@example", "wrong")
    assert check(checker, "bob@example", PASSWORD) == "locked"
    now[0] += 3601
    assert check(checker, "bob@example", PASSWORD) == "ok"
    checker.close()


def test_old_failures_do_not_count(boxes: Store) -> None:
    now = [1_000_000.0]
    checker = LoginChecker(boxes, service="pop3", lockout=Lockout(boxes, clock=lambda: now[0]))
    for _ in range(2):
        check(checker, "bob@example", "wrong")
    now[0] += 3700
    assert check(checker, "bob@example", "wrong") == "bad-credentials"
    checker.close()


def test_disabled_lockout_writes_nothing(boxes: Store) -> None:
    boxes.settings.set("localhost.policies.lockout_enabled", False)
    checker = LoginChecker(boxes, service="pop3")
    for _ in range(5):
        assert check(checker, "bob@example", "wrong") == "bad-credentials"
    assert check(checker, "bob@example", PASSWORD) == "ok"
    assert boxes.conn.execute("SELECT count(*) FROM auth_failure").fetchone()[0] == 0
    checker.close()


def test_unlock(boxes: Store) -> None:
    lockout = Lockout(boxes)
    checker = LoginChecker(boxes, service="pop3", lockout=lockout)
    for _ in range(3):
        check(checker, "bob@example", "wrong")
    box = boxes.directory.get_mailbox("example", "bob")
    assert lockout.is_locked(box.id)
    lockout.unlock(box.id)
    assert check(checker, "bob@example", PASSWORD) == "ok"
    checker.close()


def test_async_check_runs_off_the_loop(boxes: Store) -> None:
    checker = LoginChecker(boxes, service="pop3")

    async def main() -> str:
        result = await checker.check(Credentials("LOGIN", "bob@example", PASSWORD))
        return result.identity.login if result.identity else ""

    assert asyncio.run(main()) == "bob@example"
    checker.close()


def test_smtp_auth_uses_the_lockout(boxes: Store) -> None:
    from postroom.connectors.smtp.auth import Authenticator

    smtp = Authenticator(boxes, failure_delay=0)

    async def attempt(password: str) -> bool:
        return await smtp.verify(Credentials("PLAIN", "bob@example", password)) is not None

    assert [asyncio.run(attempt("wrong")) for _ in range(3)] == [False] * 3
    assert asyncio.run(attempt(PASSWORD)) is False
    pop3 = LoginChecker(boxes, service="pop3")
    assert check(pop3, "bob@example", PASSWORD) == "locked"
    smtp.close()
    pop3.close()
