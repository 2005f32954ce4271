"""`postroom serve` runs in the foreground and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import postroom_executable


def test_serve_starts_and_stops_on_sigterm(home: Path) -> None:
    proc = subprocess.Popen([*postroom_executable(), "--home", str(home), "serve"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(2.5)
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stopped" in out


def test_serve_unknown_service_is_refused(cli_subprocess) -> None:
    result = cli_subprocess("serve", "nosuchservice", expect=2)
    assert "nosuchservice" in result.stderr
