"""Persistent state: see :mod:`postroom.store.store`."""

from postroom.store.datadir import DataDir, DataDirError
from postroom.store.store import Store

__all__ = ["DataDir", "DataDirError", "Store"]
