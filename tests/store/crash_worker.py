"""Child process for the crash test: append and enqueue from several threads, forever.

Usage: ``python -m tests.store.crash_worker HOME ROUND THREADS``. Prints ``READY``, then
one line per operation the store reported durable (``A <n> <uid>`` for an append to
example/bob Inbox, ``Q <n> <tracking id>`` for an enqueue), flushing each line, until
the parent SIGKILLs it. Payloads are a function of ``n`` (:func:`payload`), with sizes
that vary so a torn write would show.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from postroom.store import Store
from postroom.store.queue import Envelope


def payload(n: int) -> bytes:
    size = 600 + (n * 7919) % 30000
    head = f"Subject: crash test\r\nX-N: {n}\r\n\r\n".encode()
    return head + bytes([65 + n % 26]) * (size - len(head))


def number(data: bytes) -> int:
    """``n`` of a payload (raises if the header is torn)."""
    line = data.split(b"\r\n")[1]
    assert line.startswith(b"X-N: "), line
    return int(line[5:])


def main() -> None:
    home, round_no, threads = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    store = Store.open(home)
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def work(t: int) -> None:
        i = 0
        while True:
            n = round_no * 1_000_000 + t * 100_000 + i
            if i % 2 == 0:
                result = store.messages.append("example", "bob", "Inbox", payload(n))
                say(f"A {n} {result.uid}")
            else:
                entry = store.queue.enqueue(
                    "SMTP.inbound", Envelope("crash@example.net", ["[SF:example/bob]"]),
                    payload(n))
                say(f"Q {n} {entry.tracking_id}")
            i += 1

    store.messages  # noqa: B018 - open both parts before saying READY
    store.queue  # noqa: B018
    say("READY")
    for t in range(threads):
        threading.Thread(target=work, args=(t,), daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
