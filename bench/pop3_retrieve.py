"""POP3 retrieval rate: 20 clients each RETR and DELE 500 messages of 5 KB, against
Postroom's POP3 service and Dovecot's POP3 on the same machine, in the same run.

What is measured: messages per second, from the moment all 20 clients are logged in
until every client's QUIT (the UPDATE that removes the 500 messages) is answered;
login time is reported apart. Both servers get the same messages (CRLF line ends,
5,120 octets each), plain text logins on a loopback port (no TLS: TLS costs the same
OpenSSL work in both), and the same client: one asyncio process speaking raw POP3,
one command at a time per connection (RETR, then DELE, as fetchmail does).

Postroom runs as ``postroom serve pop3`` in its own process on a fresh data directory,
with its default logs (W3C, activity, debug) on. Dovecot is Debian's
``dovecot-pop3d`` (installed with ``apt-get install --no-install-recommends`` when
missing), run as a private instance: its own configuration, base and state
directories in a temporary directory, a loopback port, a passwd-file with the 20
users, Maildir mail owned by ``nobody``, and its own log file. It is stopped at the
end, as is anything the package's post-install started.

Run: ``make bench-pop3`` (needs root for apt-get and for Dovecot's privilege
separation). Prints one line per server and the ratio; ``--no-dovecot`` measures
Postroom alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLIENTS = 20
MESSAGES = 500
SIZE = 5 * 1024
PASSWORD = "Bench-Password-42!"
APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def wait_listeners(port: int, count: int, timeout: float = 30.0) -> None:
    """Wait until ``count`` sockets listen on ``port`` (every accept process is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
        if sum(1 for row in rows if row.split()[1].endswith(f":{port:04X}")
               and row.split()[3] == "0A") >= count:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{count} POP3 accept processes never listened on port {port}")


def make_message(user: int, n: int) -> bytes:
    head = (f"From: sender@example.net\r\nTo: u{user}@bench.test\r\n"
            f"Subject: message {n} for u{user}\r\nMessage-ID: <{user}.{n}@bench.test>\r\n\r\n")
    line = ("The quick brown fox jumps over the lazy dog; " * 2)[:76] + "\r\n"
    body = line * ((SIZE - len(head)) // len(line) + 1)
    data = (head + body).encode()[:SIZE - 2] + b"\r\n"
    assert len(data) == SIZE
    return data


# -- the client ---------------------------------------------------------------------------

class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def command(self, line: str) -> bytes:
        self.writer.write(line.encode() + b"\r\n")
        reply = await self.reader.readline()
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"{line.split()[0]}: {reply!r}")
        return reply

    async def body(self) -> int:
        """The message after ``+OK``: octets without the byte-stuffing and end marker."""
        data = await self.reader.readuntil(b"\r\n.\r\n")
        return len(data) - 3 - data.count(b"\r\n..") - data.startswith(b"..")


async def login(port: int, user: str) -> Client:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    client = Client(reader, writer)
    greeting = await reader.readline()
    assert greeting.startswith(b"+OK"), greeting
    await client.command(f"USER {user}")
    await client.command(f"PASS {PASSWORD}")
    return client


async def retrieve(client: Client) -> int:
    stat = await client.command("STAT")
    count = int(stat.split()[1])
    octets = 0
    for n in range(1, count + 1):
        await client.command(f"RETR {n}")
        octets += await client.body()
        await client.command(f"DELE {n}")
    await client.command("QUIT")
    client.writer.close()
    if count != MESSAGES or octets != MESSAGES * SIZE:
        raise RuntimeError(f"got {count} messages, {octets} octets")
    return count


async def run_clients(port: int, users: list[str]) -> tuple[float, float]:
    started = time.perf_counter()
    clients = await asyncio.gather(*(login(port, u) for u in users))
    logged_in = time.perf_counter()
    counts = await asyncio.gather(*(retrieve(c) for c in clients))
    done = time.perf_counter()
    assert sum(counts) == CLIENTS * MESSAGES
    return logged_in - started, done - logged_in


def measure(name: str, port: int, users: list[str]) -> float:
    login_time, elapsed = asyncio.run(run_clients(port, users))
    rate = CLIENTS * MESSAGES / elapsed
    print(f"{name:9} {rate:9.0f} messages/s  ({CLIENTS * MESSAGES} messages in {elapsed:.2f} s;"
          f" {CLIENTS} logins {login_time:.2f} s)", flush=True)
    return rate


# -- Postroom -----------------------------------------------------------------------------

def postroom(work: Path, logs: bool = True) -> float:
    from postroom.store import Store
    from postroom.store.initialise import initialise

    home = work / "postroom"
    initialise(home, hostname="bench.test")
    port = free_port()
    with Store.open(home) as store:
        store.directory.create_postoffice("bench")
        futures = []
        for user in range(CLIENTS):
            store.directory.create_mailbox("bench", f"u{user}", PASSWORD)
            welcome = [m.uid for m in store.messages.list_messages("bench", f"u{user}", "Inbox")]
            if welcome:
                store.messages.expunge("bench", f"u{user}", "Inbox", welcome)
            futures += [store.messages.append_async("bench", f"u{user}", "Inbox",
                                                    make_message(user, n))
                        for n in range(MESSAGES)]
        for future in futures:
            future.result()
        settings = store.settings
        settings.set("pop3.bind", ["127.0.0.1"])
        settings.set("pop3.port", port)
        settings.set("pop3.pop3s_port", 0)
        settings.set("pop3.security.allow_plaintext_auth_without_tls", True)
        # One accept process per CPU, as Dovecot runs a process per connection.
        settings.set("pop3.general.accept_processes", 0)
        for log in ("w3c_enabled", "activity_enabled", "debug_enabled"):
            settings.set(f"pop3.logging.{log}", logs)
    server = subprocess.Popen([sys.executable, "-m", "postroom.cli.main", "--home", str(home),
                               "serve", "pop3"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        wait_listeners(port, min(8, os.cpu_count() or 1))
        return measure("Postroom" if logs else "(no logs)", port,
                       [f"u{n}@bench" for n in range(CLIENTS)])
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# -- Dovecot ------------------------------------------------------------------------------

def ensure_dovecot() -> str:
    found = shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
    if found and Path("/usr/lib/dovecot/pop3").exists():
        return found
    print("installing Debian's dovecot-pop3d ...", file=sys.stderr, flush=True)
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "dovecot-pop3d"]
    done = subprocess.run(command, env=APT_ENV, capture_output=True, text=True)
    if done.returncode:
        subprocess.run(["apt-get", "update", "-q"], env=APT_ENV, capture_output=True)
        done = subprocess.run(command, env=APT_ENV, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"apt-get install dovecot-pop3d failed: {done.stderr[-800:]}")
    # The post-install may have started the system instance: stop that one.
    subprocess.run(["/etc/init.d/dovecot", "stop"], capture_output=True, check=False)
    return shutil.which("dovecot") or "/usr/sbin/dovecot"


DOVECOT_CONF = """\
base_dir = {work}/run
state_dir = {work}/state
instance_name = postroom-bench-{port}
log_path = {work}/dovecot.log
info_log_path = {work}/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{work}/mail/%u
first_valid_uid = {uid}
last_valid_uid = {uid}
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {work}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={work}/mail/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
service pop3-login {{
  chroot =
}}
"""


def dovecot(work: Path) -> float:
    binary = ensure_dovecot()
    root = work / "dovecot"
    root.mkdir()
    os.chmod(work, 0o755)
    os.chmod(root, 0o755)
    nobody = pwd.getpwnam("nobody")
    port = free_port()
    (root / "dovecot.conf").write_text(DOVECOT_CONF.format(
        work=root, port=port, uid=nobody.pw_uid, gid=nobody.pw_gid))
    (root / "passwd").write_text("".join(f"u{n}:{{PLAIN}}{PASSWORD}\n"
                                         for n in range(CLIENTS)))
    for user in range(CLIENTS):
        maildir = root / "mail" / f"u{user}" / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True)
        for n in range(MESSAGES):
            (maildir / "cur" / f"{1700000000 + n}.M{n}P1.bench,S={SIZE}:2,").write_bytes(
                make_message(user, n))
    subprocess.run(["chown", "-R", f"{nobody.pw_uid}:{nobody.pw_gid}", str(root / "mail")],
                   check=True)
    # mail_location points at maildir:.../%u: move Maildir up one level.
    for user in range(CLIENTS):
        box = root / "mail" / f"u{user}"
        for sub in ("cur", "new", "tmp"):
            (box / "Maildir" / sub).rename(box / sub)
        (box / "Maildir").rmdir()
    server = subprocess.Popen([binary, "-F", "-c", str(root / "dovecot.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port)
        return measure("Dovecot", port, [f"u{n}" for n in range(CLIENTS)])
    except Exception:
        log = root / "dovecot.log"
        if log.exists():
            print(log.read_text()[-2000:], file=sys.stderr)
        raise
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-dovecot", action="store_true", help="measure Postroom only")
    parser.add_argument("--no-logs", action="store_true",
                        help="also measure Postroom with its three POP3 logs off")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="postroom-pop3-bench-"))
    try:
        ours = postroom(work)
        if args.no_logs:
            postroom(work / "quiet", logs=False)
        if args.no_dovecot:
            return
        theirs = dovecot(work)
        print(f"ratio     {ours / theirs:.2f} x Dovecot (target: at least 1.0)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
