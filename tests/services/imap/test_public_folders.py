"""Public folders (manual 6.3.6.4) and ACLs (RFC 4314) through the real IMAP service:
the shared namespace of RFC 2342, two users of one post office sharing a folder with
imaplib and imapclient, rights enforced per command, the exact ACL responses, the
other users' namespace, and the walls around it (another post office, the hidden
mailbox's logins)."""

from __future__ import annotations

import imaplib
import poplib
import threading
from collections.abc import Iterator

import pytest

from postroom.services.pop3.service import Pop3Service
from postroom.store.directory import PUBLIC_ROOT
from tests.servers import ALICE_PASSWORD, PASSWORD, LoopThread, free_port
from tests.services.imap.conftest import ImapServer, RawImap, message

SALES = '"Public Folders/Sales"'


@pytest.fixture
def public(imap_server: ImapServer) -> ImapServer:
    """Public folders on for post office ``example``; bob administers it."""
    imap_server.store.directory.update_postoffice("example",
                                                  {"message_store.public_folders": True})
    imap_server.store.directory.update_mailbox("example", "bob", type="ADMIN")
    return imap_server


@pytest.fixture
def alice(imap_server: ImapServer) -> Iterator[RawImap]:
    client = RawImap(imap_server.host, imap_server.port)
    assert client.login("alice@example", ALICE_PASSWORD)[-1].startswith(b"l OK")
    yield client
    client.close()


def test_namespace_offers_shared_folders_only_when_the_post_office_has_them(
        imap_server: ImapServer, bob: RawImap) -> None:
    assert bob.command("NAMESPACE") == [
        b'* NAMESPACE (("" "/")) (("Other Users/" "/")) NIL', b"a OK NAMESPACE completed"]
    assert bob.command('LIST "" "*"')[-1] == b"a OK LIST completed"
    assert not any(b"Public Folders" in line for line in bob.command('LIST "" "*"'))
    imap_server.store.directory.update_postoffice("example",
                                                  {"message_store.public_folders": True})
    assert bob.command("NAMESPACE") == [
        b'* NAMESPACE (("" "/")) (("Other Users/" "/")) (("Public Folders/" "/"))',
        b"a OK NAMESPACE completed"]
    assert bob.command('LIST "" "%"')[-2:] == [
        b'* LIST (\\Noselect \\HasNoChildren) "/" "Public Folders"', b"a OK LIST completed"]
    caps = bob.command("CAPABILITY")[0].split()
    assert b"ACL" in caps and b"RIGHTS=texk" in caps


def test_two_users_share_a_public_folder(public: ImapServer) -> None:
    imapclient = pytest.importorskip("imapclient")
    bob = imaplib.IMAP4(public.host, public.port)
    bob.login("bob@example", PASSWORD)
    assert bob.create("\"Public Folders/Sales\"")[0] == "OK"
    status, data = bob.append(SALES, "(\\Flagged)", None, message(1, subject="price list"))
    assert status == "OK" and b"APPENDUID" in data[0]

    alice = imapclient.IMAPClient(public.host, port=public.port, ssl=False)
    alice.login("alice@example", ALICE_PASSWORD)
    assert alice.namespace().shared == (("Public Folders/", "/"),)
    folders = {name: flags for flags, _, name in alice.list_folders()}
    assert folders["Public Folders"] == (b"\\Noselect", b"\\HasChildren")
    assert folders["Public Folders/Sales"] == (b"\\HasNoChildren",)
    assert "Public Folders/Sales" in [n for _, _, n in alice.list_sub_folders()]
    info = alice.select_folder("Public Folders/Sales")
    assert info[b"EXISTS"] == 1
    fetched = alice.fetch([1], ["BODY.PEEK[]", "FLAGS"])[1]
    assert fetched[b"BODY[]"] == message(1, subject="price list")
    # Alice is the first session to select the folder: the message is \Recent to her.
    assert fetched[b"FLAGS"] == (b"\\Flagged", b"\\Recent")
    alice.add_flags([1], [b"\\Seen", b"$Done"])
    alice.append("Public Folders/Sales", message(2, subject="from alice"))

    bob.select(SALES)
    typ, data = bob.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    text = b" ".join(part if isinstance(part, bytes) else b" ".join(part) for part in data)
    assert b"$Done" in text and b"\\Seen" in text and b"Subject: from alice" in text
    # The messages live once, in the hidden mailbox, not in either user's own folders.
    assert [m.uid for m in public.store.messages.list_messages(
        "example", PUBLIC_ROOT, "Sales")] == [1, 2]
    assert public.messages(mailbox="alice") == [] and public.messages() == []
    alice.logout()
    bob.logout()


def test_idle_in_a_public_folder_hears_another_users_append(public: ImapServer) -> None:
    imapclient = pytest.importorskip("imapclient")
    bob = imaplib.IMAP4(public.host, public.port)
    bob.login("bob@example", PASSWORD)
    bob.create(SALES)
    alice = imapclient.IMAPClient(public.host, port=public.port, ssl=False)
    alice.login("alice@example", ALICE_PASSWORD)
    alice.select_folder("Public Folders/Sales")
    alice.idle()
    timer = threading.Timer(0.2, lambda: bob.append(SALES, None, None, message(1)))
    timer.start()
    responses = alice.idle_check(timeout=3)
    alice.idle_done()
    timer.join()
    assert (1, b"EXISTS") in responses
    alice.logout()
    bob.logout()


def test_rights_are_enforced(public: ImapServer, bob: RawImap, alice: RawImap) -> None:
    assert bob.command(f"CREATE {SALES}") == [b"a OK CREATE completed"]
    public.store.messages.append("example", PUBLIC_ROOT, "Sales", message(1))
    # No insert right: APPEND and COPY are refused, nothing is stored.
    assert bob.command(f"SETACL {SALES} anyone -i") == [b"a OK SETACL completed"]
    alice.send(f"a APPEND {SALES} {{{len(message(2))}+}}\r\n".encode() + message(2) + b"\r\n")
    assert alice.until("a") == [
        b"a NO [NOPERM] APPEND 'Public Folders/Sales': you lack the insert (i) right"]
    public.deliver(message(3), mailbox="alice")
    alice.command("SELECT INBOX")
    assert alice.command(f"COPY 1 {SALES}") == [
        b"a NO [NOPERM] COPY 'Public Folders/Sales': you lack the insert (i) right"]
    assert len(public.store.messages.list_messages("example", PUBLIC_ROOT, "Sales")) == 1
    # Read but no delete-message / expunge rights.
    assert bob.command(f"SETACL {SALES} anyone lrsw") == [b"a OK SETACL completed"]
    lines = alice.command(f"SELECT {SALES}")
    assert b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Seen \\Draft \\*)] permanent flags" \
        in lines
    assert alice.command("STORE 1 +FLAGS (\\Deleted)") == [
        b"a NO [NOPERM] STORE 'Public Folders/Sales': you lack the delete messages (t) right"]
    assert alice.command("STORE 1 +FLAGS.SILENT (\\Seen $Seen-By-Alice)") == [
        b"a OK STORE completed"]
    assert alice.command("EXPUNGE") == [
        b"a NO [NOPERM] EXPUNGE 'Public Folders/Sales': you lack the expunge (e) right"]
    # Read only: the selection is read-only.
    assert bob.command(f"SETACL {SALES} anyone lr") == [b"a OK SETACL completed"]
    assert alice.command(f"SELECT {SALES}")[-1] == b"a OK [READ-ONLY] SELECT completed"
    # No lookup right: not listed, but still readable (RFC 4314: SELECT needs r only).
    assert bob.command(f"SETACL {SALES} anyone -l") == [b"a OK SETACL completed"]
    assert not any(b"Sales" in line for line in alice.command('LIST "" "*"'))
    assert bob.command('LIST "" "Public Folders/*"')[0] == \
        b'* LIST (\\HasNoChildren) "/" "Public Folders/Sales"'
    assert alice.command(f"STATUS {SALES} (MESSAGES)") == [
        b'* STATUS "Public Folders/Sales" (MESSAGES 1)', b"a OK STATUS completed"]
    # Nothing at all: the folder looks like one that does not exist.
    assert bob.command(f"DELETEACL {SALES} anyone") == [b"a OK DELETEACL completed"]
    assert alice.command("UNSELECT") == [b"a OK UNSELECT completed"]
    assert alice.command(f"SELECT {SALES}") == [
        b"a NO [NONEXISTENT] no mailbox 'Public Folders/Sales'"]
    assert alice.command(f"DELETE {SALES}") == [
        b"a NO [NONEXISTENT] no mailbox 'Public Folders/Sales'"]
    assert alice.command(f"MYRIGHTS {SALES}") == [
        b"a NO [NONEXISTENT] no mailbox 'Public Folders/Sales'"]
    # The administrator keeps every right, so the folder is not lost.
    assert bob.command(f"MYRIGHTS {SALES}") == [
        b'* MYRIGHTS "Public Folders/Sales" lrswipkxteacd', b"a OK MYRIGHTS completed"]


def test_create_and_delete_need_their_rights(public: ImapServer, bob: RawImap,
                                             alice: RawImap) -> None:
    assert alice.command('CREATE "Public Folders/Team/Plans"') == [b"a OK CREATE completed"]
    assert bob.command('SETACL "Public Folders/Team" anyone lr') == [b"a OK SETACL completed"]
    assert alice.command('CREATE "Public Folders/Team/Minutes"') == [
        b"a NO [NOPERM] CREATE 'Public Folders/Team': you lack the create mailboxes (k) right"]
    assert alice.command('DELETE "Public Folders/Team"') == [
        b"a NO [NOPERM] DELETE 'Public Folders/Team': you lack the delete mailbox (x) right"]
    assert alice.command('RENAME "Public Folders/Team/Plans" Plans') == [
        b"a NO [CANNOT] cannot move 'Public Folders/Team/Plans' to 'Plans': a folder stays "
        b"in its mailbox (personal, public or another user's)"]
    assert alice.command('CREATE "Public Folders"') == [
        b"a NO [CANNOT] 'Public Folders' is a namespace root, not a folder"]
    # A folder created under a restricted one inherits its ACL.
    assert bob.command('CREATE "Public Folders/Team/Minutes"') == [b"a OK CREATE completed"]
    assert bob.command('GETACL "Public Folders/Team/Minutes"') == [
        b'* ACL "Public Folders/Team/Minutes" anyone lr bob lrswipkxteacd',
        b"a OK GETACL completed"]
    assert alice.command("UNSUBSCRIBE \"Public Folders/Team/Plans\"") == [
        b"a OK UNSUBSCRIBE completed"]
    assert alice.command('LSUB "" "Public Folders/*"') == [
        b'* LSUB (\\HasChildren) "/" "Public Folders/Team"',
        b'* LSUB (\\HasNoChildren) "/" "Public Folders/Team/Minutes"',
        b"a OK LSUB completed"]
    assert b"Plans" in b"".join(bob.command('LSUB "" "Public Folders/*"'))   # bob's own
    assert alice.command('DELETE "Public Folders/Team/Plans"') == [b"a OK DELETE completed"]


def test_acl_commands_answer_exactly(public: ImapServer, bob: RawImap,
                                     alice: RawImap) -> None:
    assert bob.command(f"CREATE {SALES}") == [b"a OK CREATE completed"]
    assert bob.command(f"GETACL {SALES}") == [
        b'* ACL "Public Folders/Sales" anyone lrswipkxtecd bob lrswipkxteacd',
        b"a OK GETACL completed"]
    assert alice.command(f"MYRIGHTS {SALES}") == [
        b'* MYRIGHTS "Public Folders/Sales" lrswipkxtecd', b"a OK MYRIGHTS completed"]
    assert bob.command(f"LISTRIGHTS {SALES} alice") == [
        b'* LISTRIGHTS "Public Folders/Sales" alice "" l r s w i p k x t e a c d',
        b"a OK LISTRIGHTS completed"]
    assert alice.command(f"GETACL {SALES}") == [
        b"a NO [NOPERM] GETACL 'Public Folders/Sales': you lack the administer (a) right"]
    assert alice.command(f"SETACL {SALES} alice +a") == [
        b"a NO [NOPERM] SETACL 'Public Folders/Sales': you lack the administer (a) right"]
    # Grants: c and d stand for k x and t e (RFC 4314 2.1.1).
    assert bob.command(f"SETACL {SALES} alice lrc") == [b"a OK SETACL completed"]
    assert bob.command(f"SETACL {SALES} anyone lr") == [b"a OK SETACL completed"]
    assert bob.command(f"GETACL {SALES}") == [
        b'* ACL "Public Folders/Sales" anyone lr alice lrkxc bob lrswipkxteacd',
        b"a OK GETACL completed"]
    assert alice.command(f"MYRIGHTS {SALES}") == [
        b'* MYRIGHTS "Public Folders/Sales" lrkxc', b"a OK MYRIGHTS completed"]
    assert bob.command(f"SETACL {SALES} alice +d") == [b"a OK SETACL completed"]
    assert bob.command(f"SETACL {SALES} alice -xr") == [b"a OK SETACL completed"]
    assert bob.command(f"DELETEACL {SALES} anyone") == [b"a OK DELETEACL completed"]
    assert bob.command(f"GETACL {SALES}") == [
        b'* ACL "Public Folders/Sales" alice lktecd bob lrswipkxteacd',
        b"a OK GETACL completed"]
    # Bad input: unknown right letters are a syntax error; the connection goes on.
    assert bob.command(f"SETACL {SALES} alice lrz") == [
        b"a BAD SETACL: 'z' is not a right (rights are lrswipkxtea and c, d)"]
    assert bob.command(f"SETACL {SALES} -alice r") == [
        b"a NO [CANNOT] negative rights are not supported"]
    assert bob.command(f"SETACL {SALES} nobody r") == [
        b"a NO [CANNOT] no mailbox 'nobody' in this post office"]
    assert bob.command(f"SETACL {SALES} alice") == [
        b"a BAD expected a space at end of command"]
    assert bob.command('GETACL "Public Folders/Nowhere"') == [
        b"a NO [NONEXISTENT] no mailbox 'Public Folders/Nowhere'"]
    # Personal folders: the owner has every right and nobody else any.
    assert bob.command("MYRIGHTS INBOX") == [b"* MYRIGHTS INBOX lrswipkxteacd",
                                             b"a OK MYRIGHTS completed"]
    assert bob.command("GETACL INBOX") == [b"* ACL INBOX bob lrswipkxteacd",
                                           b"a OK GETACL completed"]
    assert bob.command("LISTRIGHTS INBOX bob") == [
        b"* LISTRIGHTS INBOX bob lrswipkxteacd", b"a OK LISTRIGHTS completed"]
    assert bob.command("LISTRIGHTS INBOX alice") == [
        b'* LISTRIGHTS INBOX alice "" l r s w i p k x t e a c d',
        b"a OK LISTRIGHTS completed"]
    assert bob.command("SETACL INBOX bob lr") == [
        b"a NO [CANNOT] bob owns 'INBOX' and always has every right"]
    assert bob.command("MYRIGHTS Nowhere") == [b"a NO [NONEXISTENT] no mailbox 'Nowhere'"]


def test_other_users_see_what_an_owner_shares(public: ImapServer, bob: RawImap,
                                              alice: RawImap) -> None:
    assert bob.command("CREATE Projects/Old") == [b"a OK CREATE completed"]
    public.deliver(message(1, subject="plan"), folder="Projects")
    assert alice.command('SELECT "Other Users/bob/Projects"') == [
        b"a NO [NONEXISTENT] no mailbox 'Other Users/bob/Projects'"]
    assert bob.command("SETACL Projects alice lrs") == [b"a OK SETACL completed"]
    assert bob.command("GETACL Projects") == [b"* ACL Projects bob lrswipkxteacd alice lrs",
                                              b"a OK GETACL completed"]
    assert alice.command('LIST "" "Other Users*"') == [
        b'* LIST (\\Noselect \\HasChildren) "/" "Other Users"',
        b'* LIST (\\Noselect \\HasChildren) "/" "Other Users/bob"',
        b'* LIST (\\HasNoChildren) "/" "Other Users/bob/Projects"',
        b"a OK LIST completed"]
    lines = alice.command('SELECT "Other Users/bob/Projects"')
    assert b"* 1 EXISTS" in lines and lines[-1] == b"a OK [READ-WRITE] SELECT completed"
    assert alice.command("FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])")[-1] == \
        b"a OK FETCH completed"
    assert public.messages("Projects")[0].flags == ("\\Seen",)   # she had the s right
    assert alice.command("STORE 1 +FLAGS (\\Flagged)") == [
        b"a NO [NOPERM] STORE 'Other Users/bob/Projects': you lack the write (w) right"]
    assert alice.command('MYRIGHTS "Other Users/bob/Projects"') == [
        b'* MYRIGHTS "Other Users/bob/Projects" lrs', b"a OK MYRIGHTS completed"]
    assert alice.command('GETACL "Other Users/bob/Projects"') == [
        b"a NO [NOPERM] GETACL 'Other Users/bob/Projects': you lack the administer (a) "
        b"right"]
    assert alice.command('APPEND "Other Users/bob/Projects" {3+}\r\nHi!')[-1] == \
        b"a NO [NOPERM] APPEND 'Other Users/bob/Projects': you lack the insert (i) right"
    # Nothing else of bob's, nothing of the hidden mailbox, nothing of her own this way.
    for name in ("Other Users/bob/INBOX", "Other Users/bob/Projects/Old",
                 f"Other Users/{PUBLIC_ROOT}/Sales", "Other Users/alice/INBOX"):
        assert alice.command(f'STATUS "{name}" (MESSAGES)') == [
            f"a NO [NONEXISTENT] no mailbox {name!r}".encode()]
    # With i on the folder she copies her own message in; bob's mailbox is charged.
    public.deliver(message(2), mailbox="alice")
    assert bob.command("SETACL Projects alice +i") == [b"a OK SETACL completed"]
    alice.command("SELECT INBOX")
    assert alice.command('COPY 1 "Other Users/bob/Projects"')[-1].startswith(
        b"a OK [COPYUID")
    assert len(public.messages("Projects")) == 2
    assert public.store.messages.usage("example", "bob")[1] == 2
    # Withdrawn: gone from her list.
    assert bob.command("DELETEACL Projects alice") == [b"a OK DELETEACL completed"]
    assert alice.command('LIST "" "Other Users*"') == [b"a OK LIST completed"]


def test_another_post_office_sees_nothing(public: ImapServer, bob: RawImap) -> None:
    d = public.store.directory
    d.create_postoffice("other", {"message_store.public_folders": True})
    d.create_mailbox("other", "carol", PASSWORD)
    assert bob.command(f"CREATE {SALES}") == [b"a OK CREATE completed"]
    public.store.messages.append("example", PUBLIC_ROOT, "Sales", message(1))
    carol = RawImap(public.host, public.port)
    try:
        assert carol.login("carol@other")[-1].startswith(b"l OK")
        assert carol.command('LIST "" "*"')[-2:] == [
            b'* LIST (\\Noselect \\HasNoChildren) "/" "Public Folders"',
            b"a OK LIST completed"]
        assert carol.command(f"SELECT {SALES}") == [
            b"a NO [NONEXISTENT] no mailbox 'Public Folders/Sales'"]
        assert carol.command(f"CREATE {SALES}") == [b"a OK CREATE completed"]
        lines = carol.command(f"SELECT {SALES}")
        assert b"* 0 EXISTS" in lines                       # its own, empty folder
        assert bob.command(f"SETACL {SALES} carol r") == [
            b"a NO [CANNOT] no mailbox 'carol' in this post office"]
        assert carol.command(f"SETACL {SALES} bob r")[-1].startswith(b"a NO [NOPERM]")
        # bob shares his INBOX with anyone: that is anyone of his post office only.
        assert bob.command("SETACL INBOX anyone lr") == [b"a OK SETACL completed"]
        assert carol.command('STATUS "Other Users/bob/INBOX" (MESSAGES)') == [
            b"a NO [NONEXISTENT] no mailbox 'Other Users/bob/INBOX'"]
        assert carol.command('LIST "" "Other Users/*"') == [b"a OK LIST completed"]
    finally:
        carol.close()


def test_the_hidden_mailbox_cannot_log_in_or_be_listed(public: ImapServer,
                                                       bob: RawImap) -> None:
    assert bob.command(f"CREATE {SALES}") == [b"a OK CREATE completed"]
    d = public.store.directory
    assert [b.name for b in d.list_mailboxes("example")] == ["alice", "bob"]
    client = RawImap(public.host, public.port)
    try:
        for login in (f"{PUBLIC_ROOT}@example", f'"{PUBLIC_ROOT}@example"'):
            lines = client.command(f'LOGIN {login} ""', "l")
            assert lines[-1].startswith((b"l NO", b"l BAD")), lines
    finally:
        client.close()
    public.store.settings.set("pop3.bind", ["127.0.0.1"])
    public.store.settings.set("pop3.port", free_port())
    public.store.settings.set("pop3.pop3s_port", 0)
    public.store.settings.set("pop3.security.allow_plaintext_auth_without_tls", True)
    service = Pop3Service(public.store, auth_failure_delay=0.0)
    loop = LoopThread("pop3-hidden-mailbox")
    try:
        loop.call(service.start())
        pop = poplib.POP3("127.0.0.1", service.ports()["pop3"], timeout=5)
        pop.user(f"{PUBLIC_ROOT}@example")
        with pytest.raises(poplib.error_proto):
            pop.pass_("")
        pop.close()
        pop = poplib.POP3("127.0.0.1", service.ports()["pop3"], timeout=5)
        pop.user("bob@example")
        assert pop.pass_(PASSWORD).startswith(b"+OK")       # the service works
        pop.quit()
    finally:
        loop.call(service.stop())
        loop.close()


def test_copies_keep_only_the_flags_one_may_set_and_renames_stay_public(
        public: ImapServer, bob: RawImap, alice: RawImap) -> None:
    assert bob.command(f"CREATE {SALES}") == [b"a OK CREATE completed"]
    assert bob.command(f"SETACL {SALES} anyone lrsi") == [b"a OK SETACL completed"]
    public.deliver(message(1), mailbox="alice", flags=("\\Seen", "\\Flagged", "\\Deleted"))
    alice.command("SELECT INBOX")
    assert alice.command(f"COPY 1 {SALES}")[-1].startswith(b"a OK [COPYUID")
    assert [m.flags for m in public.store.messages.list_messages(
        "example", PUBLIC_ROOT, "Sales")] == [("\\Seen",)]
    assert public.messages(mailbox="alice")[0].flags == ("\\Deleted", "\\Flagged", "\\Seen")
    # MOVE out of her INBOX (her own: every right) into the public folder.
    assert alice.command(f"MOVE 1 {SALES}")[-1] == b"a OK MOVE completed"
    assert public.messages(mailbox="alice") == []
    # RENAME inside the public folders needs x (bob has it) and k on the new parent.
    assert alice.command(f'RENAME {SALES} "Public Folders/Sales 2026"') == [
        b"a NO [NOPERM] RENAME 'Public Folders/Sales': you lack the delete mailbox (x) right"]
    assert bob.command(f'RENAME {SALES} "Public Folders/Archive/Sales 2026"') == [
        b"a OK RENAME completed"]
    assert alice.command('STATUS "Public Folders/Archive/Sales 2026" (MESSAGES)') == [
        b'* STATUS "Public Folders/Archive/Sales 2026" (MESSAGES 2)',
        b"a OK STATUS completed"]


def test_qresync_and_recent_follow_the_public_folder(public: ImapServer, bob: RawImap,
                                                     alice: RawImap) -> None:
    """State kept per folder in the store (removed UIDs for QRESYNC, the shared \\Recent
    mark) is the public folder's, not the selecting user's own mailbox's."""
    assert bob.command('CREATE "Public Folders/Sales"')[-1].startswith(b"a OK")
    for n in range(1, 4):
        public.store.messages.append("example", PUBLIC_ROOT, "Sales", message(n))
    selected = bob.command('SELECT "Public Folders/Sales"')
    assert b"* 3 RECENT" in selected                      # bob is the first: all recent
    validity = next(line.split(b"UIDVALIDITY ")[1].split(b"]")[0] for line in selected
                    if b"UIDVALIDITY" in line)
    modseq = next(line.split(b"HIGHESTMODSEQ ")[1].split(b"]")[0] for line in selected
                  if b"HIGHESTMODSEQ" in line)
    assert bob.command("UID STORE 2 +FLAGS.SILENT (\\Deleted)")[-1].startswith(b"a OK")
    assert bob.command("EXPUNGE")[-1].startswith(b"a OK")
    assert alice.command("ENABLE QRESYNC")[-1].startswith(b"a OK")
    answer = alice.command(b'SELECT "Public Folders/Sales" (QRESYNC (' + validity + b" " +
                           modseq + b"))")
    assert b"* 0 RECENT" in answer                        # bob had them already
    assert b"* VANISHED (EARLIER) 2" in answer
    assert answer[-1].startswith(b"a OK [READ-WRITE]")
