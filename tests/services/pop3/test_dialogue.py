"""Every POP3 command and error reply against the real service on loopback (raw bytes)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

import pytest

from tests.servers import ALICE_PASSWORD
from tests.services.pop3.conftest import (
    PASSWORD,
    Pop3Server,
    RawPop3,
    message,
)


def connect(server: Pop3Server, *, tls: bool = False) -> tuple[RawPop3, bytes]:
    client = RawPop3(server.host, server.pop3s_port if tls else server.port, tls=tls)
    return client, client.line()


def test_greeting_capa_and_full_session(pop3_server: Pop3Server, raw: RawPop3) -> None:
    pop3_server.deliver("bob", message(1))
    pop3_server.deliver("bob", message(2))
    assert raw.command("CAPA") == b"+OK Capability list follows"
    caps = raw.multiline()
    for cap in (b"TOP", b"UIDL", b"USER", b"RESP-CODES", b"PIPELINING", b"STLS",
                b"SASL PLAIN LOGIN CRAM-MD5"):
        assert cap in caps
    assert raw.login() == b"+OK bob@example has 2 messages (%d octets)" % (
        len(message(1)) + len(message(2)))
    assert raw.command("STAT") == b"+OK 2 %d" % (len(message(1)) + len(message(2)))
    assert raw.command("LIST") .startswith(b"+OK 2 messages")
    assert raw.multiline() == [b"1 %d" % len(message(1)), b"2 %d" % len(message(2))]
    assert raw.command("LIST 2") == b"+OK 2 %d" % len(message(2))
    assert raw.command("UIDL").startswith(b"+OK")
    uidl = raw.multiline()
    assert [line.split()[0] for line in uidl] == [b"1", b"2"]
    assert raw.command("UIDL 1") == b"+OK " + uidl[0]
    assert raw.command("RETR 1") == b"+OK %d octets" % len(message(1))
    assert b"\r\n".join(raw.multiline()) + b"\r\n" == message(1)
    assert raw.command("TOP 2 0") == b"+OK top of message follows"
    assert raw.multiline()[-1] == b""
    assert raw.command("NOOP") == b"+OK"
    assert raw.command("DELE 1") == b"+OK message 1 deleted"
    assert raw.command("STAT") == b"+OK 1 %d" % len(message(2))
    assert raw.command("RSET").startswith(b"+OK maildrop has 2 messages")
    assert raw.command("DELE 2") == b"+OK message 2 deleted"
    assert raw.command("CAPA").startswith(b"+OK")
    caps = raw.multiline()
    assert b"USER" not in caps and b"STLS" not in caps
    assert raw.command("QUIT").startswith(b"+OK mail.test POP3 server signing off")
    assert raw.closed_by_server()
    assert len(pop3_server.uids()) == 1


@pytest.mark.parametrize(("command", "reply"), [
    ("RETR 3", b"-ERR no such message"),
    ("RETR 0", b"-ERR no such message"),
    ("LIST 9", b"-ERR no such message"),
    ("UIDL 9", b"-ERR no such message"),
    ("TOP 9 1", b"-ERR no such message"),
    ("DELE 5", b"-ERR no such message"),
    ("RETR x", b"-ERR invalid message number 'x'"),
    ("XYZZY", b"-ERR unknown command"),
    ("USER bob", b"-ERR command not valid in this state"),
    ("STLS", b"-ERR command not valid in this state"),
])
def test_errors_in_transaction(pop3_server: Pop3Server, raw: RawPop3, command: str,
                               reply: bytes) -> None:
    pop3_server.deliver("bob", message(1))
    pop3_server.deliver("bob", message(2))
    raw.login()
    assert raw.command(command) == reply
    assert raw.command("STAT").startswith(b"+OK 2 ")        # the session survives
    raw.command("QUIT")
    assert len(pop3_server.uids()) == 2                      # nothing deleted


def test_retr_and_dele_of_a_deleted_message(pop3_server: Pop3Server, raw: RawPop3) -> None:
    pop3_server.deliver("bob", message(1))
    raw.login()
    raw.command("DELE 1")
    assert raw.command("RETR 1") == b"-ERR message already deleted"
    assert raw.command("DELE 1") == b"-ERR message already deleted"
    assert raw.command("TOP 1 1") == b"-ERR message already deleted"
    assert raw.command("LIST").startswith(b"+OK 0 messages")
    assert raw.multiline() == []


@pytest.mark.parametrize(("command", "reply"), [
    ("STAT", b"-ERR command not valid in this state"),
    ("RETR 1", b"-ERR command not valid in this state"),
    ("NOOP", b"-ERR command not valid in this state"),
    ("PASS x", b"-ERR give USER first"),
    ("BOGUS", b"-ERR unknown command"),
    ("AUTH FOO", b"-ERR mechanism FOO not supported"),
    ("APOP bob@example short", b"-ERR APOP digest must be 32 hex digits"),
])
def test_errors_in_authorization(raw: RawPop3, command: str, reply: bytes) -> None:
    assert raw.command(command) == reply
    assert raw.command("CAPA").startswith(b"+OK")


def test_over_long_line(pop3_server: Pop3Server, raw: RawPop3) -> None:
    pop3_server.deliver("bob", message(1))
    raw.login()
    assert raw.command("NOOP " + "x" * 5000) == b"-ERR line too long"
    assert raw.command("STAT").startswith(b"+OK 1 ")


def test_endless_line_closes(raw: RawPop3) -> None:
    raw.send(b"A" * (2 * 1024 * 1024))
    assert raw.line() == b"-ERR line too long, closing"
    assert raw.closed_by_server()


def test_too_many_errors_close(raw: RawPop3) -> None:
    for _ in range(24):
        assert raw.command("NONSENSE") == b"-ERR unknown command"
    assert raw.command("NONSENSE") == b"-ERR unknown command"
    assert raw.line() == b"-ERR too many errors, closing"
    assert raw.closed_by_server()


def test_wrong_password_and_unknown_user(pop3_server: Pop3Server, raw: RawPop3) -> None:
    assert raw.login(password="wrong") == b"-ERR [AUTH] authentication failed"
    assert raw.login(user="nobody@example") == b"-ERR [AUTH] authentication failed"
    assert raw.login() .startswith(b"+OK")


@pytest.mark.parametrize("login", ["bob@example", "bob@example.com", "bob#example",
                                   "bob%example.com"])
def test_login_names(pop3_server: Pop3Server, login: str) -> None:
    pop3_server.set("pop3.general.alternate_at_characters", "#%")
    client, _ = connect(pop3_server)
    assert client.login(user=login).startswith(b"+OK bob@example has")
    client.close()


def test_default_postoffice(pop3_server: Pop3Server) -> None:
    client, _ = connect(pop3_server)
    assert client.login(user="bob").startswith(b"-ERR [AUTH]")
    pop3_server.set("localhost.general.default_postoffice", "example")
    pop3_server.set("localhost.general.default_postoffice_enabled", True)
    assert client.login(user="bob").startswith(b"+OK bob@example")
    client.close()


def test_apop(pop3_server: Pop3Server) -> None:
    client, greeting = connect(pop3_server)
    stamp = re.search(rb"<[^>]+>", greeting)
    assert stamp is not None
    digest = hashlib.md5(stamp.group(0) + PASSWORD.encode()).hexdigest()
    assert client.command(f"APOP bob@example {'0' * 32}").startswith(b"-ERR [AUTH]")
    assert client.command(f"APOP bob@example {digest}").startswith(b"+OK bob@example")
    client.close()


def test_apop_required_refuses_user_pass(pop3_server: Pop3Server, raw: RawPop3) -> None:
    pop3_server.set("pop3.general.apop_enabled", True)
    assert raw.command("USER bob@example") == b"-ERR [AUTH] this server requires APOP"
    assert raw.command("AUTH PLAIN") == b"-ERR mechanism PLAIN not supported"


def test_auth_plain_login_cram(pop3_server: Pop3Server) -> None:
    client, _ = connect(pop3_server)
    token = base64.b64encode(b"\0bob@example\0" + PASSWORD.encode()).decode()
    assert client.command(f"AUTH PLAIN {token}").startswith(b"+OK bob@example")
    client.close()

    client, _ = connect(pop3_server)
    assert client.command("AUTH LOGIN") == b"+ " + base64.b64encode(b"Username:")
    assert client.command(base64.b64encode(b"alice@example")) == \
        b"+ " + base64.b64encode(b"Password:")
    assert client.command(base64.b64encode(ALICE_PASSWORD.encode())).startswith(
        b"+OK alice@example")
    client.close()

    client, _ = connect(pop3_server)
    challenge = base64.b64decode(client.command("AUTH CRAM-MD5")[2:])
    digest = hmac.new(PASSWORD.encode(), challenge, "md5").hexdigest()
    assert client.command(base64.b64encode(f"bob@example {digest}".encode())).startswith(
        b"+OK bob@example")
    client.close()

    client, _ = connect(pop3_server)
    client.command("AUTH PLAIN")
    assert client.command("*") == b"-ERR authentication cancelled"
    assert client.command("AUTH PLAIN") == b"+ "
    assert client.command("%%%") == b"-ERR invalid base64 in SASL response"
    assert client.command("AUTH").startswith(b"+OK")
    assert client.multiline() == [b"PLAIN", b"LOGIN", b"CRAM-MD5"]
    client.close()


def test_plaintext_needs_tls(pop3_server: Pop3Server) -> None:
    pop3_server.set("pop3.security.allow_plaintext_auth_without_tls", False)
    client, _ = connect(pop3_server)
    assert client.command("CAPA").startswith(b"+OK")
    caps = client.multiline()
    assert b"USER" not in caps and b"SASL CRAM-MD5" in caps and b"STLS" in caps
    assert client.command("USER bob@example") == \
        b"-ERR [AUTH] plain text logins need TLS: use STLS first"
    assert client.command("AUTH PLAIN") == \
        b"-ERR [AUTH] plain text logins need TLS: use STLS first"
    assert client.command("STLS") == b"+OK Begin TLS negotiation"
    client.starttls()
    assert client.login().startswith(b"+OK bob@example")
    client.close()
    tls_client, greeting = connect(pop3_server, tls=True)
    assert greeting.startswith(b"+OK")
    assert tls_client.command("STLS") == b"-ERR TLS is already active"
    assert tls_client.login().startswith(b"+OK bob@example")
    tls_client.close()


def test_stls_drops_pipelined_plaintext(pop3_server: Pop3Server, raw: RawPop3) -> None:
    raw.send(b"STLS\r\nUSER bob@example\r\n")
    assert raw.line() == b"+OK Begin TLS negotiation"
    raw.starttls()
    assert raw.command("PASS " + PASSWORD) == b"-ERR give USER first"


def test_maildrop_lock(pop3_server: Pop3Server, raw: RawPop3) -> None:
    raw.login()
    second, _ = connect(pop3_server)
    assert second.login() == b"-ERR [IN-USE] maildrop already locked by another session"
    assert second.login(user="alice@example", password=ALICE_PASSWORD).startswith(b"+OK")
    second.close()
    raw.command("QUIT")
    third, _ = connect(pop3_server)
    assert third.login().startswith(b"+OK")
    third.close()


def test_concurrent_access_setting(pop3_server: Pop3Server, raw: RawPop3) -> None:
    pop3_server.set("pop3.advanced.allow_concurrent_mailbox_access", True)
    pop3_server.deliver("bob", message(1))
    raw.login()
    second, _ = connect(pop3_server)
    assert second.login().startswith(b"+OK")
    second.command("DELE 1")
    second.command("QUIT")
    assert raw.command("RETR 1") == b"-ERR [SYS/PERM] message was removed by another session"
    raw.command("QUIT")


def test_dropped_connection_deletes_nothing(pop3_server: Pop3Server) -> None:
    for n in range(3):
        pop3_server.deliver("bob", message(n))
    client, _ = connect(pop3_server)
    client.login()
    for n in (1, 2, 3):
        client.command(f"DELE {n}")
    client.close()                      # no QUIT
    time.sleep(0.3)
    assert len(pop3_server.uids()) == 3
    again, _ = connect(pop3_server)     # and the lock is gone
    assert again.login().startswith(b"+OK bob@example has 3 messages")
    again.close()


def test_quit_removes_the_deleted_messages_and_then_their_files(
        pop3_server: Pop3Server, raw: RawPop3) -> None:
    """QUIT answers once the removal is committed; the files follow in the background."""
    for n in range(3):
        pop3_server.deliver("bob", message(n))
    folder = pop3_server.home / "messages"
    before = set(folder.rglob("*.eml"))
    assert len(before) == 3
    raw.login()
    assert raw.command("DELE 1").startswith(b"+OK")
    assert raw.command("DELE 3").startswith(b"+OK")
    assert raw.command("QUIT").endswith(b"(2 messages deleted)")
    assert pop3_server.uids() == [2]
    deadline = time.time() + 5
    while len(set(folder.rglob("*.eml"))) != 1 and time.time() < deadline:
        time.sleep(0.05)
    assert len(set(folder.rglob("*.eml"))) == 1


def test_quit_before_login_deletes_nothing(pop3_server: Pop3Server, raw: RawPop3) -> None:
    pop3_server.deliver("bob", message(1))
    assert raw.command("QUIT").startswith(b"+OK")
    assert len(pop3_server.uids()) == 1


def test_uidl_is_stable_across_sessions_and_restarts(pop3_server: Pop3Server) -> None:
    for n in range(3):
        pop3_server.deliver("bob", message(n))

    def uidl() -> list[bytes]:
        client, _ = connect(pop3_server)
        client.login()
        client.command("UIDL")
        lines = client.multiline()
        client.command("QUIT")
        return [line.split()[1] for line in lines]

    first = uidl()
    pop3_server.call(pop3_server.service.stop())
    pop3_server.call(pop3_server.service.start())
    assert uidl() == first
    client, _ = connect(pop3_server)
    client.login()
    client.command("DELE 1")
    client.command("QUIT")
    assert uidl() == first[1:]


def test_sizes_are_exact_for_bare_lf_messages(pop3_server: Pop3Server, raw: RawPop3) -> None:
    data = message(1, "line one\n.dotted\nlast line without end", lf=True).rstrip(b"\n")
    pop3_server.deliver("bob", data)
    raw.login()
    size = int(raw.command("LIST 1").split()[2])
    assert raw.command("RETR 1") == b"+OK %d octets" % size
    body = b"".join(line + b"\r\n" for line in raw.multiline())
    assert len(body) == size
    assert body == data.replace(b"\n", b"\r\n") + b"\r\n"


def test_dot_lines_are_stuffed_in_every_session(pop3_server: Pop3Server) -> None:
    """Whether a message has lines starting with "." is learnt at the first login and
    kept; the second session, and a record from before it was kept, stuff them too."""
    dotted = message(1, ".hidden\r\n..two\r\n.")
    pop3_server.deliver("bob", dotted)
    pop3_server.deliver("bob", message(2, "no dot at a line start. none."))

    def retrieve_all() -> list[list[bytes]]:
        client, _ = connect(pop3_server)
        client.login()
        bodies = []
        for n in (1, 2):
            client.command(f"RETR {n}")
            bodies.append(client.multiline())
        client.command("QUIT")
        return bodies

    first = retrieve_all()
    assert first[0] == dotted.split(b"\r\n")[:-1]        # unstuffed by the client: intact
    assert first[1] == message(2, "no dot at a line start. none.").split(b"\r\n")[:-1]
    deadline = time.monotonic() + 5
    while pop3_server.store.conn.execute(
            "SELECT COUNT(*) FROM message_crlf_size WHERE dot_lines IS NOT NULL"
    ).fetchone()[0] < 2:                                    # recorded with the next commit
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert sorted(row[0] for row in pop3_server.store.conn.execute(
        "SELECT dot_lines FROM message_crlf_size")) == [0, 1]
    assert retrieve_all() == first
    pop3_server.store.conn.execute("UPDATE message_crlf_size SET dot_lines = NULL")
    pop3_server.store.conn.commit()
    assert retrieve_all() == first


def test_pipelined_transaction_answered_in_order(pop3_server: Pop3Server,
                                                 raw: RawPop3) -> None:
    """Commands sent in one write: those answered as they arrive and those the session
    streams or waits for (TOP, a large RETR, QUIT) interleave in order."""
    small = message(1)
    large = message(2, ("y" * 998 + "\r\n") * 400)
    pop3_server.deliver("bob", small)
    pop3_server.deliver("bob", large)
    pop3_server.deliver("bob", message(3))
    raw.login()
    raw.send(b"STAT\r\nRETR 1\r\nDELE 1\r\nRETR 1\r\nTOP 3 0\r\nLIST\r\nRETR 2\r\n"
             b"UIDL 2\r\nRETR 9\r\nDELE 3\r\nNOOP\r\nQUIT\r\n")
    assert raw.line() == b"+OK 3 %d" % (len(small) + len(large) + len(message(3)))
    assert raw.line() == b"+OK %d octets" % len(small)
    assert raw.multiline() == small.split(b"\r\n")[:-1]
    assert raw.line() == b"+OK message 1 deleted"
    assert raw.line() == b"-ERR message already deleted"
    assert raw.line() == b"+OK top of message follows"
    assert raw.multiline() == [*message(3).split(b"\r\n\r\n")[0].split(b"\r\n"), b""]
    assert raw.line() == b"+OK 2 messages (%d octets)" % (len(large) + len(message(3)))
    assert raw.multiline() == [b"2 %d" % len(large), b"3 %d" % len(message(3))]
    assert raw.line() == b"+OK %d octets" % len(large)
    assert raw.multiline() == large.split(b"\r\n")[:-1]
    assert raw.line().startswith(b"+OK 2 ")
    assert raw.line() == b"-ERR no such message"
    assert raw.line() == b"+OK message 3 deleted"
    assert raw.line() == b"+OK"
    assert raw.line().endswith(b"(2 messages deleted)")
    assert raw.closed_by_server()
    assert pop3_server.uids() == [2]


def test_idle_timeout(pop3_server: Pop3Server) -> None:
    pop3_server.set("pop3.general.idle_timeout", 1)
    client, _ = connect(pop3_server)
    time.sleep(1.5)
    assert client.line() == b"-ERR idle timeout, closing"
    assert client.closed_by_server()


def test_idle_timeout_counts_from_the_last_command(pop3_server: Pop3Server) -> None:
    """A client that keeps talking is never timed out; once it falls silent, the
    timeout runs from its last command, not from when the connection opened."""
    pop3_server.set("pop3.general.idle_timeout", 1)
    client, _ = connect(pop3_server)
    assert client.login().startswith(b"+OK")
    started = time.monotonic()
    while time.monotonic() - started < 2.5:      # well past the first read's deadline
        time.sleep(0.4)
        assert client.command("NOOP") == b"+OK"
    last = time.monotonic()
    assert client.line() == b"-ERR idle timeout, closing"
    assert 0.9 <= time.monotonic() - last <= 2.0
    assert client.closed_by_server()


def test_access_control(pop3_server: Pop3Server) -> None:
    pop3_server.set("pop3.general.access_control_list", ["127.0.0.0/8"])
    client = RawPop3(pop3_server.host, pop3_server.port)
    assert client.line() == b"-ERR access denied"
    assert client.closed_by_server()
    pop3_server.set("pop3.general.access_control_mode", "allow_listed_only")
    client = RawPop3(pop3_server.host, pop3_server.port)
    assert client.line().startswith(b"+OK")
    client.close()


def test_maximum_connections(pop3_server: Pop3Server) -> None:
    pop3_server.set("pop3.general.max_connections", 2)
    first, _ = connect(pop3_server)
    second, _ = connect(pop3_server)
    third = RawPop3(pop3_server.host, pop3_server.port)
    assert third.line() == b"-ERR [SYS/TEMP] too many connections, try again later"
    first.close()
    second.close()


def test_alternate_welcome(pop3_server: Pop3Server) -> None:
    pop3_server.set("pop3.advanced.alternate_welcome_enabled", True)
    pop3_server.set("pop3.advanced.alternate_welcome_text", "Hello from Postroom")
    _, greeting = connect(pop3_server)
    assert greeting.startswith(b"+OK Hello from Postroom <")


def test_pop_before_smtp_record(pop3_server: Pop3Server, raw: RawPop3) -> None:
    before = time.time()
    raw.login()
    row = pop3_server.store.conn.execute(
        "SELECT max(at) FROM login_record WHERE client_ip = ? AND service LIKE 'pop%'",
        ("127.0.0.1",)).fetchone()
    assert row[0] is not None and row[0] >= before - 1
    from postroom.connectors.smtp.policy.relay import pop_before_smtp_allowed
    assert pop_before_smtp_allowed(row[0], time.time(), 15 * 60)


def test_logs(pop3_server: Pop3Server, raw: RawPop3) -> None:
    pop3_server.deliver("bob", message(1))
    raw.login()
    raw.command("RETR 1")
    raw.multiline()
    raw.command("QUIT")
    raw.closed_by_server()
    folder = pop3_server.home / "logs" / "POP3"

    def text(pattern: str) -> str:
        deadline = time.time() + 5
        while time.time() < deadline:
            files = list(folder.glob(pattern))
            if files and "QUIT" in files[0].read_text():
                return files[0].read_text()
            time.sleep(0.1)
        raise AssertionError(f"no {pattern} in {folder}")

    activity = text("POP3-Activity-*.log")
    debug = text("POP3-Debug-*.log")
    w3c = text("ex*.log")
    for log in (activity, debug, w3c):
        assert "RETR" in log and "USER" in log
        assert PASSWORD not in log
    assert "bob@example" in w3c
    assert "UPDATE removed 0 message(s)" in debug
