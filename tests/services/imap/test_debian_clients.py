"""Debian IMAP clients against the real service, as real subprocesses: fetchmail over
IMAP (STARTTLS and implicit TLS), mbsync (isync: a full sync of 1,000 messages, then an
incremental one) and neomutt in batch mode (list, read, move, delete). A test is
skipped, with the reason, only when its client is not installed (``.ci/run`` installs
fetchmail, isync and neomutt)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.services.imap.conftest import PASSWORD, ImapServer, message


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed (Debian package; .ci/run installs it)")
    return path


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit-tls"])
def test_fetchmail_imap(imap_server: ImapServer, tmp_path: Path, implicit: bool) -> None:
    binary = need("fetchmail")
    imap_server.set("imap.security.allow_plaintext_auth_without_tls", False)
    for n in range(1, 4):
        imap_server.deliver(message(n))
    out = tmp_path / "fetched"
    out.mkdir()
    rc = tmp_path / "fetchmailrc"
    port = imap_server.imaps_port if implicit else imap_server.port
    tls = "ssl" if implicit else "sslproto 'TLS1.2+'"
    rc.write_text(
        "set no bouncemail\n"
        f"poll 127.0.0.1 protocol imap port {port} auth password\n"
        f"  user 'bob@example' password '{PASSWORD}' is root here\n"
        f"  {tls} no sslcertck nokeep fetchall\n"
        f"  mda \"/bin/sh -c 'cat > {out}/$$.eml'\"\n")
    rc.chmod(0o600)
    env = {**os.environ, "HOME": str(tmp_path), "FETCHMAILHOME": str(tmp_path)}
    done = subprocess.run([binary, "--nodetach", "--nosyslog", "--pidfile",
                           str(tmp_path / "fetchmail.pid"), "-f", str(rc), "-v"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    bodies = sorted(p.read_bytes().replace(b"\r\n", b"\n").split(b"\n\n", 1)[1]
                    for p in out.glob("*.eml"))
    assert bodies == [f"Body of message {n}.\n".encode() for n in range(1, 4)]
    assert imap_server.messages() == []            # nokeep: deleted and expunged


def _mbsyncrc(server: ImapServer, tmp_path: Path, local: Path) -> Path:
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        f"IMAPAccount test\nHost 127.0.0.1\nPort {server.imaps_port}\nUser bob@example\n"
        f"Pass {PASSWORD}\nSSLType IMAPS\nCertificateFile {server.home / 'tls' / 'cert.pem'}\n"
        "AuthMechs LOGIN\n\n"
        "IMAPStore remote\nAccount test\n\n"
        f"MaildirStore local\nPath {local}/\nInbox {local}/INBOX\nSubFolders Verbatim\n\n"
        "Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\n"
        "SyncState *\nSync All\nExpunge Both\n")
    return rc


def test_mbsync_full_then_incremental(imap_server: ImapServer, tmp_path: Path) -> None:
    binary = need("mbsync")
    for n in range(1000):
        imap_server.deliver(message(n))
    local = tmp_path / "Mail"
    local.mkdir()
    rc = _mbsyncrc(imap_server, tmp_path, local)
    env = {**os.environ, "HOME": str(tmp_path)}

    def run() -> subprocess.CompletedProcess[str]:
        done = subprocess.run([binary, "-c", str(rc), "-V", "sync"], capture_output=True,
                              text=True, timeout=300, env=env)
        if "certificate" in done.stderr.lower() and done.returncode != 0:
            pytest.skip("mbsync refuses the self-signed certificate: " + done.stderr[-300:])
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done

    run()
    assert len(list((local / "INBOX" / "new").iterdir()) +
               list((local / "INBOX" / "cur").iterdir())) == 1000
    # Incremental: two new messages on the server, one flagged, one deleted locally.
    imap_server.deliver(message(1001))
    imap_server.deliver(message(1002))
    imap_server.store.messages.set_flags("example", "bob", "Inbox", [5], ["\\Flagged"])
    run()
    files = list((local / "INBOX" / "new").iterdir()) + list((local / "INBOX" / "cur").iterdir())
    assert len(files) == 1002
    assert any(f.name.endswith("F") or ":2,F" in f.name for f in files)
    victim = files[0]
    victim.unlink()
    run()
    assert len(imap_server.messages()) == 1001


def test_neomutt_batch_list_read_move_delete(imap_server: ImapServer, tmp_path: Path) -> None:
    """neomutt driven by pushed keys (under ``script`` for a terminal): read the first
    message, move the second to Archive, delete the third, sync and quit."""
    binary = need("neomutt")
    script = need("script")
    for n, subject in enumerate(("alpha", "beta", "gamma"), 1):
        imap_server.deliver(message(n, subject=subject))
    imap_server.store.messages.create_folder("example", "bob", "Archive")
    rc = tmp_path / "muttrc"
    rc.write_text(
        f'set folder="imap://bob@example@127.0.0.1:{imap_server.port}/"\n'
        f'set imap_pass="{PASSWORD}"\nset spoolfile="+INBOX"\nset ssl_starttls=no\n'
        "set ssl_force_tls=no\nset confirmappend=no\nset delete=yes\nset mark_old=no\n"
        "set move=no\nset wait_key=no\nset header_cache=\"\"\nset message_cachedir=\"\"\n")
    keys = ("<search>~s alpha<enter><display-message><exit>"
            "<tag-pattern>~s beta<enter><tag-prefix><save-message>=Archive<enter>"
            "<delete-pattern>~s gamma<enter><sync-mailbox><quit>")
    env = {**os.environ, "HOME": str(tmp_path), "TERM": "xterm"}
    done = subprocess.run([script, "-qec", f"{binary} -n -F {rc} -e 'push \"{keys}\"'",
                           "/dev/null"], env=env, capture_output=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-1000:]
    assert b"alpha" in done.stdout                                 # the index listed it
    inbox = imap_server.messages()
    assert [m.uid for m in inbox] == [1]
    assert "\\Seen" in inbox[0].flags                              # alpha was read
    archive = imap_server.messages("Archive")
    assert len(archive) == 1
    assert b"Subject: beta" in imap_server.store.messages.read("example", "bob", "Archive",
                                                               archive[0].uid)
