"""Service logs in the manual's formats (chapter 9.2): W3C, activity and debug.

Every service (SMTP, POP, IMAP, MTA, the post office and list connectors ...)
writes up to three logs into ``DIR/logs/<SERVICE>/``:

* :class:`W3CLog` — usage, W3C extended format, selectable fields (``exYYMMDD.log``);
* :class:`ActivityLog` — every command, tab-separated columns of manual 9.4
  (``SMTP-Activity-YYMMDD.log``);
* :class:`DebugLog` — explanations in words (``SMTP-Debug-YYMMDD.log``).

:class:`ServiceLogs` opens the three for one service; each has an ``enabled``
switch that the service sets from its settings and may flip at run time.
Message tracking across services (manual 9.4, "track") reads these files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from postroom.logs.activity import ACTIVITY_COLUMNS, ActivityLog, Direction
from postroom.logs.debug import DebugLog
from postroom.logs.files import Clock, LogNameError, local_clock
from postroom.logs.masking import SecretMasker, mask_arguments, mask_secrets
from postroom.logs.w3c import DEFAULT_W3C_FIELDS, W3C_FIELDS, W3CEntry, W3CLog, W3CRollover
from postroom.settings.model import OptionError

__all__ = [
    "ACTIVITY_COLUMNS",
    "DEFAULT_W3C_FIELDS",
    "W3C_FIELDS",
    "ActivityLog",
    "Clock",
    "DebugLog",
    "Direction",
    "LogNameError",
    "SecretMasker",
    "ServiceLogs",
    "SettingsReader",
    "W3CEntry",
    "W3CLog",
    "W3CRollover",
    "mask_arguments",
    "mask_secrets",
]


class SettingsReader(Protocol):
    """What the logs need of ``postroom.settings.server.Settings``."""

    def get(self, key: str) -> Any: ...


class ServiceLogs:
    """The three logs of one service under ``logs_root/<service>/``.

    ``w3c_directory`` overrides where the W3C files go (``smtp.logging.w3c_directory``).
    """

    def __init__(
        self,
        service: str,
        logs_root: Path,
        *,
        clock: Clock = local_clock,
        w3c_directory: Path | None = None,
    ) -> None:
        folder = Path(logs_root) / service
        self.activity = ActivityLog(service, folder, clock=clock)
        self.debug = DebugLog(service, folder, clock=clock)
        w3c_folder = Path(w3c_directory) if w3c_directory and str(w3c_directory) else folder
        self.w3c = W3CLog(service, w3c_folder, clock=clock)

    def close(self) -> None:
        self.activity.close()
        self.debug.close()
        self.w3c.close()

    def apply_settings(self, settings: SettingsReader, prefix: str) -> None:
        """Switch the logs from ``<prefix>.logging.*`` (``smtp``, ``pop3``, ``imap``, ``mta`` ...).

        Keys a service does not have (the MTA has no W3C log) leave that log off.
        Call again after a settings change: everything applies at once.
        """

        def read(name: str, default: Any) -> Any:
            try:
                return settings.get(f"{prefix}.logging.{name}")
            except OptionError:
                return default

        self.activity.enabled = bool(read("activity_enabled", False))
        self.debug.enabled = bool(read("debug_enabled", False))
        self.w3c.enabled = bool(read("w3c_enabled", False))
        fields = read("w3c_fields", None)
        if fields:
            self.w3c.fields = fields
        rollover = read("w3c_rollover", None)
        if rollover:
            self.w3c.rollover = rollover
