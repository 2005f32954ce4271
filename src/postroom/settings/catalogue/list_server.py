"""List server connector "LS" (manual 6.2.2): notifications, headers and logs.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("list_server.posting_failure_notifications", "bool", True, "6.2.2.1",
        "Generate posting failure notifications: Notify senders whose list posts were "
        "rejected (bad sender or password)."),
    opt("list_server.add_list_unsubscribe_header", "bool", True, "6.2.2.1",
        "Add ListUnsubscribe Header: Insert List-Unsubscribe header into list messages."),
    opt("list_server.bulk_spam_to_badmail", "bool", True, "6.2.2.1",
        "Send bulk email and spam messages to Bad Mail: Divert list-bound spam to the Bad "
        "Mail folder."),
    opt("list_server.logging.activity_enabled", "bool", True, "6.2.2.1",
        "Advanced Logging (activity): Write the list server activity log."),
    opt("list_server.logging.debug_enabled", "bool", False, "6.2.2.1",
        "Advanced Logging (debug): Write the list server debug log."),
]
