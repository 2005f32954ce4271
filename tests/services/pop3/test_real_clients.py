"""Real POP3 clients from Debian against the real service: fetchmail (STLS and implicit
TLS, keep and no-keep), mpop, getmail6 (as an unprivileged user: it refuses root) and
Python's poplib.

Each client downloads the same three messages (one stored with bare LF line ends,
one with a line starting with a dot) and must get them byte for byte; with "keep" the
mailbox is unchanged, without it the mailbox ends empty. The clients run as real
subprocesses; a test is skipped, with the reason, only when its client binary is not
installed (``.ci/run`` installs fetchmail, mpop and getmail6).
"""

from __future__ import annotations

import email
import mailbox
import os
import poplib
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.servers import client_tls
from tests.services.pop3.conftest import PASSWORD, Pop3Server, message

MESSAGES = [message(1), message(2, ".starts with a dot\r\n..two dots"),
            message(3, "bare\nline\nends", lf=True)]


def load(server: Pop3Server) -> None:
    for data in MESSAGES:
        server.deliver("bob", data)


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed (Debian package; .ci/run installs it)")
    return path


def subjects(path: Path) -> list[str]:
    return sorted(str(m["Subject"]) for m in mailbox.mbox(str(path)))


def bodies(path: Path) -> list[bytes]:
    return sorted(crlf(m.as_bytes(unixfrom=False)).split(b"\r\n\r\n", 1)[1]
                  for m in mailbox.mbox(str(path)))


def expected_bodies() -> list[bytes]:
    return sorted(crlf(m).split(b"\r\n\r\n", 1)[1] for m in MESSAGES)


# -- fetchmail -------------------------------------------------------------------------

def run_fetchmail(server: Pop3Server, tmp_path: Path, *, implicit: bool, keep: bool) -> Path:
    binary = need("fetchmail")
    out = tmp_path / "fetched"
    out.mkdir()
    rc = tmp_path / "fetchmailrc"
    port = server.pop3s_port if implicit else server.port
    tls = "ssl" if implicit else "sslproto 'TLS1.2+'"
    rc.write_text(
        "set no bouncemail\n"
        f"poll 127.0.0.1 protocol pop3 port {port} auth password\n"
        f"  user 'bob@example' password '{PASSWORD}' is root here\n"
        f"  {tls} no sslcertck {'keep' if keep else 'nokeep'} fetchall\n"
        f"  mda \"/bin/sh -c 'cat > {out}/$$.eml'\"\n")
    rc.chmod(0o600)
    env = {**os.environ, "HOME": str(tmp_path), "FETCHMAILHOME": str(tmp_path)}
    # Its own pid file: as root fetchmail otherwise uses one global one, and two tests
    # running at once would refuse each other.
    done = subprocess.run([binary, "--nodetach", "--nosyslog", "--pidfile",
                           str(tmp_path / "fetchmail.pid"), "-f", str(rc), "-v"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    transcript = done.stdout + done.stderr
    assert ("STLS" in transcript) != implicit
    return out


def from_mda(folder: Path) -> list[bytes]:
    """The bodies fetchmail handed to its MDA, one file per message."""
    return sorted(crlf(path.read_bytes()).split(b"\r\n\r\n", 1)[1]
                  for path in folder.glob("*.eml"))


@pytest.mark.parametrize("implicit", [False, True], ids=["stls", "implicit-tls"])
@pytest.mark.parametrize("keep", [True, False], ids=["keep", "nokeep"])
def test_fetchmail(pop3_server: Pop3Server, tmp_path: Path, implicit: bool,
                   keep: bool) -> None:
    pop3_server.set("pop3.security.allow_plaintext_auth_without_tls", False)
    load(pop3_server)
    out = run_fetchmail(pop3_server, tmp_path, implicit=implicit, keep=keep)
    got = from_mda(out)
    assert got == expected_bodies()
    assert len(pop3_server.uids()) == (3 if keep else 0)


# -- mpop ------------------------------------------------------------------------------

@pytest.mark.parametrize("implicit", [False, True], ids=["stls", "implicit-tls"])
def test_mpop(pop3_server: Pop3Server, tmp_path: Path, implicit: bool) -> None:
    binary = need("mpop")
    pop3_server.set("pop3.security.allow_plaintext_auth_without_tls", False)
    load(pop3_server)
    out = tmp_path / "mpop.mbox"
    out.touch()
    conf = tmp_path / "mpoprc"
    conf.write_text(
        "account default\nhost 127.0.0.1\n"
        f"port {pop3_server.pop3s_port if implicit else pop3_server.port}\n"
        f"user bob@example\npassword {PASSWORD}\ntls on\n"
        f"tls_starttls {'off' if implicit else 'on'}\ntls_certcheck off\n"
        f"delivery mbox {out}\nkeep off\nuidls_file {tmp_path / 'uidls'}\n")
    conf.chmod(0o600)
    done = subprocess.run([binary, "--file", str(conf), "-q"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert subjects(out) == ["test 1", "test 2", "test 3"]
    assert bodies(out) == expected_bodies()
    assert pop3_server.uids() == []


# -- getmail6 ---------------------------------------------------------------------------

GETMAIL_USER = "postroom-getmail"


def unprivileged_user() -> str:
    try:
        pwd.getpwnam(GETMAIL_USER)
        return GETMAIL_USER
    except KeyError:
        pass
    if os.geteuid() != 0:
        pytest.skip("getmail6 needs an unprivileged user and we cannot create one (not root)")
    useradd = shutil.which("useradd")
    if useradd is None:
        pytest.skip("useradd is not available to create an unprivileged user for getmail6")
    subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    GETMAIL_USER], check=True, capture_output=True)
    return GETMAIL_USER


@pytest.mark.parametrize("delete", [True, False], ids=["delete", "keep"])
def test_getmail6(pop3_server: Pop3Server, tmp_path: Path, delete: bool) -> None:
    binary = need("getmail")
    load(pop3_server)
    if os.geteuid() == 0:
        user = unprivileged_user()
        runas = ["runuser", "-u", user, "--"]
        info = pwd.getpwnam(user)
    else:
        runas, info = [], None
    # Outside pytest's private (0700) temporary tree, so the other user can reach it.
    work = Path(tempfile.mkdtemp(prefix="postroom-getmail-"))
    try:
        _getmail(pop3_server, binary, work, runas, info, delete)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _getmail(pop3_server: Pop3Server, binary: str, work: Path, runas: list[str],
             info: pwd.struct_passwd | None, delete: bool) -> None:
    out = work / "inbox.mbox"
    out.touch()
    rc = work / "getmailrc"
    rc.write_text(
        "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = 127.0.0.1\n"
        f"port = {pop3_server.pop3s_port}\nusername = bob@example\npassword = {PASSWORD}\n"
        f"[destination]\ntype = Mboxrd\npath = {out}\n"
        f"[options]\nread_all = true\ndelete = {'true' if delete else 'false'}\n"
        "message_log_syslog = false\n")
    if info is not None:
        for path in (work, out, rc):
            os.chown(path, info.pw_uid, info.pw_gid)
    done = subprocess.run([*runas, binary, "--getmaildir", str(work), "--rcfile", str(rc)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HOME": str(work)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert subjects(out) == ["test 1", "test 2", "test 3"]
    assert bodies(out) == expected_bodies()
    assert len(pop3_server.uids()) == (0 if delete else 3)


# -- poplib -----------------------------------------------------------------------------

def test_poplib_stls_user_pass(pop3_server: Pop3Server) -> None:
    pop3_server.set("pop3.security.allow_plaintext_auth_without_tls", False)
    load(pop3_server)
    client = poplib.POP3(pop3_server.host, pop3_server.port, timeout=10)
    assert "STLS" in client.capa()
    client.stls(client_tls())
    client.user("bob@example")
    client.pass_(PASSWORD)
    count, size = client.stat()
    assert count == 3 and size == sum(len(crlf(m)) for m in MESSAGES)
    _, listing, _ = client.list()
    for line, data in zip(listing, MESSAGES, strict=True):
        assert int(line.split()[1]) == len(crlf(data))
    for number, data in enumerate(MESSAGES, start=1):
        _, lines, _octets = client.retr(number)
        assert b"\r\n".join(lines) + b"\r\n" == crlf(data)
        client.dele(number)
    client.quit()
    assert pop3_server.uids() == []


def test_poplib_implicit_tls_apop_top_uidl(pop3_server: Pop3Server) -> None:
    load(pop3_server)
    client = poplib.POP3_SSL(pop3_server.host, pop3_server.pop3s_port, timeout=10,
                             context=client_tls())
    client.apop("bob@example", PASSWORD)
    _, uidl, _ = client.uidl()
    assert len(uidl) == 3
    _, top, _ = client.top(2, 1)
    parsed = email.message_from_bytes(b"\r\n".join(top))
    assert parsed["Subject"] == "test 2"
    assert parsed.get_payload().strip() == ".starts with a dot"
    client.rset()
    client.quit()
    assert len(pop3_server.uids()) == 3
