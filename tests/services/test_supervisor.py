"""The supervisor spaces a process's queue commits only for services that accept it."""

from __future__ import annotations

from postroom.mta.service import COMMIT_INTERVAL
from postroom.services.supervisor import SERVICES, space_commits
from postroom.store import Store


def test_the_mta_alone_spaces_its_commits_and_never_a_process_that_answers_clients(
        store: Store) -> None:
    writer = store.queue._writer  # type: ignore[attr-defined]
    mta, smtp = SERVICES["mta"](store), SERVICES["smtp"](store)
    assert space_commits(store, [mta]) == COMMIT_INTERVAL > 0
    assert writer.min_interval == COMMIT_INTERVAL
    # SMTP in answers 250 after its commit: with it in the process, no spacing.
    assert space_commits(store, [smtp, mta]) == 0
    assert writer.min_interval == 0
    assert space_commits(store, []) == 0
