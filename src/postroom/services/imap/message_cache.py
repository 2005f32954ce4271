"""The parsed MIME structure of messages, kept so FETCH does not parse a message again
(issue 8 design rule: parsed once and cached).

An LRU of :class:`.message.MessageView` keyed by the message file's path under
DIR/messages. Paths are never reused (a new message gets a new file name) and files
are never changed in place, so an entry never goes stale; an expunged message's entry
just ages out. The cache is bounded by total message octets (:data:`MAX_BYTES`) as
well as entries, since a view holds the message bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from postroom.services.imap.message import MessageView

MAX_ENTRIES = 2048
MAX_BYTES = 64 * 1024 * 1024


class MessageCache:
    def __init__(self, root: Path, max_entries: int = MAX_ENTRIES,
                 max_bytes: int = MAX_BYTES) -> None:
        self.root = root
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._views: OrderedDict[str, MessageView] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.parses = 0              # how many times a message was parsed (tests, stats)

    def get(self, path: str) -> MessageView:
        """The view of the message at ``path``; FileNotFoundError if it was expunged."""
        with self._lock:
            view = self._views.get(path)
            if view is not None:
                self._views.move_to_end(path)
                return view
        data = (self.root / path).read_bytes()
        view = MessageView.parse(data)
        with self._lock:
            self.parses += 1
            if path not in self._views:
                self._views[path] = view
                self._bytes += view.size
                while self._views and (len(self._views) > self.max_entries
                                       or self._bytes > self.max_bytes):
                    _, old = self._views.popitem(last=False)
                    self._bytes -= old.size
        return view
