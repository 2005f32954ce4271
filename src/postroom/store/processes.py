"""Whether a process of this host still runs: the one fact behind every clean-up of
files and claims a dead process left (spool files, new queue segments, temporary
message files, queue claims).

Names carry the writer's pid (``.new-PID-N``, ``msg-PID-N.tmp``, worker ids
``name:host:pid``), so a process can tell a dead peer's leftovers from a live peer's
work in progress. Zombies count as dead: they hold nothing any more.
"""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """True when ``pid`` runs on this host (a zombie does not run)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True          # someone else's process: alive
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True
