"""Two mail programs people really use, talking to the real service: swaks and msmtp.

swaks (Debian ``swaks``, TLS through ``libnet-ssleay-perl``) is the administrator's
SMTP test tool: plain, pipelined, STARTTLS, implicit TLS, each AUTH mechanism, and a
message over SIZE. msmtp is what a user's mail program or cron job submits with: a
configuration file, STARTTLS on the submission port, AUTH, the message on stdin.
Each test checks what the user would notice: the client's exit status and the
message in ``MTA.inbound`` with the right envelope and body. CI installs both (see
``.ci/run``); without them the tests are skipped, naming the missing program.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from postroom.net.certificates import certificate_names
from tests.connectors.smtp.e2e.conftest import ALICE_PASSWORD, PASSWORD, SmtpServer

QUEUED = re.compile(rb"250 2\.0\.0 OK queued as (\S+)")


def _need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed (Debian package {program}; .ci/run installs it)")
    return path


def swaks(server: SmtpServer, *args: str, port: int | None = None,
          expect: int | None = 0) -> bytes:
    """Run swaks against ``server``; returns its transcript (stdout and stderr)."""
    binary = _need("swaks")
    proc = subprocess.run(
        [binary, "--server", server.host, "--port", str(port or server.port),
         "--helo", "client.remote.test", "--timeout", "10", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, check=False)
    if expect is not None:
        assert proc.returncode == expect, proc.stdout.decode(errors="replace")
    return proc.stdout


def tracking_id(transcript: bytes) -> str:
    found = QUEUED.findall(transcript)
    assert len(found) == 1, transcript.decode(errors="replace")
    return found[0].decode()


def test_swaks_plain_message_to_local_mailbox(smtp_server: SmtpServer) -> None:
    out = swaks(smtp_server, "--from", "someone@remote.test", "--to", "bob@example.com",
                "--header", "Subject: swaks plain", "--body", "plain body from swaks")
    entry = smtp_server.store.queue.get(tracking_id(out))
    assert entry.envelope.sender == "[SMTP:someone@remote.test]"
    assert entry.envelope.recipients == ["[SF:example/bob]"]
    assert entry.envelope.extra["helo"] == "client.remote.test"
    body = smtp_server.body(entry.tracking_id)
    assert body.startswith(b"Received: from client.remote.test ([127.0.0.1])")
    assert b"\r\nSubject: swaks plain\r\n" in body
    assert body.rstrip().endswith(b"plain body from swaks")


def test_swaks_pipelined_to_two_mailboxes(smtp_server: SmtpServer) -> None:
    out = swaks(smtp_server, "--pipeline", "--from", "someone@remote.test",
                "--to", "bob@example.com,alice@example.com",
                "--header", "Subject: pipelined", "--body", "both of you")
    assert b"PIPELINING" in out
    entry = smtp_server.store.queue.get(tracking_id(out))
    assert entry.envelope.recipients == ["[SF:example/bob]", "[SF:example/alice]"]
    assert smtp_server.body(entry.tracking_id).rstrip().endswith(b"both of you")


def test_swaks_pipelined_with_a_refused_recipient(smtp_server: SmtpServer) -> None:
    """swaks gives up on the transaction when a recipient is refused; nothing queued."""
    out = swaks(smtp_server, "--pipeline", "--from", "someone@remote.test",
                "--to", "nobody@example.com", "--body", "x", expect=None)
    assert b"550 5.1.1" in out
    assert smtp_server.entries() == []


def test_swaks_starttls_on_mx_port(smtp_server: SmtpServer) -> None:
    out = swaks(smtp_server, "--tls", "--from", "someone@remote.test", "--to", "bob@example.com",
                "--body", "over STARTTLS")
    assert b"220 2.0.0" in out          # the STARTTLS go-ahead
    entry = smtp_server.store.queue.get(tracking_id(out))
    assert entry.envelope.extra["tls"].startswith("TLSv1.")
    received = smtp_server.body(entry.tracking_id).split(b"\r\n\r\n")[0]
    assert b"with ESMTPS id " + entry.tracking_id.encode() in received


def test_swaks_implicit_tls_on_smtps_port_with_auth(smtp_server: SmtpServer) -> None:
    out = swaks(smtp_server, "--tlsc", "--auth", "PLAIN", "--auth-user", "bob@example.com",
                "--auth-password", PASSWORD, "--from", "bob@example.com",
                "--to", "far@remote.test", "--body", "relayed over implicit TLS",
                port=smtp_server.smtps_port)
    entry = smtp_server.store.queue.get(tracking_id(out))
    assert entry.envelope.recipients == ["[SMTP:far@remote.test]"]
    assert entry.envelope.auth_user == "bob@example"
    assert entry.envelope.extra["listener"] == "smtps"
    received = smtp_server.body(entry.tracking_id).split(b"\r\n\r\n")[0]
    assert b"with ESMTPSA id " in received


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_swaks_auth_mechanisms_on_submission(smtp_server: SmtpServer, mechanism: str) -> None:
    out = swaks(smtp_server, "--tls", "--auth", mechanism, "--auth-user", "alice@example.com",
                "--auth-password", ALICE_PASSWORD, "--from", "alice@example.com",
                "--to", "far@remote.test", "--body", f"submitted with {mechanism}",
                port=smtp_server.submission_port)
    assert b"235 " in out
    entry = smtp_server.store.queue.get(tracking_id(out))
    assert entry.envelope.auth_user == "alice@example"
    assert entry.envelope.recipients == ["[SMTP:far@remote.test]"]
    assert entry.envelope.extra["listener"] == "submission"
    assert smtp_server.body(entry.tracking_id).rstrip().endswith(
        f"submitted with {mechanism}".encode())


def test_swaks_wrong_password_is_refused_and_nothing_sent(smtp_server: SmtpServer) -> None:
    out = swaks(smtp_server, "--tls", "--auth", "LOGIN", "--auth-user", "alice@example.com",
                "--auth-password", "not-her-password", "--from", "alice@example.com",
                "--to", "far@remote.test", port=smtp_server.submission_port, expect=None)
    assert b"535 5.7.8" in out
    assert QUEUED.search(out) is None
    assert smtp_server.entries() == []


def test_swaks_message_over_size_gets_552_and_nothing_queued(smtp_server: SmtpServer,
                                                               tmp_path: Path) -> None:
    smtp_server.set("smtp.inbound.advertised_max_message_size", 10_000)
    body = tmp_path / "big.txt"
    body.write_text("0123456789abcdef" * 2000 + "\n")
    out = swaks(smtp_server, "--from", "someone@remote.test", "--to", "bob@example.com",
                "--body", f"@{body}", expect=None)
    assert b"SIZE 10000" in out
    assert b"552 5.3.4" in out
    assert QUEUED.search(out) is None
    assert smtp_server.entries() == []
    assert not any((smtp_server.home / "tmp").glob("smtp-*"))


# -- msmtp ---------------------------------------------------------------------------


def _msmtp_config(server: SmtpServer, path: Path, *, password: str = PASSWORD,
                  verify: bool = False) -> Path:
    tls = (f"tls_trust_file {server.home / 'tls' / 'cert.pem'}\n"
           "tls_host_override mail.test\n") if verify else "tls_certcheck off\n"
    path.write_text(
        "defaults\n"
        "logfile -\n"
        "account postroom\n"
        f"host {server.host}\n"
        f"port {server.submission_port}\n"
        "tls on\n"
        "tls_starttls on\n"
        + tls +
        "auth on\n"
        "user bob@example.com\n"
        f"password {password}\n"
        "from bob@example.com\n"
        "domain laptop.example.net\n"
        "account default : postroom\n")
    path.chmod(0o600)   # msmtp refuses a readable file holding a password
    return path


def msmtp(config: Path, recipients: list[str],
          message: bytes) -> subprocess.CompletedProcess[bytes]:
    binary = _need("msmtp")
    return subprocess.run([binary, "-C", str(config), *recipients], input=message,
                          capture_output=True, timeout=60, check=False)


MSMTP_MESSAGE = (b"From: Bob <bob@example.com>\n"
                 b"To: Far Away <far@remote.test>, Alice <alice@example.com>\n"
                 b"Subject: from msmtp\n"
                 b"\n"
                 b"Hello from a user's mail program.\n"
                 b".a line starting with a dot\n")


@pytest.mark.parametrize("verify", [False, True], ids=["certcheck-off", "trust-file"])
def test_msmtp_submits_like_a_user(smtp_server: SmtpServer, tmp_path: Path, verify: bool) -> None:
    if verify and "mail.test" not in certificate_names(smtp_server.home / "tls" / "cert.pem"):
        pytest.skip("the test certificate does not name mail.test")
    config = _msmtp_config(smtp_server, tmp_path / "msmtprc", verify=verify)
    proc = msmtp(config, ["far@remote.test", "alice@example.com"], MSMTP_MESSAGE)
    assert proc.returncode == 0, (proc.stdout + proc.stderr).decode(errors="replace")
    [entry] = smtp_server.entries()
    assert entry.envelope.sender == "[SMTP:bob@example.com]"
    assert entry.envelope.recipients == ["[SMTP:far@remote.test]", "[SF:example/alice]"]
    assert entry.envelope.auth_user == "bob@example"
    assert entry.envelope.extra["helo"] == "laptop.example.net"
    assert entry.envelope.extra["listener"] == "submission"
    assert entry.envelope.extra["tls"].startswith("TLSv1.")
    body = smtp_server.body(entry.tracking_id)
    received, _, rest = body.partition(b"\r\nFrom: Bob")
    assert b"with ESMTPSA id " + entry.tracking_id.encode() in received
    # msmtp sends CRLF lines and dot-stuffs; we store exactly what the user wrote.
    assert (b"From: Bob" + rest).endswith(
        MSMTP_MESSAGE.split(b"\n\n", 1)[1].replace(b"\n", b"\r\n"))
    assert b"\r\nSubject: from msmtp\r\n" in rest


def test_msmtp_wrong_password_fails_and_queues_nothing(smtp_server: SmtpServer,
                                                       tmp_path: Path) -> None:
    config = _msmtp_config(smtp_server, tmp_path / "msmtprc", password="wrong")
    proc = msmtp(config, ["far@remote.test"], MSMTP_MESSAGE)
    assert proc.returncode != 0
    assert b"535" in proc.stdout + proc.stderr
    assert smtp_server.entries() == []
