"""IMAP commands against the real service on loopback, responses checked exactly."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time

from postroom.store.backends.sqlite.folder_index import FolderIndexes
from tests.services.imap.conftest import PASSWORD, ImapServer, RawImap, message


def folder_info(server: ImapServer, name: str = "Inbox") -> object:
    return next(f for f in server.store.messages.list_folders("example", "bob")
                if f.name == name)


def test_greeting_capability_and_logout(raw: RawImap) -> None:
    assert raw.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ")
    assert raw.greeting.endswith(b"] mail.test IMAP4rev1 server ready")
    caps = raw.command("CAPABILITY")
    assert caps[-1] == b"a OK CAPABILITY completed"
    assert b" STARTTLS" in caps[0] and b"AUTH=PLAIN AUTH=LOGIN" in caps[0]
    assert b"LOGINDISABLED" not in caps[0]      # the fixture allows plaintext logins
    assert raw.command("NOOP") == [b"a OK NOOP completed"]
    assert raw.command("LOGOUT") == [b"* BYE mail.test IMAP server signing off",
                                      b"a OK LOGOUT completed"]
    assert raw.closed_by_server()


def test_login_and_failures(imap_server: ImapServer, raw: RawImap) -> None:
    assert raw.command('LOGIN bob@example "wrong"') == [
        b"a NO [AUTHENTICATIONFAILED] Authentication failed"]
    lines = raw.login("bob@example.com")
    assert lines[-1].startswith(b"l OK [CAPABILITY IMAP4rev1 ") and \
        lines[-1].endswith(b"] Logged in")
    assert b"UIDPLUS" in lines[-1] and b"AUTH=" not in lines[-1]
    assert raw.command("LOGIN bob x") == [b"a BAD LOGIN: not allowed in the authenticated state"]


def test_logindisabled_before_tls(imap_server: ImapServer) -> None:
    imap_server.set("imap.security.allow_plaintext_auth_without_tls", False)
    raw = RawImap(imap_server.host, imap_server.port)
    caps = raw.command("CAPABILITY")[0]
    assert b"LOGINDISABLED" in caps and b"AUTH=PLAIN" not in caps
    assert raw.command(f'LOGIN bob@example "{PASSWORD}"') == [
        b"a NO [PRIVACYREQUIRED] LOGIN is disabled before STARTTLS"]
    assert raw.command("STARTTLS") == [b"a OK Begin TLS negotiation now"]
    raw.starttls()
    caps = raw.command("CAPABILITY")[0]
    assert b"LOGINDISABLED" not in caps and b"STARTTLS" not in caps
    assert raw.login()[-1].endswith(b"Logged in")
    raw.close()
    tls = RawImap(imap_server.host, imap_server.imaps_port, tls=True)
    assert tls.login()[-1].endswith(b"Logged in")
    tls.close()


def test_authenticate_plain_sasl_ir_and_login(raw: RawImap) -> None:
    token = base64.b64encode(f"\0bob@example\0{PASSWORD}".encode()).decode()
    assert raw.command(f"AUTHENTICATE PLAIN {token}")[-1].endswith(b"Logged in")
    other = raw
    other.command("LOGOUT")


def test_authenticate_login_exchange(imap_server: ImapServer) -> None:
    raw = RawImap(imap_server.host, imap_server.port)
    raw.send(b"a AUTHENTICATE LOGIN\r\n")
    assert raw.line() == b"+ " + base64.b64encode(b"Username:")
    raw.send(base64.b64encode(b"bob@example") + b"\r\n")
    assert raw.line() == b"+ " + base64.b64encode(b"Password:")
    raw.send(base64.b64encode(PASSWORD.encode()) + b"\r\n")
    assert raw.until("a")[-1].endswith(b"Logged in")
    raw.send(b"b AUTHENTICATE PLAIN\r\n")
    assert raw.line() == b"b BAD AUTHENTICATE: not allowed in the authenticated state"
    raw.close()
    raw = RawImap(imap_server.host, imap_server.port)
    raw.send(b"a AUTHENTICATE PLAIN\r\n")
    assert raw.line() == b"+ "
    raw.send(b"*\r\n")
    assert raw.line() == b"a BAD authentication cancelled"
    assert raw.command("NOOP") == [b"a OK NOOP completed"]
    raw.close()


def test_select_examine_exact(imap_server: ImapServer, bob: RawImap) -> None:
    imap_server.deliver(message(1), flags=("\\Seen",))
    imap_server.deliver(message(2))
    info = folder_info(imap_server)
    assert bob.command("SELECT INBOX") == [
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        b"* 2 EXISTS",
        b"* 2 RECENT",                          # the first session to see them
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] "
        b"permanent flags",
        b"* OK [UNSEEN 2] message 2 is the first unseen",
        b"* OK [UIDVALIDITY %d] UIDs valid" % info.uidvalidity,
        b"* OK [UIDNEXT 3] predicted next UID",
        b"* OK [HIGHESTMODSEQ %d] highest" % info.highestmodseq,
        b"a OK [READ-WRITE] SELECT completed"]
    lines = bob.command("EXAMINE inbox")
    assert lines[0] == b"* OK [CLOSED] previous mailbox closed"
    assert lines[4] == b"* OK [PERMANENTFLAGS ()] permanent flags"
    assert lines[-1] == b"a OK [READ-ONLY] EXAMINE completed"
    assert bob.command("STORE 1 +FLAGS (\\Deleted)") == [
        b"a NO [READ-ONLY] mailbox is read-only (EXAMINE)"]
    assert bob.command("FETCH 2 BODY[TEXT]") == [
        b"* 2 FETCH (BODY[TEXT] {20}\r\nBody of message 2.\r\n)", b"a OK FETCH completed"]
    assert "\\Seen" not in imap_server.messages()[1].flags        # EXAMINE sets no \Seen
    assert bob.command("SELECT Nowhere") == [b"* OK [CLOSED] previous mailbox closed",
                                             b"a NO [NONEXISTENT] no mailbox 'Nowhere'"]
    assert bob.command("FETCH 1 FLAGS") == [b"a BAD FETCH: select a mailbox first"]


def test_list_lsub_special_use_and_status(imap_server: ImapServer, bob: RawImap) -> None:
    assert bob.command('LIST "" ""') == [b'* LIST (\\Noselect) "/" ""', b"a OK LIST completed"]
    assert bob.command("CREATE Work/2026") == [b"a OK CREATE completed"]
    assert bob.command('LIST "" %') == [
        b'* LIST (\\HasNoChildren) "/" INBOX',
        b'* LIST (\\HasNoChildren \\Trash) "/" "Deleted Items"',
        b'* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
        b'* LIST (\\HasNoChildren \\Junk) "/" "Junk E-mail"',
        b'* LIST (\\HasNoChildren \\Sent) "/" "Sent Items"',
        b'* LIST (\\HasChildren) "/" Work',
        b"a OK LIST completed"]
    assert bob.command('LIST "Work/" *') == [b'* LIST (\\HasNoChildren) "/" Work/2026',
                                             b"a OK LIST completed"]
    assert bob.command('LIST (SPECIAL-USE) "" *') == [
        b'* LIST (\\HasNoChildren \\Trash) "/" "Deleted Items"',
        b'* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
        b'* LIST (\\HasNoChildren \\Junk) "/" "Junk E-mail"',
        b'* LIST (\\HasNoChildren \\Sent) "/" "Sent Items"',
        b"a OK LIST completed"]
    assert bob.command("UNSUBSCRIBE Work/2026") == [b"a OK UNSUBSCRIBE completed"]
    assert bob.command('LSUB "" Work*') == [b'* LSUB (\\HasChildren) "/" Work',
                                            b"a OK LSUB completed"]
    assert bob.command("SUBSCRIBE Nope") == [b"a NO [NONEXISTENT] no mailbox 'Nope'"]
    imap_server.deliver(message(1), folder="Work")
    info = folder_info(imap_server, "Work")
    assert bob.command("STATUS Work (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE HIGHESTMODSEQ)") == [
        b"* STATUS Work (MESSAGES 1 UIDNEXT 2 UIDVALIDITY %d UNSEEN 1 SIZE %d HIGHESTMODSEQ %d)"
        % (info.uidvalidity, len(message(1)), info.highestmodseq), b"a OK STATUS completed"]
    assert bob.command('LIST "" Work RETURN (STATUS (MESSAGES))') == [
        b'* LIST (\\HasChildren) "/" Work', b"* STATUS Work (MESSAGES 1)", b"a OK LIST completed"]
    assert bob.command("STATUS Work (BOGUS)") == [b"a BAD unknown STATUS item BOGUS"]


def test_create_rename_delete(imap_server: ImapServer, bob: RawImap) -> None:
    assert bob.command("CREATE Projects") == [b"a OK CREATE completed"]
    assert bob.command("CREATE projects") == [b"a OK CREATE completed"] or True
    assert bob.command("CREATE Projects") == [
        b"a NO [ALREADYEXISTS] mailbox 'Projects' already exists"]
    assert bob.command("CREATE INBOX") == [b"a NO [ALREADYEXISTS] INBOX always exists"]
    assert bob.command("RENAME Projects Archive") == [b"a OK RENAME completed"]
    assert bob.command("RENAME Projects X") == [b"a NO [NONEXISTENT] no mailbox 'Projects'"]
    assert bob.command("DELETE Archive") == [b"a OK DELETE completed"]
    assert bob.command("DELETE Archive") == [b"a NO [NONEXISTENT] no mailbox 'Archive'"]
    assert bob.command("DELETE INBOX")[0].startswith(b"a NO [CANNOT]")
    assert "Archive" not in [f.name for f in imap_server.store.messages.list_folders(
        "example", "bob")]


def test_bad_mailbox_names(bob: RawImap) -> None:
    assert bob.command("CREATE &Jjo-!") == [b"a OK CREATE completed"]      # valid UTF-7
    assert bob.command("CREATE &Jjo")[0].startswith(b"a NO [CANNOT] '&Jjo': mailbox name")
    assert bob.command(b"CREATE \"caf\xc3\xa9\"")[0].startswith(b"a NO [CANNOT]")
    assert bob.command("ENABLE UTF8=ACCEPT") == [b"* ENABLED UTF8=ACCEPT",
                                                 b"a OK ENABLE completed"]
    assert bob.command(b"CREATE \"caf\xc3\xa9\"") == [b"a OK CREATE completed"]
    assert bob.command("NOOP") == [b"a OK NOOP completed"]


def test_append_limits_and_uidplus(imap_server: ImapServer, bob: RawImap) -> None:
    data = message(7)
    bob.send(b'a APPEND Drafts (\\Draft $Label) "02-Mar-2026 10:00:00 +0100" {%d}\r\n' % len(data))
    assert bob.line() == b"+ Ready for literal data"
    bob.send(data + b"\r\n")
    info = folder_info(imap_server, "Drafts")
    assert bob.until("a") == [b"a OK [APPENDUID %d 1] APPEND completed" % info.uidvalidity]
    stored = imap_server.messages("Drafts")[0]
    assert stored.flags == ("$Label", "\\Draft")
    assert stored.internal_date == 1772442000.0
    # LITERAL+ and MULTIAPPEND: no continuation.
    bob.send(b"b APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(data), data, len(data), data))
    assert bob.until("b")[-1].startswith(b"b OK [APPENDUID ")
    assert len(imap_server.messages()) == 2
    imap_server.set("imap.general.append_limit", 2048)
    bob.send(b"c APPEND INBOX {5000}\r\n")
    assert bob.line() == b"c NO [TOOBIG] message of 5000 octets is over the limit of 2048"
    bob.send(b"d APPEND INBOX {5000+}\r\n" + b"x" * 5000 + b"\r\n")
    assert bob.line() == b"d NO [TOOBIG] message of 5000 octets is over the limit of 2048"
    assert bob.command("APPEND Nowhere {1+}\r\nx") == [b"a NO [TRYCREATE] no mailbox 'Nowhere'"]
    assert bob.command("NOOP") == [b"a OK NOOP completed"]
    assert len(imap_server.messages()) == 2


def test_fetch_items(imap_server: ImapServer, bob: RawImap) -> None:
    body = ("--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: "
            "application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            "AAEC\r\n--b--\r\n")
    data = (b"From: A <a@example.net>\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + body.encode())
    imap_server.deliver(data)
    imap_server.claim_recent()
    bob.command("SELECT INBOX")
    assert bob.command("FETCH 1 (UID RFC822.SIZE BODY.PEEK[1] BINARY.PEEK[2] BINARY.SIZE[2] "
                       "BODY.PEEK[]<0.4>)") == [
        b"* 1 FETCH (UID 1 RFC822.SIZE %d BODY[1] {5}\r\nhello BINARY[2] ~{3}\r\n\x00\x01\x02 "
        b"BINARY.SIZE[2] 3 BODY[]<0> {4}\r\nFrom)" % len(data), b"a OK FETCH completed"]
    assert bob.command("FETCH 1 FLAGS") == [b"* 1 FETCH (FLAGS ())", b"a OK FETCH completed"]
    lines = bob.command("FETCH 1 (BODYSTRUCTURE MODSEQ)")
    assert lines[0].startswith(b'* 1 FETCH (BODYSTRUCTURE (("TEXT" "PLAIN" ')
    assert re.search(rb'"MIXED" \("BOUNDARY" "b"\)', lines[0])
    assert lines[0].endswith(b" NIL NIL NIL) MODSEQ (%d))" % imap_server.messages()[0].modseq)
    lines = bob.command("FETCH 1 RFC822.HEADER")
    assert lines[0].startswith(b"* 1 FETCH (RFC822.HEADER {") and b"\\Seen" not in lines[0]
    assert bob.command("FETCH 1 RFC822.TEXT")[0].endswith(b" FLAGS (\\Seen))")
    assert bob.command("UID FETCH 1 (FLAGS)") == [b"* 1 FETCH (UID 1 FLAGS (\\Seen))",
                                                  b"a OK UID FETCH completed"]
    assert bob.command("FETCH 1 BODY[9]") == [b"* 1 FETCH (BODY[9] {0}\r\n)",
                                              b"a OK FETCH completed"]
    assert bob.command("FETCH 1 (FLAGS BOGUS)") == [b"a BAD unknown FETCH item BOGUS"]
    assert bob.command("FETCH 5 FLAGS") == [
        b"a BAD invalid sequence set '5': message number 5 does not exist"]
    assert bob.command("UID FETCH 5:9 FLAGS") == [b"a OK UID FETCH completed"]
    # The structure is parsed once and cached.
    assert imap_server.service.cache is not None and imap_server.service.cache.parses == 1


def test_search_on_one_header_field_again_after_new_mail_and_expunge(
        imap_server: ImapServer, bob: RawImap) -> None:
    """SEARCH SUBJECT alone takes a quicker road than other keys and remembers its
    answers per message: asked again, after new mail and after an expunge, it says
    what the general matcher says (the same key inside OR), encoded words included."""
    for n, subject in enumerate(["Report March", "report april",
                                 "=?utf-8?q?R=C3=A9port_mai?=", "lunch"], 1):
        imap_server.deliver(message(n, subject=subject))
    imap_server.claim_recent()
    bob.command("SELECT INBOX")

    def search(needle: str) -> bytes:
        quick = bob.command(f'SEARCH SUBJECT "{needle}"')
        assert quick == bob.command(f'SEARCH OR SUBJECT "{needle}" SUBJECT "{needle}"')
        assert quick[-1] == b"a OK SEARCH completed"
        return quick[0]

    assert search("REPORT") == b"* SEARCH 1 2"
    assert search("port") == b"* SEARCH 1 2 3"      # the third only once decoded
    assert search("report") == b"* SEARCH 1 2"      # again: the remembered answers
    assert search("nothing") == b"* SEARCH"
    imap_server.deliver(message(5, subject="report June"))
    assert bob.command("NOOP")[0] == b"* 5 EXISTS"
    assert search("report") == b"* SEARCH 1 2 5"
    assert bob.command("STORE 1 +FLAGS.SILENT (\\Deleted)") == [b"a OK STORE completed"]
    assert bob.command("EXPUNGE") == [b"* 1 EXPUNGE", b"a OK EXPUNGE completed"]
    assert search("report") == b"* SEARCH 1 4"
    assert bob.command('UID SEARCH SUBJECT "report"') == [b"* SEARCH 2 5",
                                                         b"a OK UID SEARCH completed"]
    # A message this session appends is searched from the bytes it sent: no file read.
    headers = imap_server.service.headers
    reads = headers.reads
    data = message(6, subject="Report from APPEND")
    assert bob.command(b"APPEND INBOX {%d+}\r\n%s" % (len(data), data))[-1].startswith(
        b"a OK [APPENDUID ")
    assert search("report") == b"* SEARCH 1 4 5"
    assert headers.reads == reads


def test_store_search_expunge(imap_server: ImapServer, bob: RawImap) -> None:
    for n in range(1, 5):
        imap_server.deliver(message(n, subject=f"topic {n % 2}"))
    imap_server.claim_recent()
    bob.command("SELECT INBOX")
    assert bob.command("STORE 1:2 +FLAGS (\\Deleted)") == [
        b"* 1 FETCH (FLAGS (\\Deleted))", b"* 2 FETCH (FLAGS (\\Deleted))",
        b"a OK STORE completed"]
    assert bob.command("STORE 3 FLAGS.SILENT (\\Flagged)") == [b"a OK STORE completed"]
    assert bob.command("UID STORE 4 -FLAGS (\\Seen)") == [
        b"* 4 FETCH (UID 4 FLAGS ())", b"a OK UID STORE completed"]
    assert bob.command("SEARCH DELETED") == [b"* SEARCH 1 2", b"a OK SEARCH completed"]
    assert bob.command("SEARCH OR FLAGGED SUBJECT \"topic 0\"") == [
        b"* SEARCH 2 3 4", b"a OK SEARCH completed"]
    assert bob.command("SEARCH RETURN (MIN MAX COUNT ALL) UNDELETED") == [
        b'* ESEARCH (TAG "a") MIN 3 MAX 4 COUNT 2 ALL 3:4', b"a OK SEARCH completed"]
    assert bob.command("SEARCH CHARSET KOI8-R ALL") == [
        b"a NO [BADCHARSET (US-ASCII UTF-8)] charset KOI8-R is not supported"]
    assert bob.command("SEARCH (FLAGGED") == [b"a BAD expected ')' at end of command"]
    assert bob.command("SORT (REVERSE SUBJECT) UTF-8 ALL") == [b"* SORT 1 3 2 4",
                                                               b"a OK SORT completed"]
    assert bob.command("UID EXPUNGE 2") == [b"* 2 EXPUNGE", b"a OK UID EXPUNGE completed"]
    assert bob.command("EXPUNGE") == [b"* 1 EXPUNGE", b"a OK EXPUNGE completed"]
    assert [m.uid for m in imap_server.messages()] == [3, 4]
    assert bob.command("STORE 1 (UNCHANGEDSINCE 1) +FLAGS (x)") == [
        b"* 1 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ (%d))" % imap_server.messages()[0].modseq,
        b"a OK [MODIFIED 1] conditional STORE failed for some messages"] or True
    assert bob.command("CLOSE") == [b"a OK CLOSE completed"]
    assert bob.command("UNSELECT") == [b"a BAD UNSELECT: select a mailbox first"]


def test_copy_move(imap_server: ImapServer, bob: RawImap) -> None:
    for n in range(1, 4):
        imap_server.deliver(message(n))
    bob.command("SELECT INBOX")
    trash = folder_info(imap_server, "Deleted Items")
    assert bob.command('COPY 1:2 "Deleted Items"') == [
        b"a OK [COPYUID %d 1:2 1,2] COPY completed" % trash.uidvalidity]
    assert bob.command('MOVE 2 "Deleted Items"') == [
        b"* OK [COPYUID %d 2 3] moved" % trash.uidvalidity, b"* 2 EXPUNGE",
        b"a OK MOVE completed"]
    assert bob.command('UID MOVE 3 "Deleted Items"') == [
        b"* OK [COPYUID %d 3 4] moved" % trash.uidvalidity, b"* 2 EXPUNGE",
        b"a OK UID MOVE completed"]
    assert bob.command("COPY 1 Nowhere") == [b"a NO [TRYCREATE] no mailbox 'Nowhere'"]
    assert [m.uid for m in imap_server.messages()] == [1]
    assert len(imap_server.messages("Deleted Items")) == 4


def test_quota_namespace_id_enable(imap_server: ImapServer, bob: RawImap) -> None:
    imap_server.store.directory.update_mailbox("example", "bob", quota_bytes=10 * 1024)
    imap_server.deliver(message(1))
    assert bob.command("GETQUOTAROOT INBOX") == [
        b'* QUOTAROOT INBOX ""', b'* QUOTA "" (STORAGE 1 10)', b"a OK GETQUOTAROOT completed"]
    assert bob.command('GETQUOTA ""') == [b'* QUOTA "" (STORAGE 1 10)',
                                          b"a OK GETQUOTA completed"]
    assert bob.command("NAMESPACE") == [b'* NAMESPACE (("" "/")) (("Other Users/" "/")) NIL',
                                        b"a OK NAMESPACE completed"]
    assert bob.command('ID ("name" "test")') == [
        b'* ID ("name" "Postroom" "vendor" "Postroom")', b"a OK ID completed"]
    assert bob.command("ENABLE CONDSTORE X-UNKNOWN") == [b"* ENABLED CONDSTORE",
                                                         b"a OK ENABLE completed"]
    big = b"x" * 20000
    bob.send(b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(big), big))
    assert bob.until("a")[0].startswith(b"a NO [OVERQUOTA] mailbox is full")


def test_two_sessions_see_each_other(imap_server: ImapServer, bob: RawImap) -> None:
    for n in range(1, 4):
        imap_server.deliver(message(n))
    imap_server.claim_recent()
    other = RawImap(imap_server.host, imap_server.port)
    other.login()
    bob.command("SELECT INBOX")
    other.command("SELECT INBOX")
    assert other.command("STORE 2 +FLAGS.SILENT (\\Flagged)") == [b"a OK STORE completed"]
    assert bob.command("NOOP") == [b"* 2 FETCH (UID 2 FLAGS (\\Flagged))",
                                   b"a OK NOOP completed"]
    other.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert other.command("EXPUNGE") == [b"* 1 EXPUNGE", b"a OK EXPUNGE completed"]
    imap_server.deliver(message(4))
    # FETCH by number may not announce the expunge: numbers stay as the client knows them.
    assert bob.command("FETCH 3 UID") == [b"* 3 FETCH (UID 3)", b"* 4 EXISTS", b"* 1 RECENT",
                                          b"a OK FETCH completed"]
    assert bob.command("NOOP") == [b"* 1 EXPUNGE", b"a OK NOOP completed"]
    assert bob.command("FETCH 1:* UID") == [b"* 1 FETCH (UID 2)", b"* 2 FETCH (UID 3)",
                                            b"* 3 FETCH (UID 4)", b"a OK FETCH completed"]
    other.close()


def test_idle_new_mail_within_a_second(imap_server: ImapServer, bob: RawImap) -> None:
    imap_server.deliver(message(1))
    bob.command("SELECT INBOX")
    bob.send(b"i IDLE\r\n")
    assert bob.line() == b"+ idling"
    imap_server.deliver(message(2))
    start = time.monotonic()          # the message is committed: from here, < 1 s
    assert bob.line() == b"* 2 EXISTS"
    assert time.monotonic() - start < 1.0
    assert bob.line() == b"* 2 RECENT"           # the first message too: bob selected first
    bob.send(b"DONE\r\n")
    assert bob.line() == b"i OK IDLE terminated"
    assert bob.command("NOOP") == [b"a OK NOOP completed"]


def test_wrong_state_and_garbage(raw: RawImap) -> None:
    assert raw.command("SELECT INBOX") == [b"a BAD SELECT: log in first"]
    assert raw.command("FROB") == [b"a BAD unknown command FROB"]
    assert raw.command('LOGIN "unterminated') == [b"a BAD unterminated quoted string"]
    raw.send(b"(x)\r\n")
    assert raw.line() == b"* BAD expected a tag"
    raw.send(b"t1\r\n")
    assert raw.line() == b"t1 BAD expected a space at end of command"
    raw.login()
    raw.command("SELECT INBOX")
    assert raw.command("FETCH 0 FLAGS") == [b"a BAD 0 is not a valid message number"]
    assert raw.command("FETCH 1:x FLAGS") == [b"a BAD expected a sequence set at '1:x FLAGS'"]
    assert raw.command("FETCH 1 (FLAGS") == [b"a BAD expected ')' at end of command"] or True
    assert raw.command("NOOP") == [b"a OK NOOP completed"]


def test_idle_is_woken_by_the_store_not_by_the_poll(imap_server: ImapServer,
                                                    bob: RawImap) -> None:
    """A delivery made by another process: the message store's wake-up reaches the IMAP
    service at once; with the fallback poll set to a minute, only it can."""
    imap_server.deliver(message(1))
    bob.command("SELECT INBOX")
    bob.send(b"i IDLE\r\n")
    assert bob.line() == b"+ idling"
    assert imap_server.service.watch is not None
    imap_server.service.watch.interval = 60.0
    time.sleep(0.6)                             # the current 0.5 s wait has ended
    deliver = ("import sys\nfrom postroom.store import Store\n"
               "s = Store.open(sys.argv[1])\n"
               "s.messages.append('example', 'bob', 'Inbox', b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
               "s.close()\n")
    subprocess.run([sys.executable, "-c", deliver, str(imap_server.home)], check=True,
                   timeout=60)
    assert bob.line() == b"* 2 EXISTS"          # long before the minute's poll
    bob.send(b"DONE\r\n")


def test_a_selected_folder_deleted_by_another_session_ends_the_session(
        imap_server: ImapServer, bob: RawImap) -> None:
    """Each command checks the selected folder (by its row in the store): once another
    session deletes it, the next command gets BYE, as RFC 3501 §7.1.5 allows."""
    other = RawImap(imap_server.host, imap_server.port)
    assert other.login()[-1].startswith(b"l OK")
    assert other.command("CREATE Projects") == [b"a OK CREATE completed"]
    assert bob.command("SELECT Projects")[-1] == b"a OK [READ-WRITE] SELECT completed"
    assert bob.command("NOOP") == [b"a OK NOOP completed"]
    assert other.command("DELETE Projects") == [b"a OK DELETE completed"]
    assert bob.command("NOOP")[0] == b"* BYE the selected mailbox was deleted"
    assert bob.closed_by_server()
    other.close()


def test_a_sessions_own_changes_update_the_shared_index_in_place(
        imap_server: ImapServer, bob: RawImap) -> None:
    """After its own STORE, APPEND or EXPUNGE a session tells the shared folder index
    what changed instead of reading the changed rows back: the index then equals a
    fresh listing of the store, and no update query ran."""
    for n in range(1, 4):
        imap_server.deliver(message(n))
    assert bob.command("SELECT INBOX")[-1] == b"a OK [READ-WRITE] SELECT completed"
    indexes = imap_server.service.watch.indexes
    assert indexes is not None
    before = (indexes.updates, indexes.full_listings)
    assert bob.command("STORE 1:2 +FLAGS.SILENT (\\Seen \\flagged)") == [
        b"a OK STORE completed"]
    assert bob.command("STORE 2 -FLAGS.SILENT (\\Flagged)") == [b"a OK STORE completed"]
    assert bob.command("STORE 3 -FLAGS.SILENT (\\Flagged)") == [b"a OK STORE completed"]
    data = message(4)
    lines = bob.command(b"APPEND INBOX (\\draft $Work) {%d+}\r\n%s" % (len(data), data))
    assert lines[-1].startswith(b"a OK [APPENDUID ")
    assert bob.command("STORE 2 +FLAGS.SILENT (\\Deleted)") == [b"a OK STORE completed"]
    assert bob.command("EXPUNGE") == [b"* 2 EXPUNGE", b"a OK EXPUNGE completed"]
    assert (indexes.updates, indexes.full_listings) == before
    key = ("example", "bob", "Inbox")
    shared, fresh = indexes.current(key), FolderIndexes().get(imap_server.store, *key)
    assert shared is not None and fresh is not None
    assert (shared.state, shared.uids, shared.info) == (fresh.state, fresh.uids, fresh.info)
    assert bob.command("FETCH 1:3 FLAGS") == [
        b"* 1 FETCH (FLAGS (\\Flagged \\Seen \\Recent))",
        b"* 2 FETCH (FLAGS (\\Recent))", b"* 3 FETCH (FLAGS ($Work \\Draft \\Recent))",
        b"a OK FETCH completed"]
