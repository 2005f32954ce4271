"""Messaging Manager properties (manual 5.2): repositories, administration defaults,
password storage and footers.

``messaging_manager.security.encrypt_passwords`` decides whether mailbox passwords
are also kept encrypted (AES-GCM under the server key) so that challenge-response
mechanisms (CRAM-MD5, APOP) can work; Argon2 hashes are kept in every case.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("messaging_manager.general.configuration_repository", "path", "", "5.2.2",
        "Configuration Repository: Directory holding configuration data, including bad mail "
        "quarantine and queue directories; also chosen at install (4.2). Empty: the data "
        "directory chosen with --home.",
        live=False),
    opt("messaging_manager.general.message_store_repository", "path", "", "5.2.2",
        "Message Store Repository: Directory holding all stored mail data; also chosen at "
        "install (4.2). Empty: the messages folder of the data directory.",
        live=False),
    opt("messaging_manager.administration.new_mailbox_size_limit_enabled", "bool", False, "5.2.3",
        "New mailboxes have size limit: Whether mailboxes created via the admin program get a"
        " default quota."),
    opt("messaging_manager.administration.new_mailbox_size_limit", "int", 1024, "5.2.3",
        "New mailboxes have size limit (value): Default quota applied to new mailboxes made "
        "in the admin program; not applied to API-created mailboxes.",
        minimum=0, maximum=10_000_000, unit="MB"),
    opt("messaging_manager.administration.auto_create_address_per_domain", "bool", True, "5.2.3",
        "Automatically create an email address for each domain, with every new mailbox "
        "created: On mailbox creation, add a mailbox@domain address mapping for every domain "
        "of the post office."),
    opt("messaging_manager.administration.populate_asynchronously", "bool", True, "5.2.3",
        "Populate Asynchronously: Fill admin list views in the background so items are usable"
        " before loading completes."),
    opt("messaging_manager.administration.mailbox_list_disk_usage", "enum",
        "precalculated", "5.2.3",
        "When displaying the mailbox list, disk usage is determined: How mailbox sizes are "
        "shown: calculate (slow), precalculated DIRSIZE.tmp refreshed when >20 min old "
        "(fast), or not shown.",
        choices=("calculate", "precalculated", "hidden")),
    opt("messaging_manager.administration.virtual_list_limit", "int", 1000, "5.2.3",
        "Virtual list limit: Mailbox count above which admin uses an unsorted virtual list "
        "instead of loading everything.",
        minimum=0, maximum=10_000_000, unit="mailboxes"),
    opt("messaging_manager.security.encrypt_passwords", "bool", True, "5.2.4",
        "Password Details/Encrypt Passwords: Keep an AES-GCM encrypted copy of each mailbox "
        "password (under the server key) so CRAM-MD5 and APOP work; when off only the Argon2 "
        "hash is kept and those mechanisms are refused."),
    opt("messaging_manager.footers.scope", "enum", "disabled", "5.2.5",
        "Scope: Footer mode: disabled, global only, post office only, or post office footer "
        "followed by global footer.",
        choices=("disabled", "global", "postoffice", "postoffice_then_global")),
    opt("messaging_manager.footers.global_footer", "text", "", "5.2.5",
        "Global footer (disclaimer): Disclaimer text appended to messages sent to external "
        "addresses at the global level."),
]
