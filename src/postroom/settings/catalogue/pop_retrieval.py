"""POP retrieval connector (manual 6.2.1): polling remote POP3 mailboxes.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("pop_retrieval.poll_interval", "int", 5, "6.2.1.1",
        "Poll Interval: Delay between polls of remote POP mailboxes.",
        minimum=1, maximum=1440, unit="minutes"),
    opt("pop_retrieval.max_threads", "int", 4, "6.2.1.1",
        "Max. number of threads: Concurrent polling threads.",
        minimum=1, maximum=64, unit="threads"),
    opt("pop_retrieval.history_days", "int", 30, "6.2.1.1",
        "Days to keep history: Retention of downloaded-message history used to avoid "
        "refetching.",
        minimum=1, maximum=3650, unit="days"),
    opt("pop_retrieval.add_received_header", "bool", True, "6.2.1.1",
        "Add received header to retrieved emails: Stamp a Received header at retrieval so "
        "clients sort by local arrival time."),
    opt("pop_retrieval.logging.enabled", "bool", True, "6.2.1.1",
        "Enable logging: Turn on logging for the retrieval connector."),
    opt("pop_retrieval.logging.activity_enabled", "bool", True, "6.2.1.1",
        "Advanced Logging (activity): Write the retrieval activity log."),
    opt("pop_retrieval.logging.debug_enabled", "bool", False, "6.2.1.1",
        "Advanced Logging (debug): Write the retrieval debug log."),
    opt("pop_retrieval.logging.w3c_enabled", "bool", True, "6.2.1.1",
        "Advanced Logging (W3C): Write the retrieval W3C log."),
]
