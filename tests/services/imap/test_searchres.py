"""SEARCHRES (RFC 5182): ``SEARCH RETURN (SAVE)`` keeps the result, ``$`` names it in
FETCH, STORE, COPY, MOVE, SEARCH, UID EXPUNGE and their UID forms; expunges leave it,
SELECT empties it, a failed SAVE empties it. Real service on loopback, exact responses."""

from __future__ import annotations

import imaplib

from tests.services.imap.conftest import PASSWORD, ImapServer, RawImap, message


def _fill(server: ImapServer, n: int = 5, flagged: tuple[int, ...] = (2, 4)) -> None:
    for i in range(1, n + 1):
        server.deliver(message(i), flags=("\\Flagged",) if i in flagged else ())
    server.claim_recent()           # no \Recent in the FLAGS compared below


def _validity(server: ImapServer, name: str) -> int:
    return next(f.uidvalidity for f in server.store.messages.list_folders("example", "bob")
                if f.name == name)


def test_capability_lists_searchres(bob: RawImap) -> None:
    assert b" SEARCHRES" in bob.command("CAPABILITY")[0]


def test_save_alone_answers_nothing_then_fetch_and_uid_fetch(imap_server: ImapServer,
                                                            bob: RawImap) -> None:
    _fill(imap_server)
    bob.command("SELECT INBOX")
    assert bob.command("SEARCH RETURN (SAVE) FLAGGED") == [b"a OK SEARCH completed"]
    assert bob.command("FETCH $ (UID FLAGS)") == [
        b"* 2 FETCH (UID 2 FLAGS (\\Flagged))", b"* 4 FETCH (UID 4 FLAGS (\\Flagged))",
        b"a OK FETCH completed"]
    assert bob.command("UID FETCH $ FLAGS") == [
        b"* 2 FETCH (UID 2 FLAGS (\\Flagged))", b"* 4 FETCH (UID 4 FLAGS (\\Flagged))",
        b"a OK UID FETCH completed"]
    # UID SEARCH saves the same way; the ESEARCH response still comes with ALL.
    assert bob.command("UID SEARCH RETURN (SAVE ALL) NOT FLAGGED") == [
        b'* ESEARCH (TAG "a") UID ALL 1,3,5', b"a OK UID SEARCH completed"]
    assert bob.command("FETCH $ UID") == [
        b"* 1 FETCH (UID 1)", b"* 3 FETCH (UID 3)", b"* 5 FETCH (UID 5)",
        b"a OK FETCH completed"]


def test_pipelined_search_and_fetch(imap_server: ImapServer, bob: RawImap) -> None:
    _fill(imap_server)
    bob.command("SELECT INBOX")
    bob.send(b"s SEARCH RETURN (SAVE) UID 3:4\r\nf FETCH $ UID\r\n")
    assert bob.until("s") == [b"s OK SEARCH completed"]
    assert bob.until("f") == [b"* 3 FETCH (UID 3)", b"* 4 FETCH (UID 4)",
                              b"f OK FETCH completed"]


def test_store_copy_move_with_saved_result(imap_server: ImapServer, bob: RawImap) -> None:
    _fill(imap_server)
    bob.command("SELECT INBOX")
    bob.command("SEARCH RETURN (SAVE) FLAGGED")
    assert bob.command("STORE $ +FLAGS (\\Seen)") == [
        b"* 2 FETCH (FLAGS (\\Flagged \\Seen))", b"* 4 FETCH (FLAGS (\\Flagged \\Seen))",
        b"a OK STORE completed"]
    assert bob.command("UID STORE $ -FLAGS.SILENT (\\Flagged)") == [
        b"a OK UID STORE completed"]
    assert [m.flags for m in imap_server.messages()] == [
        (), ("\\Seen",), (), ("\\Seen",), ()]
    assert bob.command("CREATE Keep") == [b"a OK CREATE completed"]
    keep = _validity(imap_server, "Keep")
    assert bob.command("COPY $ Keep") == [
        b"a OK [COPYUID %d 2,4 1,2] COPY completed" % keep]
    assert bob.command("UID MOVE $ Keep") == [
        b"* OK [COPYUID %d 2,4 3,4] moved" % keep, b"* 4 EXPUNGE", b"* 2 EXPUNGE",
        b"a OK UID MOVE completed"]
    assert len(imap_server.messages("Keep")) == 4
    # The moved messages left the saved result: $ is now empty.
    assert bob.command("FETCH $ UID") == [b"a OK FETCH completed"]
    assert bob.command("UID SEARCH $") == [b"* SEARCH", b"a OK UID SEARCH completed"]


def test_search_with_dollar_and_other_keys(imap_server: ImapServer, bob: RawImap) -> None:
    _fill(imap_server)
    bob.command("SELECT INBOX")
    bob.command("STORE 1,2 +FLAGS.SILENT (\\Seen)")
    bob.command("SEARCH RETURN (SAVE) FLAGGED")
    assert bob.command("SEARCH $ SEEN") == [b"* SEARCH 2", b"a OK SEARCH completed"]
    assert bob.command("SEARCH OR $ 5") == [b"* SEARCH 2 4 5", b"a OK SEARCH completed"]
    assert bob.command("SEARCH NOT $") == [b"* SEARCH 1 3 5", b"a OK SEARCH completed"]
    assert bob.command("UID SEARCH UID $") == [b"* SEARCH 2 4",
                                               b"a OK UID SEARCH completed"]
    # A search on $ that saves replaces $ with its own result.
    assert bob.command("SEARCH RETURN (SAVE COUNT) $ UNSEEN") == [
        b'* ESEARCH (TAG "a") COUNT 1', b"a OK SEARCH completed"]
    assert bob.command("FETCH $ UID") == [b"* 4 FETCH (UID 4)", b"a OK FETCH completed"]


def test_expunge_removes_from_saved_result(imap_server: ImapServer, bob: RawImap) -> None:
    _fill(imap_server)
    bob.command("SELECT INBOX")
    bob.command("SEARCH RETURN (SAVE) 2:4")
    bob.command("STORE 3 +FLAGS.SILENT (\\Deleted)")
    assert bob.command("EXPUNGE") == [b"* 3 EXPUNGE", b"a OK EXPUNGE completed"]
    # Sequence numbers moved: $ still names UIDs 2 and 4 (now messages 2 and 3).
    assert bob.command("FETCH $ UID") == [b"* 2 FETCH (UID 2)", b"* 3 FETCH (UID 4)",
                                          b"a OK FETCH completed"]
    # Another session expunges UID 4; once announced it is gone from $ as well.
    other = RawImap(imap_server.host, imap_server.port)
    other.login()
    other.command("SELECT INBOX")
    other.command("UID STORE 4 +FLAGS.SILENT (\\Deleted)")
    assert other.command("EXPUNGE") == [b"* 3 EXPUNGE", b"a OK EXPUNGE completed"]
    other.close()
    assert bob.command("NOOP") == [b"* 3 EXPUNGE", b"a OK NOOP completed"]
    assert bob.command("UID FETCH $ UID") == [b"* 2 FETCH (UID 2)",
                                              b"a OK UID FETCH completed"]
    # UID EXPUNGE $ expunges only what $ names.
    bob.command("STORE 1:* +FLAGS.SILENT (\\Deleted)")
    assert bob.command("UID EXPUNGE $") == [b"* 2 EXPUNGE", b"a OK UID EXPUNGE completed"]
    assert [m.uid for m in imap_server.messages()] == [1, 5]


def test_reset_on_select_examine_and_unselect(imap_server: ImapServer, bob: RawImap) -> None:
    _fill(imap_server)
    bob.command("SELECT INBOX")
    bob.command("SEARCH RETURN (SAVE) ALL")
    assert len(bob.command("FETCH $ UID")) == 6
    bob.command("SELECT INBOX")
    assert bob.command("FETCH $ UID") == [b"a OK FETCH completed"]
    bob.command("SEARCH RETURN (SAVE) ALL")
    bob.command("EXAMINE INBOX")
    assert bob.command("FETCH $ UID") == [b"a OK FETCH completed"]
    bob.command("SEARCH RETURN (SAVE) ALL")
    assert bob.command("UNSELECT") == [b"a OK UNSELECT completed"]
    bob.command("SELECT INBOX")
    assert bob.command("SEARCH $") == [b"* SEARCH", b"a OK SEARCH completed"]
    bob.command("SEARCH RETURN (SAVE) ALL")
    bob.command("CLOSE")
    bob.command("SELECT INBOX")
    assert bob.command("UID SEARCH RETURN (COUNT) $") == [
        b'* ESEARCH (TAG "a") UID COUNT 0', b"a OK UID SEARCH completed"]


def test_nothing_saved_is_the_empty_set(imap_server: ImapServer, bob: RawImap) -> None:
    _fill(imap_server)
    bob.command("SELECT INBOX")
    assert bob.command("FETCH $ FLAGS") == [b"a OK FETCH completed"]
    assert bob.command("STORE $ +FLAGS (\\Deleted)") == [b"a OK STORE completed"]
    assert bob.command("COPY $ INBOX") == [b"a OK COPY completed (no messages)"]
    assert bob.command("UID EXPUNGE $") == [b"a OK UID EXPUNGE completed"]
    assert bob.command("SEARCH $") == [b"* SEARCH", b"a OK SEARCH completed"]
    assert len(imap_server.messages()) == 5
    assert all(m.flags in ((), ("\\Flagged",)) for m in imap_server.messages())


def test_save_min_max_table(imap_server: ImapServer, bob: RawImap) -> None:
    _fill(imap_server)
    bob.command("SELECT INBOX")
    assert bob.command("SEARCH RETURN (SAVE MIN) NOT FLAGGED") == [
        b'* ESEARCH (TAG "a") MIN 1', b"a OK SEARCH completed"]
    assert bob.command("FETCH $ UID") == [b"* 1 FETCH (UID 1)", b"a OK FETCH completed"]
    assert bob.command("UID SEARCH RETURN (MAX SAVE) NOT FLAGGED") == [
        b'* ESEARCH (TAG "a") UID MAX 5', b"a OK UID SEARCH completed"]
    assert bob.command("FETCH $ UID") == [b"* 5 FETCH (UID 5)", b"a OK FETCH completed"]
    assert bob.command("SEARCH RETURN (SAVE MIN MAX) NOT FLAGGED") == [
        b'* ESEARCH (TAG "a") MIN 1 MAX 5', b"a OK SEARCH completed"]
    assert bob.command("FETCH $ UID") == [b"* 1 FETCH (UID 1)", b"* 5 FETCH (UID 5)",
                                          b"a OK FETCH completed"]
    # With COUNT (or ALL) every message found is saved, MIN or not.
    assert bob.command("SEARCH RETURN (SAVE MIN COUNT) NOT FLAGGED") == [
        b'* ESEARCH (TAG "a") MIN 1 COUNT 3', b"a OK SEARCH completed"]
    assert bob.command("FETCH $ UID") == [b"* 1 FETCH (UID 1)", b"* 3 FETCH (UID 3)",
                                          b"* 5 FETCH (UID 5)", b"a OK FETCH completed"]
    # Nothing found: $ is empty, and no MIN is reported.
    assert bob.command("SEARCH RETURN (SAVE MIN) DELETED") == [
        b'* ESEARCH (TAG "a")', b"a OK SEARCH completed"]
    assert bob.command("FETCH $ UID") == [b"a OK FETCH completed"]


def test_sort_saves_too(imap_server: ImapServer, bob: RawImap) -> None:
    for n, subject in enumerate(["b", "c", "a"], 1):
        imap_server.deliver(message(n, subject=subject))
    bob.command("SELECT INBOX")
    assert bob.command("SORT RETURN (SAVE) (SUBJECT) UTF-8 ALL") == [
        b"a OK SORT completed"]
    assert bob.command("FETCH $ UID") == [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 2)",
                                          b"* 3 FETCH (UID 3)", b"a OK FETCH completed"]
    # MIN and MAX of a SORT are the first and the last in sort order (RFC 5267).
    assert bob.command("UID SORT RETURN (SAVE MIN) (SUBJECT) UTF-8 ALL") == [
        b'* ESEARCH (TAG "a") UID MIN 3', b"a OK UID SORT completed"]
    assert bob.command("FETCH $ UID") == [b"* 3 FETCH (UID 3)", b"a OK FETCH completed"]
    assert bob.command("SORT RETURN (ALL) (SUBJECT) UTF-8 ALL") == [
        b'* ESEARCH (TAG "a") ALL 3,1:2', b"a OK SORT completed"]
    assert bob.command("SORT (SUBJECT) UTF-8 $") == [b"* SORT 3", b"a OK SORT completed"]
    assert bob.command("THREAD ORDEREDSUBJECT UTF-8 $") == [b"* THREAD (3)",
                                                            b"a OK THREAD completed"]


def test_failed_save_empties_the_result(imap_server: ImapServer, bob: RawImap) -> None:
    _fill(imap_server)
    bob.command("SELECT INBOX")

    def saved_all() -> None:
        bob.command("SEARCH RETURN (SAVE) ALL")
        assert len(bob.command("FETCH $ UID")) == 6

    saved_all()
    assert bob.command("SEARCH RETURN (SAVE) CHARSET KOI8-R TEXT x") == [
        b"a NO [BADCHARSET (US-ASCII UTF-8)] charset KOI8-R is not supported"]
    assert bob.command("FETCH $ UID") == [b"a OK FETCH completed"]
    saved_all()
    assert bob.command("SEARCH RETURN (SAVE) FROBNICATE") == [
        b"a BAD unknown search key FROBNICATE"]
    assert bob.command("FETCH $ UID") == [b"a OK FETCH completed"]
    saved_all()
    assert bob.command("SEARCH RETURN (SAVE PARTIAL) ALL") == [
        b"a BAD unknown RETURN option PARTIAL"]
    assert bob.command("FETCH $ UID") == [b"a OK FETCH completed"]
    saved_all()
    assert bob.command("SORT RETURN (SAVE) (NOSUCH) UTF-8 ALL") == [
        b"a BAD invalid SORT: unknown sort criterion 'NOSUCH'"]
    assert bob.command("FETCH $ UID") == [b"a OK FETCH completed"]
    saved_all()
    # Failures without SAVE, and successes without SAVE, leave $ alone.
    assert bob.command("SEARCH CHARSET KOI8-R TEXT x")[0].startswith(b"a NO [BADCHARSET")
    assert bob.command("SEARCH FROBNICATE") == [b"a BAD unknown search key FROBNICATE"]
    assert bob.command("SEARCH RETURN (MIN) 1") == [b'* ESEARCH (TAG "a") MIN 1',
                                                    b"a OK SEARCH completed"]
    assert len(bob.command("FETCH $ UID")) == 6


def test_dollar_syntax_errors(imap_server: ImapServer, bob: RawImap) -> None:
    _fill(imap_server)
    bob.command("SELECT INBOX")
    assert bob.command("FETCH $,1 UID") == [b"a BAD expected a sequence set at '$,1 UID'"]
    assert bob.command("FETCH 1:$ UID") == [b"a BAD expected a sequence set at '1:$ UID'"]
    assert bob.command("NOOP") == [b"a OK NOOP completed"]


def test_imaplib_client_uses_saved_result(imap_server: ImapServer) -> None:
    _fill(imap_server)
    client = imaplib.IMAP4(imap_server.host, imap_server.port, timeout=10)
    try:
        client.login("bob@example", PASSWORD)
        assert b" SEARCHRES " in client.capability()[1][0]
        client.select("INBOX")
        assert client._simple_command("SEARCH", "RETURN", "(SAVE)", "FLAGGED")[0] == "OK"
        typ, data = client.fetch("$", "(UID)")
        assert typ == "OK" and data == [b"2 (UID 2)", b"4 (UID 4)"]
    finally:
        client.logout()
