"""What the benchmark scripts share: ports, child servers, /proc figures, apt and reports.

Why one module: every benchmark starts servers on loopback, waits for them, stops them
and reads their CPU or memory from ``/proc``; written once, a fix (a port race, a
server that ignores SIGTERM) reaches every comparison, and two benchmarks measure a
process the same way. The scripts run as ``.venv/bin/python bench/NAME.py``, so
Python puts ``bench/`` first on ``sys.path`` and ``import common`` finds this file.

Nothing here decides what a benchmark measures; each script's docstring says that.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


class BenchError(RuntimeError):
    """A benchmark could not set up, run or check its servers (printed, exit 2)."""


# -- run directories ---------------------------------------------------------------------

def run_directory(base: Path, name: str) -> Path:
    """A new, empty directory for one run, left in place until ``base`` is removed
    after all runs.

    Why not remove it after its run: on an ext4 file system without a journal (this
    project's test machine) the inode allocator skips inodes freed in the last one to
    five minutes (``recently_deleted`` in ext4's ``ialloc.c``). Deleting one run's
    10,000 message files right before the next run made that run's file creation up
    to seven times slower (10,000 creates of 5 KB: 0.14-0.24 s CPU in a fresh
    directory, 1.2-1.7 s just after two such deletions), whichever server it was.
    Kept, each run is slowed only by what its own server deletes while it runs.
    """
    root = base / name
    root.mkdir()
    return root


# -- ports ----------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    """Whether ``port`` on 127.0.0.1 can be bound now (e.g. 25 for an MX route)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_port(port: int, timeout: float = 30.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def wait_listeners(port: int, count: int, timeout: float = 30.0, what: str = "POP3") -> None:
    """Wait until ``count`` sockets listen on ``port`` (every accept process is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
        if sum(1 for row in rows if row.split()[1].endswith(f":{port:04X}")
               and row.split()[3] == "0A") >= count:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{count} {what} accept processes never listened on port {port}")


def wait_for_banner(port: int, timeout: float, alive: Callable[[], bool] | None = None) -> str:
    """Connect to 127.0.0.1:port until the server greets with 220; return the banner."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise BenchError(f"server on port {port} exited before it listened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                banner = sock.recv(512).decode("ascii", "replace").strip()
                sock.sendall(b"QUIT\r\n")
                if banner.startswith("220"):
                    return banner
                last = BenchError(f"unexpected greeting {banner!r}")
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise BenchError(f"nothing greeted on 127.0.0.1:{port} within {timeout:.0f} s: {last}")


# -- the messages -------------------------------------------------------------------------

MESSAGE_SIZE = 5 * 1024


def make_message(user: int, n: int) -> bytes:
    """Message ``n`` of mailbox ``u{user}``: 5,120 octets, CRLF line ends, a distinct
    Subject and Message-ID (what the POP3 and IMAP servers under test both get)."""
    head = (f"From: sender@example.net\r\nTo: u{user}@bench.test\r\n"
            f"Subject: message {n} for u{user}\r\nMessage-ID: <{user}.{n}@bench.test>\r\n\r\n")
    line = ("The quick brown fox jumps over the lazy dog; " * 2)[:76] + "\r\n"
    body = line * ((MESSAGE_SIZE - len(head)) // len(line) + 1)
    data = (head + body).encode()[:MESSAGE_SIZE - 2] + b"\r\n"
    assert len(data) == MESSAGE_SIZE
    return data


# -- child servers --------------------------------------------------------------------------


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0,
                 sig: signal.Signals = signal.SIGTERM) -> None:
    """Ask ``proc`` to end with ``sig``; kill it when it is still there after ``timeout``."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def serving(home: Path, service: str, stop_timeout: float = 10.0
            ) -> Iterator[subprocess.Popen[bytes]]:
    """``postroom --home HOME serve SERVICE`` as a child of this Python, silent.

    Run with ``sys.executable -m postroom.cli.main`` so that the server imports the
    same sources as the benchmark (``PYTHONPATH=src`` in a worktree); stopped with
    SIGTERM on leaving the block.
    """
    server = subprocess.Popen([sys.executable, "-m", "postroom.cli.main", "--home", str(home),
                               "serve", service], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        yield server
    finally:
        stop_process(server, stop_timeout)


# -- CPU and memory from /proc --------------------------------------------------------------


def children(pid: int) -> list[int]:
    """The direct children of ``pid``'s main thread."""
    with contextlib.suppress(OSError):
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def tree_pids(root: int) -> list[int]:
    """``root`` and all its living descendants (from ``/proc/PID/task/TID/children``)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo += [int(p) for p in (task / "children").read_text().split()]
    return found


def cpu_seconds(pids: list[int], reaped: bool = False) -> float:
    """User + system CPU of ``pids``; with ``reaped``, also of their waited-for children.

    Fields 14-15 of ``/proc/PID/stat`` are utime and stime, 16-17 cutime and cstime: a
    child that exited and was waited for is in its parent's cutime/cstime, a living
    one only in its own.
    """
    last = 15 if reaped else 13
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += sum(int(f) for f in fields[11:last])
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of the tree below ``root``, including children already reaped."""
    return cpu_seconds(tree_pids(root), reaped=True)


def cpu_by_service(root: int) -> dict[str, float]:
    """CPU seconds (user + system) of each living process below ``root``, by what it
    serves: ``serve smtp`` -> ``smtp``; the tree's root (the supervisor) is ``main``."""
    found: dict[str, float] = {}
    for pid in tree_pids(root):
        name = "main"
        with contextlib.suppress(OSError):
            words = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace") \
                .split("\0")
            if pid != root and "serve" in words and words.index("serve") + 1 < len(words):
                name = words[words.index("serve") + 1] or "serve"
        found[name] = found.get(name, 0.0) + cpu_seconds([pid])
    return found


def command_lines(root: int) -> list[str]:
    """The command lines of the tree below ``root`` (which services are running)."""
    lines = []
    for pid in tree_pids(root)[1:]:
        with contextlib.suppress(OSError):
            raw = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0")
            lines.append(raw.replace(b"\0", b" ").decode(errors="replace"))
    return lines


def vm_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in bytes."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


def rss(pid: int) -> int:
    """The resident set of ``pid`` in bytes (0 for a process without memory)."""
    return vm_status(pid).get("VmRSS", 0)


# -- Debian packages ------------------------------------------------------------------------

# A package's post-install must not leave a system daemon behind on the standard ports (the
# machine has no systemd, and policy-rc.d usually stops it anyway): callers stop it.
APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


def interpreter_of(command: str) -> str:
    """The Python a console script runs on (its ``#!`` line), as ``3.11.2 (/usr/bin/python3.11)``.

    Why: the interpreter's build moves Postroom's figures by a fifth (Debian's
    profile-guided build against a self-compiled one, ``bench/README.md``), so a report
    says which one it measured."""
    try:
        with open(command, "rb") as script:
            first = script.readline().decode(errors="replace")
    except OSError:
        return "unknown"
    if not first.startswith("#!"):
        return "unknown"
    try:
        out = subprocess.run(
            [*first[2:].split(), "-c",
             "import platform, sys; print(platform.python_version(), sys._base_executable)"],
            capture_output=True, text=True, timeout=30, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{out[0]} ({out[1]})" if len(out) == 2 else "unknown"


def apt_install(package: str) -> None:
    """``apt-get install`` one package without recommends; refresh the lists once if needed."""
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    done = subprocess.run(command, env=APT_ENV, capture_output=True, text=True)
    if done.returncode:  # a stale or missing package list: refresh it once and retry
        subprocess.run(["apt-get", "update", "-q"], env=APT_ENV, capture_output=True,
                       check=False)
        done = subprocess.run(command, env=APT_ENV, capture_output=True, text=True)
    if done.returncode:
        raise BenchError(f"apt-get install {package} failed: {done.stderr.strip()[-1000:]}")


# -- runs and reports -----------------------------------------------------------------------


def alternating(servers: list[str], runs: int) -> Iterator[tuple[int, str]]:
    """(run, server) pairs; which server goes first alternates, so neither always gets
    the cooler disk."""
    for i in range(1, runs + 1):
        for server in servers if i % 2 else list(reversed(servers)):
            yield i, server


def median(runs: list[dict[str, Any]], server: str, key: str) -> float | None:
    """The median of ``key`` over the successful runs of ``server``."""
    values = [r[key] for r in runs if r["server"] == server and r["ok"]]
    return statistics.median(values) if values else None


def emit(report: dict[str, Any], as_json: bool,
         table: Callable[[dict[str, Any]], None]) -> None:
    """The report as JSON on stdout, or as the script's readable table."""
    if as_json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        table(report)


def exit_on_signals() -> None:
    """SIGTERM (and SIGINT, even where a shell ignored it) unwind through the finally
    blocks, so servers, sinks and temporary directories go away."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    signal.signal(signal.SIGINT, signal.default_int_handler)


def run_main(main: Callable[[], int]) -> None:
    """Exit with ``main()``'s status; a :class:`BenchError` is one line and status 2."""
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
