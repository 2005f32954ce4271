"""Kill the delivery processes at random moments: every accepted message ends up in each
recipient's mailbox exactly once (the issue's crash test)."""

from __future__ import annotations

import itertools
import random
import signal
import smtplib
import subprocess
import threading
import time
from email.parser import BytesHeaderParser
from pathlib import Path

from postroom.store import Store
from tests.conftest import postroom_executable
from tests.connectors.smtp.e2e.conftest import _prepare
from tests.connectors.smtp.e2e.test_subprocess import _wait_for_port
from tests.dnsserver import DnsTestServer

MESSAGES = 2000          # at least: the clients go on sending until the last kill
SENDERS = 4
KILLS = 20


def _serve(home: Path, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*postroom_executable(), "--home", str(home), "serve", name],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _subjects(store: Store, mailbox: str) -> list[str]:
    parser = BytesHeaderParser()
    return [str(parser.parsebytes(store.messages.read("example", mailbox, "Inbox", m.uid))
                ["Subject"])
            for m in store.messages.list_messages("example", mailbox, "Inbox")]


def test_killing_the_mta_and_the_post_office_connector_loses_and_doubles_nothing(
        tmp_path: Path) -> None:
    home = tmp_path / "data"
    with DnsTestServer() as dns:
        store = _prepare(home, dns)
        d = store.directory
        d.create_group("example", "staff")
        d.add_group_member("example", "staff", "[SF:example/bob]")
        d.add_group_member("example", "staff", "[SF:example/alice]")
        d.add_address("staff@example.com", "[SF:example/staff]")
        store.settings.set("smtp.inbound.max_connections_per_ip", 50)
        port = store.settings.get("smtp.port")
        store.close()
        smtp = _serve(home, "smtp")
        delivery = {"mta": _serve(home, "mta"), "postoffice": _serve(home, "postoffice")}
        accepted: dict[str, list[str]] = {}       # subject -> recipients' mailboxes
        lock = threading.Lock()
        errors: list[BaseException] = []
        numbers = itertools.count()
        killing = threading.Event()
        killing.set()

        def send() -> None:
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
                    client.ehlo("crash.remote.test")
                    while True:
                        with lock:
                            n = next(numbers)
                        if n >= MESSAGES and not killing.is_set():
                            break
                        to_staff = n % 3 == 0
                        subject = f"crash {n}"
                        client.sendmail("carol@remote.test",
                                        ["staff@example.com" if to_staff else "bob@example.com"],
                                        f"Subject: {subject}\r\n\r\nmessage {n}\r\n".encode())
                        with lock:
                            accepted[subject] = ["bob", "alice"] if to_staff else ["bob"]
            except BaseException as exc:  # reported below
                errors.append(exc)

        try:
            _wait_for_port(port, smtp)  # type: ignore[arg-type]
            # Mail flows until the last kill, so that every kill can find work.
            senders = [threading.Thread(target=send) for _ in range(SENDERS)]
            for thread in senders:
                thread.start()
            rng = random.Random(5)
            busy_kills = 0                       # kills that hit a process holding mail
            watch = Store.open(home)
            for _ in range(KILLS):               # 20 random moments while mail flows
                time.sleep(rng.uniform(0.02, 0.3))
                name = rng.choice(["mta", "postoffice", "both"])
                for victim in (["mta", "postoffice"] if name == "both" else [name]):
                    queue = "MTA.inbound" if victim == "mta" else "SF.outgoing"
                    pid = f":{delivery[victim].pid}"
                    # At a moment it holds mail; a process just restarted on a busy
                    # machine may need a few seconds before its first claim.
                    deadline = time.monotonic() + 5.0
                    while time.monotonic() < deadline:
                        if any(c.endswith(pid) for c in watch.queue.claimants(queue)):
                            busy_kills += 1
                            break
                        time.sleep(0.002)
                    delivery[victim].send_signal(signal.SIGKILL)
                    delivery[victim].wait(10)
                    delivery[victim] = _serve(home, victim)
            watch.close()
            killing.clear()
            for thread in senders:
                thread.join(300)
            assert not errors, errors
            assert busy_kills >= 10, f"only {busy_kills} kills hit a process at work"
            assert len(accepted) >= MESSAGES
            with Store.open(home) as check:
                deadline = time.monotonic() + 180
                while time.monotonic() < deadline:
                    pending = [e for e in check.queue.list() if e.queue in
                               ("MTA.inbound", "SF.outgoing")]
                    if not pending:
                        break
                    time.sleep(0.2)
                assert not pending, f"{len(pending)} entries still queued"
                boxes = {name: _subjects(check, name) for name in ("bob", "alice")}
        finally:
            for proc in [smtp, *delivery.values()]:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in [smtp, *delivery.values()]:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    for mailbox, subjects in boxes.items():
        expected = sorted(s for s, boxes_ in accepted.items() if mailbox in boxes_)
        doubled = sorted({s for s in subjects if subjects.count(s) > 1})
        assert not doubled, f"{mailbox}: delivered twice: {doubled[:10]}"
        missing = sorted(set(expected) - set(subjects))
        assert not missing, f"{mailbox}: lost: {missing[:10]}"
        assert sorted(subjects) == expected
    assert not list((home / "badmail").glob("*.eml")), "nothing went to bad mail"
