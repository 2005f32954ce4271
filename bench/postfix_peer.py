"""A private, loopback-only Postfix that accepts mail into its hold queue: the yardstick
for ``bench/smtp_accept.py``.

Why Postfix: it is the reference for a durable SMTP receiver (one queue file per
message, fsynced before the 250 reply), so "Postroom accepts at least 2x as fast as
Postfix on the same machine" is a claim about group commit, not about skipping
durability (``/work/shared/DEPENDENCIES.md``: the disk).

The instance never touches a system Postfix: it has its own ``config_directory``
(``main.cf``/``master.cf`` written here), ``queue_directory``, ``data_directory`` and
``maillog_file`` inside a temporary directory, listens on ``127.0.0.1:PORT`` only (a
free high port), relays for nobody (``permit_mynetworks, reject``), accepts one
recipient domain and puts every message on hold (``smtpd_end_of_data_restrictions =
check_client_access static:HOLD``), so nothing is ever delivered. No DNS is used:
no client name lookup, native host lookups, DNS support disabled for the clients.
Every daemon runs without chroot because the chroot would be the temporary queue
directory, which has none of the files a chroot needs.

Known limits: starting Postfix needs root (``mail_owner = postfix`` and
``setgid_group = postdrop`` come from Debian's ``postfix`` package, which
:func:`ensure_smtp_source` installs when ``smtp-source`` is missing).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from common import BenchError, apt_install, wait_for_banner


class PeerError(BenchError):
    """Postfix could not be installed, configured or started."""


def ensure_smtp_source() -> str:
    """The path of ``smtp-source``, installing Debian's ``postfix`` package if needed."""
    found = shutil.which("smtp-source")
    if found:
        return found
    print("smtp-source is missing: installing Debian's postfix package", file=sys.stderr)
    apt_install("postfix")
    # The package's post-install may have started the system instance: stop it so that
    # it does not keep port 25 (we only stop what our own install just started).
    if subprocess.run(["postfix", "status"], capture_output=True).returncode == 0:
        subprocess.run(["postfix", "stop"], capture_output=True, check=False)
    found = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    if not Path(found).exists():
        raise PeerError("smtp-source still missing after installing postfix")
    return found


MAIN_CF = """\
# Private benchmark instance written by bench/postfix_peer.py; loopback only.
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {root}/log/postfix.log
maillog_file_prefixes = {root}
myhostname = postfix-peer.bench.invalid
mydomain = bench.invalid
myorigin = $myhostname
mydestination = {domain}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks_style = host
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
smtpd_end_of_data_restrictions = check_client_access static:HOLD
local_recipient_maps = inline:{{ {local_part}=ok }}
alias_maps =
alias_database =
smtpd_peername_lookup = no
smtp_host_lookup = native
lmtp_host_lookup = native
smtp_dns_support_level = disabled
smtpd_banner = $myhostname ESMTP
smtpd_tls_security_level = none
smtp_tls_security_level = none
biff = no
readme_directory = no
html_directory = no
message_size_limit = 104857600
"""

MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:{port} inet n - n - - smtpd
pickup     unix  n - n 60   1 pickup
cleanup    unix  n - n -    0 cleanup
qmgr       unix  n - n 300  1 qmgr
rewrite    unix  - - n -    - trivial-rewrite
bounce     unix  - - n -    0 bounce
defer      unix  - - n -    0 bounce
trace      unix  - - n -    0 bounce
verify     unix  - - n -    1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -    - proxymap
proxywrite unix  - - n -    1 proxymap
smtp       unix  - - n -    - smtp
relay      unix  - - n -    - smtp
showq      unix  n - n -    - showq
error      unix  - - n -    - error
retry      unix  - - n -    - error
discard    unix  - - n -    - discard
local      unix  - n n -    - local
virtual    unix  - n n -    - virtual
lmtp       unix  - - n -    - lmtp
anvil      unix  - - n -    1 anvil
scache     unix  - - n -    1 scache
postlog    unix-dgram n - n - 1 postlogd
"""


class PostfixPeer:
    """One private Postfix instance under ``root``; use as a context manager.

    ``start()`` writes the configuration, creates the queue with Postfix's own
    ``set-permissions``, runs ``postfix -c DIR check`` and ``start`` and waits for the
    greeting; ``stop()`` (always run on exit) runs ``postfix -c DIR stop`` and waits
    for the master process to go away.
    """

    def __init__(self, root: Path, port: int, domain: str, local_part: str) -> None:
        self.root = root
        self.port = port
        self.domain = domain
        self.local_part = local_part
        self.config = root / "etc"
        self.queue = root / "queue"
        self.log = root / "log" / "postfix.log"
        self._started = False

    def _postfix(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["postfix", "-c", str(self.config), *args],
                              capture_output=True, text=True, timeout=120)
        if check and done.returncode:
            raise PeerError(f"postfix {' '.join(args)} failed ({done.returncode}): "
                            f"{(done.stderr or done.stdout).strip()[-2000:]}\n"
                            f"{self.log_tail()}")
        return done

    def start(self) -> None:
        if os.geteuid() != 0:
            raise PeerError("the Postfix peer needs root (mail_owner=postfix)")
        self.root.chmod(0o755)  # the postfix user must traverse to its queue
        for parent in self.root.resolve().parents:
            if not parent.stat().st_mode & 0o001:
                raise PeerError(f"{parent} is not searchable by others: the postfix "
                                "user could not reach its queue below it")
        for sub in (self.config, self.queue, self.root / "data", self.log.parent):
            sub.mkdir(mode=0o755, exist_ok=True)
        (self.config / "main.cf").write_text(MAIN_CF.format(
            root=self.root, domain=self.domain, local_part=self.local_part))
        (self.config / "master.cf").write_text(MASTER_CF.format(port=self.port))
        self._postfix("set-permissions")  # creates the queue tree with its owners
        self._postfix("check")
        self._postfix("start")
        self._started = True
        wait_for_banner(self.port, 30)

    def master_pid(self) -> int | None:
        try:
            return int((self.queue / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        if not self._started:
            return
        pid = self.master_pid()
        self._postfix("stop", check=False)
        deadline = time.monotonic() + 20
        while pid and time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            if pid:  # our own master did not exit: end it (its children follow)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._started = False

    def held(self) -> int:
        """Messages in the hold queue (one file each), i.e. accepted and durable."""
        hold = self.queue / "hold"
        return sum(len(files) for _, _, files in os.walk(hold))

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> PostfixPeer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
