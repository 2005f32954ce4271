"""A private, loopback-only Dovecot serving POP3 or IMAP: the yardstick for
``bench/pop3_retrieve.py`` and ``bench/imap_load.py``.

Why Dovecot: it is the common reference for a POP3/IMAP server on Linux, so "at least
1.0 x Dovecot" is a claim against what a Postroom user would otherwise run.

The instance never touches a system Dovecot: its configuration, ``base_dir``,
``state_dir`` and log file are in a temporary directory, it listens on one free
loopback port (the TLS listener is off: TLS would cost the same OpenSSL work on both
sides), its users come from a passwd-file with plain passwords, and their Maildirs are
owned by ``nobody`` (the only uid it accepts). No chroot, because the login processes'
chroot would be the temporary directory. It runs in the foreground (``dovecot -F``) as
our child and is stopped with SIGTERM; its log tail is printed when a measurement
fails.

Known limits: needs root (Dovecot's privilege separation) and installs Debian's
``dovecot-pop3d`` or ``dovecot-imapd`` (``apt-get install --no-install-recommends``)
when missing, then stops the system instance its post-install may have started.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from common import apt_install, free_port, stop_process, wait_port
from postroom_home import PASSWORD

DOVECOT_CONF = """\
base_dir = {work}/run
state_dir = {work}/state
instance_name = {instance}-{port}
log_path = {work}/dovecot.log
info_log_path = {work}/dovecot.log
protocols = {protocol}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{work}/mail/%u
first_valid_uid = {uid}
last_valid_uid = {uid}
{extra}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {work}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={work}/mail/%u
}}
service {protocol}-login {{
  inet_listener {protocol} {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener {protocol}s {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""

# What each protocol adds to the configuration: POP3 UIDLs in Dovecot's own format.
EXTRA = {"pop3": "pop3_uidl_format = %08Xu%08Xv\n", "imap": ""}


def ensure_dovecot(protocol: str) -> str:
    """The path of ``dovecot``, installing Debian's ``dovecot-PROTOCOLd`` if needed."""
    found = shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
    if found and Path(f"/usr/lib/dovecot/{protocol}").exists():
        return found
    package = f"dovecot-{protocol}d"
    print(f"installing Debian's {package} ...", file=sys.stderr, flush=True)
    apt_install(package)
    # The post-install may have started the system instance: stop that one.
    subprocess.run(["/etc/init.d/dovecot", "stop"], capture_output=True, check=False)
    return shutil.which("dovecot") or "/usr/sbin/dovecot"


@contextmanager
def dovecot(work: Path, protocol: str, instance: str, users: int, messages: int,
            make_message: Callable[[int, int], bytes]) -> Iterator[int]:
    """A private Dovecot under ``work/dovecot`` serving ``protocol``; yields its port.

    Users ``u0``... (password :data:`PASSWORD`) each have ``messages`` of
    ``make_message(user, n)`` in their Maildir's ``cur`` (already seen by a client).
    """
    binary = ensure_dovecot(protocol)
    root = work / "dovecot"
    root.mkdir()
    os.chmod(work, 0o755)
    os.chmod(root, 0o755)
    nobody = pwd.getpwnam("nobody")
    port = free_port()
    (root / "dovecot.conf").write_text(DOVECOT_CONF.format(
        work=root, port=port, uid=nobody.pw_uid, gid=nobody.pw_gid, protocol=protocol,
        instance=instance, extra=EXTRA[protocol]))
    (root / "passwd").write_text("".join(f"u{n}:{{PLAIN}}{PASSWORD}\n"
                                         for n in range(users)))
    for user in range(users):
        box = root / "mail" / f"u{user}"  # mail_location is maildir:.../%u
        for sub in ("cur", "new", "tmp"):
            (box / sub).mkdir(parents=True)
        for n in range(messages):
            data = make_message(user, n)
            (box / "cur" / f"{1700000000 + n}.M{n}P1.bench,S={len(data)}:2,").write_bytes(data)
    subprocess.run(["chown", "-R", f"{nobody.pw_uid}:{nobody.pw_gid}", str(root / "mail")],
                   check=True)
    server = subprocess.Popen([binary, "-F", "-c", str(root / "dovecot.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port)
        yield port
    except Exception:
        log = root / "dovecot.log"
        if log.exists():
            print(log.read_text()[-2000:], file=sys.stderr)
        raise
    finally:
        stop_process(server)
