"""Management service agents (manual 6.3.1): greylist cleanup and log archiving.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("management.service.enabled", "bool", True, "6.3.1.1",
        "Management service: Enables the service hosting the greylist cleanup and log archive"
        " agents."),
    opt("management.logging.debug_enabled", "bool", False, "6.3.1.2.1",
        "Debug log: Write the management service debug log."),
    opt("management.logging.directory", "path", "", "6.3.1.2.1",
        "Debug log (path): Folder for management log files. Empty: the logs folder of the "
        "data directory."),
    opt("management.greylist_cleanup.enabled", "bool", True, "6.3.1.3",
        "Enable Greylist Purge Agent on this server: Periodically purge stale greylist entries."),
    opt("management.greylist_cleanup.purge_interval", "int", 60, "6.3.1.3",
        "Purge Interval: How often the greylist purge runs.",
        minimum=1, maximum=10080, unit="minutes"),
    opt("management.log_archive.enabled", "bool", False, "6.3.1.4",
        "Log Archive agent (Enable): Compress old log files into cabinet archives."),
    opt("management.log_archive.agent.status", "enum", "enabled", "6.3.1.4",
        "Status: Per log-source archiving agent enabled or disabled.",
        choices=("enabled", "disabled")),
    opt("management.log_archive.agent.frequency", "enum", "weekly", "6.3.1.4",
        "Archive frequency: Daily, Weekly or Monthly archiving.",
        choices=("daily", "weekly", "monthly")),
    opt("management.log_archive.agent.keep_unarchived_days", "int", 7, "6.3.1.4",
        "Length of time to keep the logs unarchived: Age before logs get compressed.",
        minimum=1, maximum=3650, unit="days"),
    opt("management.log_archive.custom.name", "str", "", "6.3.1.4",
        "Name (custom log agent): Name of a user-defined log archiving agent."),
    opt("management.log_archive.custom.description", "str", "", "6.3.1.4",
        "Description (custom log agent): Description of a custom archiving agent."),
    opt("management.log_archive.custom.source_directory", "path", "", "6.3.1.4",
        "Log file directory to be archived: Folder whose logs the custom agent archives."),
    opt("management.log_archive.custom.target_directory", "path", "", "6.3.1.4",
        "Target folder for archived files: Folder receiving compressed archives."),
    opt("management.log_archive.purge_age", "int", 0, "6.3.1.4",
        "Purge compressed archives after age: Compressed archives may be deleted once old "
        "enough (age control not named). 0: keep archives forever.",
        minimum=0, maximum=36500, unit="days"),
]
