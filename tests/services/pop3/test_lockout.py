"""1,000 failed POP3 logins: the lockout engages, nothing is deleted, others log in."""

from __future__ import annotations

import base64

from tests.servers import ALICE_PASSWORD
from tests.services.pop3.conftest import (
    PASSWORD,
    Pop3Server,
    RawPop3,
    message,
)


def test_thousand_failed_logins(pop3_server: Pop3Server) -> None:
    pop3_server.set("localhost.policies.lockout_enabled", True)
    pop3_server.set("localhost.policies.lockout_failed_attempts", 10)
    pop3_server.deliver("bob", message(1))
    failures = 0
    while failures < 1000:
        client = RawPop3(pop3_server.host, pop3_server.port)
        client.line()
        for _ in range(10):                       # the session closes after ten failures
            assert client.login(password=f"guess-{failures}") == \
                b"-ERR [AUTH] authentication failed"
            failures += 1
        assert client.closed_by_server()
        client.close()
    client = RawPop3(pop3_server.host, pop3_server.port)
    client.line()
    assert client.login() == b"-ERR [AUTH] authentication failed"      # locked out
    token = base64.b64encode(b"\0bob@example\0" + PASSWORD.encode()).decode()
    assert client.command(f"AUTH PLAIN {token}") == b"-ERR [AUTH] authentication failed"
    assert client.login(user="alice@example", password=ALICE_PASSWORD).startswith(b"+OK")
    client.close()
    assert len(pop3_server.uids()) == 1
    rows = pop3_server.store.conn.execute("SELECT count(*) FROM auth_failure").fetchone()[0]
    assert rows < 10                                # locked attempts are not stored
