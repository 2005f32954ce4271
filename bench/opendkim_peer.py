"""OpenDKIM as Postfix's signing milter: how Postfix DKIM-signs, for ``bench/smtp_relay.py``.

Why: Postfix has no signer of its own. A relay benchmark in which Postroom signs every
message (RSA-2048, about half a millisecond of CPU each here) and Postfix signs none
compares two different loads. With ``--dkim both`` Postfix signs too, the way its
administrators do it: Debian's ``opendkim`` daemon (installed here with apt-get when
missing) on a loopback port, named in ``smtpd_milters``.

The instance is private: its configuration, key and pid file live in the run's
temporary directory, it listens on ``127.0.0.1:PORT`` only, runs in the foreground in
a process group of its own and signs for one domain and selector with relaxed/relaxed
canonicalization and rsa-sha256, like Postroom's default. It never verifies
(``Mode s``) and logs nothing (``Syslog no``).

Known limits: the key is made per run and published nowhere (nobody verifies these
messages); ``RequireSafeKeys false`` because the key lives under ``/tmp``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from common import BenchError, apt_install, tree_cpu_seconds

CONF = """\
Syslog no
Mode s
Domain {domain}
Selector {selector}
KeyFile {key}
Socket inet:{port}@127.0.0.1
Canonicalization relaxed/relaxed
SignatureAlgorithm rsa-sha256
InternalHosts 127.0.0.1
Background no
PidFile {pid}
RequireSafeKeys false
"""


def ensure_opendkim() -> str:
    """The path of ``opendkim``, installing Debian's package if needed."""
    found = shutil.which("opendkim") or ("/usr/sbin/opendkim"
                                         if Path("/usr/sbin/opendkim").exists() else None)
    if found:
        return found
    print("opendkim is missing: installing Debian's opendkim package", file=sys.stderr)
    apt_install("opendkim")
    found = shutil.which("opendkim") or "/usr/sbin/opendkim"
    if not Path(found).exists():
        raise BenchError("opendkim still missing after installing it")
    return found


class OpenDkim:
    """A private ``opendkim -f`` on ``127.0.0.1:port`` signing for ``domain``."""

    def __init__(self, root: Path, port: int, domain: str, selector: str = "bench") -> None:
        self.root, self.port, self.domain, self.selector = root, port, domain, selector
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        binary = ensure_opendkim()
        self.root.mkdir(parents=True, exist_ok=True)
        key = self.root / f"{self.selector}.private"
        pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption())
        key.write_bytes(pem)
        key.chmod(0o600)
        conf = self.root / "opendkim.conf"
        conf.write_text(CONF.format(domain=self.domain, selector=self.selector, key=key,
                                    port=self.port, pid=self.root / "opendkim.pid"))
        self.proc = subprocess.Popen([binary, "-f", "-x", str(conf)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr \
                    else ""
                raise BenchError(f"opendkim did not start: {err.strip()}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.05)
        raise BenchError(f"opendkim did not listen on 127.0.0.1:{self.port} within 10 s")

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.proc.pid) if self.proc is not None else 0.0

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None
