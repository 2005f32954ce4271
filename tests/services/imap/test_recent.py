"""\\Recent shared through the store (RFC 3501 §2.3.2): a message is recent in exactly
one session, the first to SELECT its folder after it arrived (or the one that has the
folder selected when it arrives); EXAMINE shows unclaimed messages as recent but
claims none. Real service, several sessions, exact responses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services.imap.conftest import ImapServer, RawImap, message


@pytest.fixture
def second(imap_server: ImapServer) -> Iterator[RawImap]:
    client = RawImap(imap_server.host, imap_server.port)
    assert client.login()[-1].startswith(b"l OK")
    yield client
    client.close()


def _recent_line(lines: list[bytes]) -> bytes:
    return next(line for line in lines if line.endswith(b" RECENT"))


def test_first_select_claims_second_sees_none(imap_server: ImapServer, bob: RawImap,
                                              second: RawImap) -> None:
    imap_server.deliver(message(1))
    imap_server.deliver(message(2), flags=("\\Seen",))
    assert bob.command("STATUS INBOX (MESSAGES RECENT)") == [
        b"* STATUS INBOX (MESSAGES 2 RECENT 2)", b"a OK STATUS completed"]
    assert _recent_line(bob.command("SELECT INBOX")) == b"* 2 RECENT"
    assert bob.command("FETCH 1:* FLAGS") == [
        b"* 1 FETCH (FLAGS (\\Recent))", b"* 2 FETCH (FLAGS (\\Seen \\Recent))",
        b"a OK FETCH completed"]
    assert _recent_line(second.command("SELECT INBOX")) == b"* 0 RECENT"
    assert second.command("FETCH 1:* FLAGS") == [
        b"* 1 FETCH (FLAGS ())", b"* 2 FETCH (FLAGS (\\Seen))", b"a OK FETCH completed"]
    # SEARCH RECENT / NEW (recent and unseen) agree with the flags each session sees.
    assert bob.command("SEARCH RECENT") == [b"* SEARCH 1 2", b"a OK SEARCH completed"]
    assert bob.command("SEARCH NEW") == [b"* SEARCH 1", b"a OK SEARCH completed"]
    assert bob.command("SEARCH OLD") == [b"* SEARCH", b"a OK SEARCH completed"]
    assert second.command("SEARCH RECENT") == [b"* SEARCH", b"a OK SEARCH completed"]
    assert second.command("SEARCH NEW") == [b"* SEARCH", b"a OK SEARCH completed"]
    assert second.command("SEARCH OLD") == [b"* SEARCH 1 2", b"a OK SEARCH completed"]
    # Claimed for good: selecting again (in either session) shows none recent.
    assert _recent_line(bob.command("SELECT INBOX")) == b"* 0 RECENT"
    assert bob.command("STATUS INBOX (RECENT)") == [
        b"* STATUS INBOX (RECENT 0)", b"a OK STATUS completed"]
    # A client cannot set or clear \Recent itself.
    assert bob.command("STORE 1 +FLAGS (\\Recent \\Flagged)") == [
        b"* 1 FETCH (FLAGS (\\Flagged))", b"a OK STORE completed"]


def test_examine_claims_nothing(imap_server: ImapServer, bob: RawImap,
                                second: RawImap) -> None:
    imap_server.deliver(message(1))
    imap_server.deliver(message(2))
    # A read-only session sees them as recent but leaves them to the next SELECT.
    assert _recent_line(second.command("EXAMINE INBOX")) == b"* 2 RECENT"
    assert second.command("FETCH 1 FLAGS") == [b"* 1 FETCH (FLAGS (\\Recent))",
                                               b"a OK FETCH completed"]
    assert _recent_line(second.command("EXAMINE INBOX")) == b"* 2 RECENT"
    assert _recent_line(bob.command("SELECT INBOX")) == b"* 2 RECENT"
    assert _recent_line(second.command("EXAMINE INBOX")) == b"* 0 RECENT"
    assert second.command("SEARCH RECENT") == [b"* SEARCH", b"a OK SEARCH completed"]


def test_new_mail_goes_to_one_selected_session(imap_server: ImapServer, bob: RawImap,
                                               second: RawImap) -> None:
    imap_server.deliver(message(1))
    imap_server.claim_recent()
    assert _recent_line(bob.command("SELECT INBOX")) == b"* 0 RECENT"
    assert _recent_line(second.command("SELECT INBOX")) == b"* 0 RECENT"
    imap_server.deliver(message(2))
    assert bob.command("NOOP") == [b"* 2 EXISTS", b"* 1 RECENT", b"a OK NOOP completed"]
    assert second.command("NOOP") == [b"* 2 EXISTS", b"* 0 RECENT", b"a OK NOOP completed"]
    assert bob.command("FETCH 2 FLAGS") == [b"* 2 FETCH (FLAGS (\\Recent))",
                                            b"a OK FETCH completed"]
    assert second.command("FETCH 2 FLAGS") == [b"* 2 FETCH (FLAGS ())",
                                               b"a OK FETCH completed"]
    # The next one goes to whichever session hears of it first: here the second.
    imap_server.deliver(message(3))
    assert second.command("NOOP") == [b"* 3 EXISTS", b"* 1 RECENT", b"a OK NOOP completed"]
    assert second.command("SEARCH RECENT") == [b"* SEARCH 3", b"a OK SEARCH completed"]
    assert bob.command("NOOP") == [b"* 3 EXISTS", b"* 1 RECENT", b"a OK NOOP completed"]
    assert bob.command("SEARCH RECENT") == [b"* SEARCH 2", b"a OK SEARCH completed"]
    # A later SELECT finds nothing left to claim.
    third = RawImap(imap_server.host, imap_server.port)
    third.login()
    assert _recent_line(third.command("SELECT INBOX")) == b"* 0 RECENT"
    third.close()


def test_idle_session_claims_new_mail(imap_server: ImapServer, bob: RawImap,
                                      second: RawImap) -> None:
    imap_server.claim_recent()
    bob.command("SELECT INBOX")
    bob.send(b"i IDLE\r\n")
    assert bob.line() == b"+ idling"
    imap_server.deliver(message(1))
    assert bob.line() == b"* 1 EXISTS"
    assert bob.line() == b"* 1 RECENT"
    bob.send(b"DONE\r\n")
    assert bob.line() == b"i OK IDLE terminated"
    assert _recent_line(second.command("SELECT INBOX")) == b"* 0 RECENT"


def test_one_delivery_is_recent_in_exactly_one_of_many_idle_sessions(
        imap_server: ImapServer) -> None:
    """Sessions woken together by one delivery: exactly one claims the message, also
    while its claim is still on its way to the store (the others must not claim too)."""
    imap_server.claim_recent()
    clients = [RawImap(imap_server.host, imap_server.port) for _ in range(8)]
    try:
        for client in clients:
            assert client.login()[-1].startswith(b"l OK")
            client.command("SELECT INBOX")
            client.send(b"i IDLE\r\n")
            assert client.line() == b"+ idling"
        imap_server.deliver(message(1))
        recents = []
        for client in clients:
            assert client.line() == b"* 1 EXISTS"
            recents.append(client.line())
        assert sorted(recents) == [b"* 0 RECENT"] * 7 + [b"* 1 RECENT"]
    finally:
        for client in clients:
            client.close()


def test_an_append_to_the_selected_folder_is_recent_to_the_appending_session(
        imap_server: ImapServer, bob: RawImap, second: RawImap) -> None:
    """The appending session is the first told of its message (its own EXISTS), so
    the message is recent there, and only there; the claim shares the append's
    commit."""
    imap_server.deliver(message(1))
    imap_server.claim_recent()
    assert _recent_line(bob.command("SELECT INBOX")) == b"* 0 RECENT"
    assert _recent_line(second.command("SELECT INBOX")) == b"* 0 RECENT"
    data = message(2)
    lines = bob.command(b"APPEND INBOX {%d+}\r\n%s" % (len(data), data))
    assert lines[:2] == [b"* 2 EXISTS", b"* 1 RECENT"]
    assert lines[-1].startswith(b"a OK [APPENDUID ") and lines[-1].endswith(b"APPEND completed")
    assert second.command("NOOP") == [b"* 2 EXISTS", b"* 0 RECENT", b"a OK NOOP completed"]
    assert bob.command("FETCH 2 FLAGS") == [b"* 2 FETCH (FLAGS (\\Recent))",
                                            b"a OK FETCH completed"]
    assert second.command("FETCH 2 FLAGS") == [b"* 2 FETCH (FLAGS ())",
                                               b"a OK FETCH completed"]
    # Two at once (MULTIAPPEND): both are the appending session's.
    three, four = message(3), message(4)
    lines = bob.command(b"APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s" % (
        len(three), three, len(four), four))
    assert lines[:2] == [b"* 4 EXISTS", b"* 3 RECENT"]
    assert second.command("NOOP") == [b"* 4 EXISTS", b"* 0 RECENT", b"a OK NOOP completed"]
    # Appending to another folder claims nothing: its first SELECT gets the message.
    other = message(5)
    bob.command(b"APPEND Drafts {%d+}\r\n%s" % (len(other), other))
    assert _recent_line(second.command("SELECT Drafts")) == b"* 1 RECENT"
