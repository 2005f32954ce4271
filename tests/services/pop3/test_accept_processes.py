"""Two POP3 accept processes share the ports; the maildrop lock holds across them."""

from __future__ import annotations

import poplib
import signal
from pathlib import Path

from tests.conftest import postroom_executable
from tests.servers import connection_ids_by_parity, serving_two_processes
from tests.services.pop3.conftest import PASSWORD, _prepare, message


def test_two_processes_serve_one_port_and_share_the_lock(tmp_path: Path) -> None:
    home = tmp_path / "data"
    store = _prepare(home)
    store.settings.set("pop3.general.accept_processes", 2)
    port = store.settings.get("pop3.port")
    store.messages.append("example", "bob", "Inbox", message(1))
    store.close()
    command = [*postroom_executable(), "--home", str(home), "serve", "pop3"]
    with serving_two_processes(command, port) as proc:
        sessions = []
        for _ in range(20):                  # the kernel spreads them over both
            client = poplib.POP3("127.0.0.1", port, timeout=10)
            sessions.append(client)
        client = sessions[0]
        client.user("bob@example")
        client.pass_(PASSWORD)
        for other in sessions[1:]:           # whichever process it reached: in use
            other.user("bob@example")
            try:
                other.pass_(PASSWORD)
                raise AssertionError("a second session got the maildrop")
            except poplib.error_proto as refused:
                assert b"IN-USE" in refused.args[0]
        assert client.stat()[0] == 1
        for session in sessions:
            session.quit()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert connection_ids_by_parity(home, "POP3") == {0, 1}, \
        "both processes served connections"
