"""Mail Transfer Agent (manual 6.1): threads, pickup event, logging and archiving.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("mta.general.inbound_max_delivery_time", "int", 5, "6.1.2",
        "Inbound mail max. delivery time: Age after which a message not yet marked ready in "
        "an inbound queue is forcibly processed.",
        minimum=1, maximum=1440, unit="minutes"),
    opt("mta.general.max_threads", "int", 8, "6.1.2",
        "Maximum threads: Concurrent message-moving threads; 1 helps command-line scanners "
        "that cannot run in parallel.",
        minimum=1, maximum=256, unit="threads"),
    opt("mta.general.pickup_event_enabled", "bool", False, "6.1.2",
        "Enable pickup event: Run an external program on each message as it arrives, before "
        "filters and antivirus."),
    opt("mta.general.pickup_event_program", "path", "", "6.1.2",
        "Enable pickup event (program): Executable called with messagefilename and "
        "connectortype (SMTP, LS, SF)."),
    opt("mta.logging.activity_enabled", "bool", True, "6.1.2",
        "Advanced Logging (activity log): Write the MTA activity log."),
    opt("mta.logging.debug_enabled", "bool", False, "6.1.2",
        "Advanced Logging (debug log): Write the MTA debug log."),
    opt("mta.archiving.enabled", "bool", False, "6.1.3",
        "Enable message archiving: Copy every processed message into a dated folder of an "
        "archive mailbox."),
    opt("mta.archiving.postoffice", "str", "", "6.1.3",
        "Post Office to archive to: Post office holding the archive mailbox."),
    opt("mta.archiving.mailbox", "str", "", "6.1.3",
        "Mailbox to archive to: Mailbox receiving archived copies."),
    opt("mta.archiving.folder", "str", "Archive", "6.1.3",
        "Folder name within mailbox to archive to: Folder under which date-named archive "
        "folders are created."),
    opt("mta.archiving.before_filters", "bool", False, "6.1.3",
        "Archive before anti-virus and filters are processed: Take the archive copy before "
        "antivirus and content filters run."),
    opt("mta.archiving.direction", "enum", "pickup", "6.1.3",
        "Archive picked up / delivered messages: Whether messages are archived on pickup by "
        "or delivery from the MTA (described in overview, control not named).",
        choices=("pickup", "delivery")),
]
