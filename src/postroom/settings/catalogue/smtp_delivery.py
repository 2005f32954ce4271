"""SMTP outbound delivery (manual 6.2.3.8 to 6.2.3.10): retries, notifications, NDRs,
smart host and logging.

The retry schedule defaults are the manual's (15, 30, 60, then every 240 minutes,
giving up after 30 hours).
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("smtp.delivery.first_retry", "int", 15, "6.2.3.8",
        "First Retry: Wait before first redelivery attempt.",
        minimum=1, maximum=10080, unit="minutes"),
    opt("smtp.delivery.second_retry", "int", 30, "6.2.3.8",
        "Second Retry: Wait before second redelivery attempt.",
        minimum=1, maximum=10080, unit="minutes"),
    opt("smtp.delivery.third_retry", "int", 60, "6.2.3.8",
        "Third Retry: Wait before third redelivery attempt.",
        minimum=1, maximum=10080, unit="minutes"),
    opt("smtp.delivery.subsequent_retries", "int", 240, "6.2.3.8",
        "Subsequent retries: Interval for later redelivery attempts.",
        minimum=1, maximum=10080, unit="minutes"),
    opt("smtp.delivery.failed_message_lifetime", "int", 30, "6.2.3.8",
        "Failed Message Lifetime: Queue lifetime before giving up to Bad Mail (default 30 h "
        "per 2.3); max retries also end delivery.",
        minimum=1, maximum=720, unit="hours"),
    opt("smtp.delivery.delay_notifications", "enum", "first", "6.2.3.8",
        "Delay notifications: Send no delay notice, one on first failure, or one per delay.",
        choices=("never", "first", "every")),
    opt("smtp.delivery.delay_notification_after", "int", 4, "6.2.3.8",
        "Delay notifications (only after a specified period): Minimum time since first "
        "attempt before any delay notice is sent.",
        minimum=0, maximum=720, unit="hours"),
    opt("smtp.delivery.disable_ndr", "bool", False, "6.2.3.8",
        "Do not generate Non-delivery Receipts: Suppress bounce messages for permanent failures."),
    opt("smtp.delivery.ndr_authenticated_only", "bool", True, "6.2.3.8",
        "Only generate NDRs for senders who authenticate: Avoid backscatter by bouncing only "
        "authenticated senders' mail. Safe default: on, against backscatter."),
    opt("smtp.delivery.ndr_to_inbound_queue", "bool", False, "6.2.3.8",
        "Directly insert Non-Delivery Receipts into Inbound Queue: Put NDRs in the SMTP "
        "inbound instead of the outbound queue."),
    opt("smtp.delivery.ndr_copy_enabled", "bool", False, "6.2.3.8",
        "Send a copy of all NDRs to: Copy every generated NDR to an address."),
    opt("smtp.delivery.ndr_copy_address", "email", "", "6.2.3.8",
        "Send a copy of all NDRs to (address): Recipient of NDR copies."),
    opt("smtp.delivery.limit_concurrent_connections_enabled", "bool", True, "6.2.3.8",
        "Limit concurrent connections: Cap simultaneous outbound connections to one remote "
        "server."),
    opt("smtp.delivery.limit_concurrent_connections", "int", 5, "6.2.3.8",
        "Limit concurrent connections (value): Maximum simultaneous connections per "
        "destination server.",
        minimum=1, maximum=1000, unit="connections"),
    opt("smtp.delivery.ndr_template_failed_recipients", "text", "", "6.2.3.8",
        "SMTP-NDR-FAILEDRECIPS.TXT: Server-level NDR template listing refused recipients; "
        "tokens [ME_POSTMASTERADDRESS], [ME_TOADDRESS], [ME_DATE], [ME_MESSAGEID], "
        "[ME_FAILEDRECIPIENTS], [ME_MESSAGEHEADERS]."),
    opt("smtp.delivery.ndr_template_general", "text", "", "6.2.3.8",
        "SMTP-NDR.TXT: Server-level NDR template for transmission/system errors without "
        "recipient list."),
    opt("smtp.smart_host.enabled", "bool", False, "6.2.3.9",
        "Smart Host Enabled: Send all outbound mail via one relay host (not this server)."),
    opt("smtp.smart_host.host", "str", "", "6.2.3.9",
        "Smart Host Enabled (server): Relay host (and port) for all outbound mail. HOST or "
        "HOST:PORT."),
    opt("smtp.smart_host.requires_auth", "bool", False, "6.2.3.9",
        "This server requires authentication: Log in to the smart host with AUTH LOGIN."),
    opt("smtp.smart_host.username", "str", "", "6.2.3.9",
        "This server requires authentication (username): Smart host login name."),
    opt("smtp.smart_host.password", "str", "", "6.2.3.9",
        "This server requires authentication (password): Smart host password.", secret=True),
    opt("smtp.smart_host.domain_smarthost_priority", "bool", True, "6.2.3.9",
        "Domain smarthosting takes priority: Per-domain smart hosts override the server-wide "
        "smart host."),
    opt("smtp.smart_host.tls", "enum", "opportunistic", "6.2.3.9",
        "How to secure the connection to a smart host: opportunistic (STARTTLS when "
        "offered), starttls (STARTTLS required: no plain-text fallback), implicit (TLS from "
        "the first byte, e.g. port 465) or none. Applies to the server-wide and the "
        "per-domain smart hosts. Not in the manual.",
        choices=("opportunistic", "starttls", "implicit", "none"), manual_id=""),
    opt("smtp.smart_host.tls_verify", "bool", True, "6.2.3.9",
        "Verify the smart host's certificate (name and chain, system trust store); a "
        "failed check defers the mail instead of falling back to plain text, so a "
        "password never goes out unprotected. Not in the manual.", manual_id=""),
    opt("smtp.logging.activity_enabled", "bool", True, "6.2.3.10",
        "Activity Log: Record system activity log (on by default per 9.2)."),
    opt("smtp.logging.debug_enabled", "bool", True, "6.2.3.10",
        "Debug Log: Record low-level debug log (on by default per 9.2)."),
    opt("smtp.logging.w3c_enabled", "bool", True, "6.2.3.10",
        "Enable Logging (W3C): Record W3C usage log (on by default per 9.2)."),
    opt("smtp.logging.w3c_fields", "list",
        [
            "date", "time", "c-ip", "cs-username", "cs-method", "cs-uri-query", "sc-status",
            "sc-bytes", "cs-bytes",
        ], "6.2.3.10",
        "W3C logged fields: Fields written to each W3C log line."),
    opt("smtp.logging.w3c_rollover", "enum", "daily", "6.2.3.10",
        "W3C rollover frequency: How often W3C log files roll over.",
        choices=("hourly", "daily", "weekly", "monthly")),
    opt("smtp.logging.w3c_directory", "path", "", "6.2.3.10",
        "W3C log directory: Folder for W3C log files. Empty: the logs folder of the data "
        "directory."),
    opt("smtp.logging.debug_in_activity", "bool", False, "6.2.3.10",
        "Include Debug information in the Activity log: Merge debug entries into the activity"
        " log file."),
]
