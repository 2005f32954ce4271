"""QRESYNC (RFC 7162 §3.2) against the real service on loopback: what a client that
reconnects with the state it cached is told, and VANISHED instead of EXPUNGE."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from postroom.store.messages import FolderInfo
from tests.services.imap.conftest import ImapServer, RawImap, message


def folder(server: ImapServer, name: str = "Inbox") -> FolderInfo:
    return next(f for f in server.store.messages.list_folders("example", "bob")
                if f.name == name)


def modseq(server: ImapServer, uid: int) -> int:
    return next(m.modseq for m in server.messages() if m.uid == uid)


def session(server: ImapServer, *, qresync: bool = True) -> RawImap:
    client = RawImap(server.host, server.port)
    assert client.login()[-1].startswith(b"l OK")
    if qresync:
        assert client.command("ENABLE QRESYNC") == [b"* ENABLED QRESYNC",
                                                    b"a OK ENABLE completed"]
    return client


def after_highestmodseq(lines: list[bytes]) -> list[bytes]:
    """The SELECT responses that follow the usual ones (the resynchronisation)."""
    i = next(i for i, line in enumerate(lines) if line.startswith(b"* OK [HIGHESTMODSEQ "))
    return lines[i + 1:]


@pytest.fixture
def changed(imap_server: ImapServer) -> Iterator[tuple[int, int]]:
    """Six messages; a client's cached state (UIDVALIDITY, HIGHESTMODSEQ) is taken;
    then another session flags UIDs 2 and 6 and expunges UIDs 3 and 5."""
    for n in range(1, 7):
        imap_server.deliver(message(n))
    info = folder(imap_server)
    other = session(imap_server, qresync=False)
    other.command("SELECT INBOX")
    assert other.command("STORE 2 +FLAGS.SILENT (\\Seen)") == [b"a OK STORE completed"]
    assert other.command("STORE 3,5 +FLAGS.SILENT (\\Deleted)") == [b"a OK STORE completed"]
    assert other.command("EXPUNGE") == [b"* 5 EXPUNGE", b"* 3 EXPUNGE",
                                        b"a OK EXPUNGE completed"]
    assert other.command("UID STORE 6 +FLAGS.SILENT ($Work)") == [
        b"a OK UID STORE completed"]
    other.close()
    yield info.uidvalidity, info.highestmodseq


def test_capability_and_enable(imap_server: ImapServer, bob: RawImap) -> None:
    caps = bob.command("CAPABILITY")[0]
    assert b" CONDSTORE QRESYNC " in caps
    assert bob.command("ENABLE QRESYNC") == [b"* ENABLED QRESYNC", b"a OK ENABLE completed"]
    # Already on; QRESYNC implied CONDSTORE.
    assert bob.command("ENABLE QRESYNC CONDSTORE") == [b"* ENABLED", b"a OK ENABLE completed"]


def test_select_qresync_reports_vanished_and_changed_flags(
        imap_server: ImapServer, changed: tuple[int, int]) -> None:
    uidvalidity, cached = changed
    bob = session(imap_server)
    lines = bob.command(f"SELECT INBOX (QRESYNC ({uidvalidity} {cached}))")
    assert lines[:3] == [b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
                         b"* 4 EXISTS", b"* 0 RECENT"]
    assert b"* OK [HIGHESTMODSEQ %d] highest" % folder(imap_server).highestmodseq in lines
    assert after_highestmodseq(lines) == [
        b"* VANISHED (EARLIER) 3,5",
        b"* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (%d))" % modseq(imap_server, 2),
        b"* 4 FETCH (UID 6 FLAGS ($Work) MODSEQ (%d))" % modseq(imap_server, 6),
        b"a OK [READ-WRITE] SELECT completed"]
    # The client now agrees with the server: numbers 1-4 are UIDs 1, 2, 4, 6.
    assert bob.command("FETCH 1:* UID") == [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 2)",
                                            b"* 3 FETCH (UID 4)", b"* 4 FETCH (UID 6)",
                                            b"a OK FETCH completed"]
    # From the mod-sequence the client has now, nothing more to tell (EXAMINE too).
    now = folder(imap_server).highestmodseq
    assert after_highestmodseq(bob.command(f"EXAMINE INBOX (QRESYNC ({uidvalidity} {now}))")
                               ) == [b"a OK [READ-ONLY] EXAMINE completed"]
    # Between the two changes: only the later ones.
    between = modseq(imap_server, 6) - 1
    assert after_highestmodseq(bob.command(
        f"SELECT INBOX (QRESYNC ({uidvalidity} {between}))")) == [
        b"* 4 FETCH (UID 6 FLAGS ($Work) MODSEQ (%d))" % modseq(imap_server, 6),
        b"a OK [READ-WRITE] SELECT completed"]
    bob.close()


def test_wrong_uidvalidity_is_a_plain_select(imap_server: ImapServer,
                                             changed: tuple[int, int]) -> None:
    uidvalidity, cached = changed
    bob = session(imap_server)
    plain = bob.command("SELECT INBOX")
    again = bob.command(f"SELECT INBOX (QRESYNC ({uidvalidity + 1} {cached} 1:6))")
    assert again == [b"* OK [CLOSED] previous mailbox closed", *plain]
    assert not any(b"VANISHED" in line or b"FETCH" in line for line in again)
    bob.close()


def test_known_uids_limit_the_answer(imap_server: ImapServer,
                                     changed: tuple[int, int]) -> None:
    uidvalidity, cached = changed
    bob = session(imap_server)
    assert after_highestmodseq(bob.command(
        f"SELECT INBOX (QRESYNC ({uidvalidity} {cached} 1:4))")) == [
        b"* VANISHED (EARLIER) 3",
        b"* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (%d))" % modseq(imap_server, 2),
        b"a OK [READ-WRITE] SELECT completed"]
    # With message sequence match data (accepted; the server needs no guessing).
    assert after_highestmodseq(bob.command(
        f"SELECT INBOX (QRESYNC ({uidvalidity} {cached} 5:6 (1:3 1,2,4)))")) == [
        b"* VANISHED (EARLIER) 5",
        b"* 4 FETCH (UID 6 FLAGS ($Work) MODSEQ (%d))" % modseq(imap_server, 6),
        b"a OK [READ-WRITE] SELECT completed"]
    # Sequence match data alone.
    lines = bob.command(f"SELECT INBOX (QRESYNC ({uidvalidity} {cached} (1,2 1,2)))")
    assert after_highestmodseq(lines)[0] == b"* VANISHED (EARLIER) 3,5"
    bob.close()


def test_uid_fetch_changedsince_vanished(imap_server: ImapServer,
                                         changed: tuple[int, int]) -> None:
    _, cached = changed
    imap_server.deliver(message(7))
    bob = session(imap_server)
    bob.command("SELECT INBOX")
    assert bob.command("UID STORE 7 +FLAGS.SILENT (\\Deleted)") == [
        b"a OK UID STORE completed"]
    assert bob.command("UID EXPUNGE 7") == [
        b"* VANISHED 7",
        b"a OK [HIGHESTMODSEQ %d] UID EXPUNGE completed" % folder(imap_server).highestmodseq]
    assert bob.command(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {cached} VANISHED)") == [
        b"* VANISHED (EARLIER) 3,5,7",
        b"* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (%d))" % modseq(imap_server, 2),
        b"* 4 FETCH (UID 6 FLAGS ($Work) MODSEQ (%d))" % modseq(imap_server, 6),
        b"a OK UID FETCH completed"]
    # "*" reaches the last UID ever given (7 is gone; the highest message is 6).
    assert bob.command(f"UID FETCH 6:* (FLAGS) (CHANGEDSINCE {cached} VANISHED)") == [
        b"* VANISHED (EARLIER) 7",
        b"* 4 FETCH (UID 6 FLAGS ($Work) MODSEQ (%d))" % modseq(imap_server, 6),
        b"a OK UID FETCH completed"]
    assert bob.command("UID FETCH 1:2 (FLAGS) (CHANGEDSINCE 1 VANISHED)")[-1] == \
        b"a OK UID FETCH completed"
    now = folder(imap_server).highestmodseq
    assert bob.command(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {now} VANISHED)") == [
        b"a OK UID FETCH completed"]
    # VANISHED only with UID FETCH and CHANGEDSINCE.
    assert bob.command("FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)") == [
        b"a BAD VANISHED needs UID FETCH with CHANGEDSINCE"]
    assert bob.command("UID FETCH 1:* (FLAGS) (VANISHED)") == [
        b"a BAD VANISHED needs UID FETCH with CHANGEDSINCE"]
    bob.close()
    plain = session(imap_server, qresync=False)
    plain.command("SELECT INBOX")
    assert plain.command(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {cached} VANISHED)") == [
        b"a BAD the VANISHED modifier needs ENABLE QRESYNC first"]
    assert plain.command("NOOP") == [b"a OK NOOP completed"]
    plain.close()


def test_expunge_is_vanished_for_qresync_sessions_only(imap_server: ImapServer) -> None:
    for n in range(1, 5):
        imap_server.deliver(message(n))
    imap_server.claim_recent()
    bob, watcher, plain = session(imap_server), session(imap_server), \
        session(imap_server, qresync=False)
    for client in (bob, watcher, plain):
        client.command("SELECT INBOX")
    # A flag change by the QRESYNC session names the UID even for STORE by number.
    assert bob.command("STORE 2 +FLAGS (\\Deleted)") == [
        b"* 2 FETCH (UID 2 FLAGS (\\Deleted) MODSEQ (%d))" % modseq(imap_server, 2),
        b"a OK STORE completed"]
    bob.command("STORE 3 +FLAGS.SILENT (\\Deleted)")
    assert bob.command("EXPUNGE") == [
        b"* VANISHED 2:3",
        b"a OK [HIGHESTMODSEQ %d] EXPUNGE completed" % folder(imap_server).highestmodseq]
    # Flag changes of messages that are gone by now are not worth telling.
    assert watcher.command("NOOP") == [b"* VANISHED 2:3", b"a OK NOOP completed"]
    assert plain.command("NOOP") == [b"* 3 EXPUNGE", b"* 2 EXPUNGE", b"a OK NOOP completed"]
    # MOVE: VANISHED too, and where the client stands.
    drafts = folder(imap_server, "Drafts")
    assert bob.command("MOVE 2 Drafts") == [
        b"* OK [COPYUID %d 4 1] moved" % drafts.uidvalidity,
        b"* VANISHED 4",
        b"a OK [HIGHESTMODSEQ %d] MOVE completed" % folder(imap_server).highestmodseq]
    assert watcher.command("NOOP") == [b"* VANISHED 4", b"a OK NOOP completed"]
    assert plain.command("NOOP") == [b"* 2 EXPUNGE", b"a OK NOOP completed"]
    for client in (bob, watcher, plain):
        client.close()


def test_expunge_and_flags_from_elsewhere_while_idle(imap_server: ImapServer) -> None:
    for n in range(1, 4):
        imap_server.deliver(message(n))
    imap_server.claim_recent()
    bob = session(imap_server)
    bob.command("SELECT INBOX")
    bob.send(b"i IDLE\r\n")
    assert bob.line() == b"+ idling"
    imap_server.store.messages.set_flags("example", "bob", "Inbox", [3], ["\\Flagged"])
    assert bob.line() == b"* 3 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ (%d))" % \
        modseq(imap_server, 3)
    imap_server.store.messages.expunge("example", "bob", "Inbox", [1])
    assert bob.line() == b"* VANISHED 1"
    bob.send(b"DONE\r\n")
    assert bob.line() == b"i OK IDLE terminated"
    assert bob.command("FETCH 1:* UID") == [b"* 1 FETCH (UID 2)", b"* 2 FETCH (UID 3)",
                                            b"a OK FETCH completed"]
    bob.close()


def test_held_back_expunge_lowers_highestmodseq(imap_server: ImapServer) -> None:
    """During FETCH by number an expunge by another session is held back; the client
    is told a HIGHESTMODSEQ below it, so resynchronising from there cannot miss it."""
    for n in range(1, 4):
        imap_server.deliver(message(n))
    imap_server.claim_recent()
    bob = session(imap_server)
    bob.command("SELECT INBOX")
    before = folder(imap_server).highestmodseq
    imap_server.store.messages.expunge("example", "bob", "Inbox", [1])
    imap_server.store.messages.set_flags("example", "bob", "Inbox", [3], ["\\Seen"])
    assert bob.command("FETCH 3 (FLAGS)") == [
        b"* 3 FETCH (FLAGS ())",
        b"* 3 FETCH (UID 3 FLAGS (\\Seen) MODSEQ (%d))" % modseq(imap_server, 3),
        b"* OK [HIGHESTMODSEQ %d] expunges held back" % before,
        b"a OK FETCH completed"]
    # Also after the session's own STORE, whose MODSEQ is above the expunge's.
    assert bob.command("STORE 2 +FLAGS (\\Flagged)") == [
        b"* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (%d))" % modseq(imap_server, 2),
        b"* OK [HIGHESTMODSEQ %d] expunges held back" % before,
        b"a OK STORE completed"]
    assert bob.command("NOOP") == [b"* VANISHED 1", b"a OK NOOP completed"]
    assert bob.command("NOOP") == [b"a OK NOOP completed"]
    bob.close()


def test_closed_on_reselect_and_bad_parameters(imap_server: ImapServer) -> None:
    imap_server.deliver(message(1))
    info = folder(imap_server)
    plain = session(imap_server, qresync=False)
    assert plain.command("SELECT INBOX")[-1] == b"a OK [READ-WRITE] SELECT completed"
    # QRESYNC without ENABLE QRESYNC: BAD, and INBOX stays selected.
    assert plain.command(f"SELECT Drafts (QRESYNC ({info.uidvalidity} 1))") == [
        b"a BAD SELECT with QRESYNC needs ENABLE QRESYNC first"]
    assert plain.command("FETCH 1 UID") == [b"* 1 FETCH (UID 1)", b"a OK FETCH completed"]
    plain.close()
    bob = session(imap_server)
    bob.command("SELECT INBOX")
    lines = bob.command(f"EXAMINE Drafts (QRESYNC ({info.uidvalidity} 1))")
    assert lines[0] == b"* OK [CLOSED] previous mailbox closed"
    assert lines[-1] == b"a OK [READ-ONLY] EXAMINE completed"
    bad = {
        "SELECT INBOX (QRESYNC (0 1))": b"a BAD a UIDVALIDITY must not be 0",
        "SELECT INBOX (QRESYNC (1 0))": b"a BAD a mod-sequence must not be 0",
        "SELECT INBOX (QRESYNC (4294967296 1))":
            b"a BAD QRESYNC UIDVALIDITY is beyond 4294967295",
        "SELECT INBOX (QRESYNC (1 9223372036854775808))": b"a BAD a mod-sequence is too large",
        "SELECT INBOX (QRESYNC (1 2 1:*))": b"a BAD QRESYNC known UIDs may not contain '*' "
                                            b"or '$'",
        "SELECT INBOX (QRESYNC (1 2 1:4 (1:2 1:3)))":
            b"a BAD QRESYNC known sequence set and known UID set differ in size",
        "SELECT INBOX (QRESYNC (1 2 (1:2 *)))":
            b"a BAD QRESYNC known UID set may not contain '*' or '$'",
        "SELECT INBOX (QRESYNC (1 2 (1:2)))": b"a BAD expected a space at ')))'",
        "SELECT INBOX (QRESYNC (1))": b"a BAD expected a space at '))'",
        "SELECT INBOX (QRESYNC 1 2)": b"a BAD expected '(' at '1 2)'",
        "SELECT INBOX (QRESYNC (1 2 1:2 3))":
            b"a BAD expected '(' of the QRESYNC sequence match data at '3))'",
        "SELECT INBOX (QRESYNC (1 2) XYZ)": b"a BAD unknown SELECT parameter XYZ",
    }
    for command, answer in bad.items():
        assert bob.command(command) == [answer], command
    # Still selected (Drafts, read-only) and the connection is fine.
    assert bob.command("NOOP") == [b"a OK NOOP completed"]
    assert bob.command("STORE 1 +FLAGS (x)") == [
        b"a NO [READ-ONLY] mailbox is read-only (EXAMINE)"]
    assert bob.command("FETCH 1 UID") == [
        b"a BAD invalid sequence set '1': message number 1 does not exist"]     # empty Drafts
    bob.close()


def test_removals_from_before_the_upgrade(imap_server: ImapServer) -> None:
    """A data directory upgraded to schema 7 has no record of older expunges: asking
    from before the upgrade gives every absent UID (a superset), never too little."""
    for n in range(1, 6):
        imap_server.deliver(message(n))
    imap_server.store.messages.expunge("example", "bob", "Inbox", [2])
    info = folder(imap_server)
    with imap_server.store.transaction() as conn:    # what migration 7 leaves behind
        conn.execute("DELETE FROM expunged")
        conn.execute("UPDATE folder SET expunged_floor=highestmodseq")
    imap_server.store.messages.expunge("example", "bob", "Inbox", [4])
    bob = session(imap_server)
    lines = after_highestmodseq(bob.command(
        f"SELECT INBOX (QRESYNC ({info.uidvalidity} {info.highestmodseq}))"))
    assert lines == [b"* VANISHED (EARLIER) 4", b"a OK [READ-WRITE] SELECT completed"]
    lines = after_highestmodseq(bob.command(f"SELECT INBOX (QRESYNC ({info.uidvalidity} 1))"))
    assert lines[0] == b"* VANISHED (EARLIER) 2,4"
    assert [line.split(b" (UID ")[1].split()[0] for line in lines[1:-1]] == [b"1", b"3", b"5"]
    bob.close()


def test_imaplib_client_resynchronises(imap_server: ImapServer,
                                       changed: tuple[int, int]) -> None:
    """A stock client (imaplib) sends the commands and reads the answers it files
    under VANISHED and FETCH."""
    import imaplib

    from tests.servers import PASSWORD
    uidvalidity, cached = changed
    client = imaplib.IMAP4(imap_server.host, imap_server.port)
    try:
        client.login("bob@example", PASSWORD)
        assert b"QRESYNC" in client.capability()[1][0].split()
        typ, data = client._simple_command("ENABLE", "QRESYNC")
        assert typ == "OK" and client._untagged_response(typ, data, "ENABLED")[1] == \
            [b"QRESYNC"]
        typ, data = client._simple_command("SELECT", f"INBOX (QRESYNC ({uidvalidity} "
                                                     f"{cached}))")
        assert typ == "OK"
        assert client.untagged_responses["VANISHED"] == [b"(EARLIER) 3,5"]
        assert client.untagged_responses["FETCH"] == [
            b"2 (UID 2 FLAGS (\\Seen) MODSEQ (%d))" % modseq(imap_server, 2),
            b"4 (UID 6 FLAGS ($Work) MODSEQ (%d))" % modseq(imap_server, 6)]
        client.untagged_responses.clear()
        client.state = "SELECTED"          # what imaplib's own select() would set
        typ, data = client.uid("STORE", "1", "+FLAGS.SILENT", "(\\Deleted)")
        assert typ == "OK"
        typ, data = client.expunge()
        assert typ == "OK" and client.untagged_responses["VANISHED"] == [b"1"]
        client.logout()
    finally:
        if client.state != "LOGOUT":
            client.shutdown()
