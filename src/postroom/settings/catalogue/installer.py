"""Installation and licensing (manual 4.2, 4.3, 5.10, 9.6).

These record answers given at install or upgrade time (`postroom init`). Postroom
needs no licence key; the row is kept so imported configurations round-trip.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("installer.initial_postoffice.name", "str", "", "4.2",
        "Creating an initial post office (name): Name of the first post office created at "
        "install time. This is used by `postroom init` and upgrades."),
    opt("installer.initial_postoffice.postmaster_password", "str", "", "4.2",
        "Creating an initial post office (postmaster password): Password for the postmaster "
        "mailbox of the initial post office. This is used by `postroom init` and upgrades.",
        secret=True),
    opt("installer.registration.name", "str", "", "4.2",
        "Registration details (name): Registrant name shown in the diagnostic utility. This "
        "is used by `postroom init` and upgrades."),
    opt("installer.registration.company", "str", "", "4.2",
        "Registration details (company name): Registrant company shown in the diagnostic "
        "utility. This is used by `postroom init` and upgrades."),
    opt("installer.upgrade.configuration_repository", "path", "", "4.3.3",
        "Configuration repository location (upgrade): Location of the existing configuration "
        "repository detected during upgrade. This is used by `postroom init` and upgrades. "
        "Empty: detected."),
    opt("installer.upgrade.config_data_mode", "enum", "preserve", "4.3.4",
        "Preserve Existing / Overwrite Configuration Data: Keep current post office and "
        "mailbox configuration on upgrade or replace it with a clean install. This is used by"
        " `postroom init` and upgrades.",
        choices=("preserve", "overwrite")),
    opt("installer.upgrade.backup_configuration", "bool", True, "4.3.4",
        "Backup Configuration Data BACKUP Directory: Copy file-based configuration "
        "repositories to a BACKUP folder before upgrading; databases are not backed up. This "
        "is used by `postroom init` and upgrades."),
    opt("config_store.option_files.postoffice_template", "text", "", "5.10",
        "Postoffice.SYS / Mailbox.sys base option files: Template option files copied when a "
        "new post office is created (file-based config only)."),
    opt("licensing.registration_key", "str", "", "9.6",
        "License key (Registration Wizard): Per-server licence key applied via the "
        "registration utility. Postroom needs no licence; kept for imported configurations."),
]
