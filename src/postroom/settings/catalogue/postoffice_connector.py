"""Post office connector "SF" (manual 6.2.4): quotas, autoresponders, NDRs, redirection.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("postoffice_connector.quota_exceeded_action", "enum", "return_to_sender", "6.2.4.2",
        "When mailbox has reached quota: Over-quota handling: return message to sender, send "
        "to post office postmaster, or send notifications only.",
        choices=("return_to_sender", "postmaster", "notify_only")),
    opt("postoffice_connector.quota_notifications", "enum", "sender_and_mailbox", "6.2.4.2",
        "Notifications when quota is reached: Notify sender only, sender and mailbox, or "
        "nobody.",
        choices=("sender", "sender_and_mailbox", "none")),
    opt("postoffice_connector.quota_enumeration", "enum", "all_folders", "6.2.4.2",
        "Quota enumeration: Quota counts the Inbox only, or all mail folders.",
        choices=("inbox", "all_folders")),
    opt("postoffice_connector.autoresponders_enabled", "bool", True, "6.2.4.2",
        "Auto responders enabled: Master switch for mailbox autoresponders."),
    opt("postoffice_connector.autoresponder_frequency", "enum", "once_per_day", "6.2.4.2",
        "Auto responders enabled (response mode): Reply to every message, or once per sender "
        "per day. Safe default: once per sender per day (RFC 3834); the manual's default is "
        "always.",
        choices=("always", "once_per_day")),
    opt("postoffice_connector.ndr_generation", "enum", "smtp_settings", "6.2.4.2",
        "NDR Generation: Bounce for disabled/unavailable mailboxes: enabled, disabled, or use"
        " SMTP NDR settings.",
        choices=("enabled", "disabled", "smtp_settings")),
    opt("postoffice_connector.redirection_handling", "enum", "default", "6.2.4.2",
        "Redirection handling: Redirect mode: (default, not listed), remail from mailbox "
        "address, disable all redirections, or redirect as attachment.",
        choices=("default", "remail", "disabled", "as_attachment")),
    opt("postoffice_connector.delivery_event_on_bulk", "bool", False, "6.2.4.2",
        "Execute delivery event on bulk/system messages: Also run mailbox delivery events for"
        " bulk/system messages (v9, 2.4)."),
    opt("postoffice_connector.logging.activity_enabled", "bool", True, "6.2.4.3",
        "Logging (activity): Write the connector activity log."),
    opt("postoffice_connector.logging.debug_enabled", "bool", False, "6.2.4.3",
        "Logging (debug): Write the connector debug log."),
]
