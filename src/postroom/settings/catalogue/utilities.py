"""Utilities (manual chapters 9 and 10): backup, METray alerts, MESend and message tracking.

Most rows here are parameters of administrative commands; their stored values are
defaults for those commands.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("utilities.backup.command_line", "bool", False, "9.1",
        "/BACKUP: Run the backup utility unattended from the command line. This is a "
        "parameter of the backup utility."),
    opt("utilities.metray.view_statistics", "enum", "since_restart", "10.1",
        "View Statistics: METray summary counters since services restarted or for this "
        "session only.",
        choices=("since_restart", "session")),
    opt("utilities.metray.alerts.monitored_services", "list",
        ["smtp", "pop3", "imap", "web"], "10.1",
        "Alerts - Monitoring list: Services watched by the METray health alert agent."),
    opt("utilities.metray.alerts.sender", "email", "", "10.1",
        "Alerts - sender email address: From address for alert notifications."),
    opt("utilities.metray.alerts.recipients", "list", [], "10.1",
        "Alerts - recipients: Addresses notified of detected problems."),
    opt("utilities.metray.alerts.smtp_host", "str", "localhost", "10.1",
        "Alerts - mail server host name: SMTP server used to send alerts."),
    opt("utilities.metray.alerts.smtp_port", "int", 25, "10.1",
        "Alerts - SMTP port: Port of the alert SMTP server.", minimum=1, maximum=65535),
    opt("utilities.metray.alerts.auth_username", "str", "", "10.1",
        "Alerts - authentication details (username): Relay credential for sending alerts."),
    opt("utilities.metray.alerts.auth_password", "str", "", "10.1",
        "Alerts - authentication details (password): Relay password for sending alerts.",
        secret=True),
    opt("utilities.mesend.host", "str", "localhost", "10.4",
        "/H: Mail Host: SMTP host MESend connects to. This is a parameter of the MESend "
        "utility (`postroom send`); the stored value is its default."),
    opt("utilities.mesend.from", "email", "", "10.4",
        "/F: From Address: Sender address. This is a parameter of the MESend utility "
        "(`postroom send`); the stored value is its default."),
    opt("utilities.mesend.to", "email", "", "10.4",
        "/T: To Address: Recipient address (at least one required). This is a parameter of "
        "the MESend utility (`postroom send`); the stored value is its default."),
    opt("utilities.mesend.subject", "str", "", "10.4",
        "/S: Subject: Message subject. This is a parameter of the MESend utility (`postroom "
        "send`); the stored value is its default."),
    opt("utilities.mesend.attachment_path", "path", "", "10.4",
        "/A: Attachment Local FilePath: Local file to attach. This is a parameter of the "
        "MESend utility (`postroom send`); the stored value is its default."),
    opt("utilities.mesend.attachment_name", "str", "", "10.4",
        "/N: Attachment Display Name: Displayed attachment name. This is a parameter of the "
        "MESend utility (`postroom send`); the stored value is its default."),
    opt("utilities.mesend.body", "text", "", "10.4",
        "/B: Message Body: Message body text. This is a parameter of the MESend utility "
        "(`postroom send`); the stored value is its default."),
    opt("utilities.message_tracking.date", "str", "", "10.5",
        "Date (mandatory): Log date to search. This is a parameter of message tracking "
        "(`postroom track`); the stored value is its default."),
    opt("utilities.message_tracking.search_backwards", "bool", False, "10.5",
        "Search backwards through all previous logs available: Trace from mailbox delivery "
        "back to SMTP acceptance across older logs. This is a parameter of message tracking "
        "(`postroom track`); the stored value is its default."),
    opt("utilities.message_tracking.sender", "str", "", "10.5",
        "Sender (optional): Sender address filter. This is a parameter of message tracking "
        "(`postroom track`); the stored value is its default."),
    opt("utilities.message_tracking.recipient", "str", "", "10.5",
        "Recipient (optional): Recipient address filter. This is a parameter of message "
        "tracking (`postroom track`); the stored value is its default."),
    opt("utilities.message_tracking.backtrace_outgoing", "bool", False, "10.5",
        "Backtrace Message from Outgoing Queue to Origin: Trace queued outbound messages back"
        " to their origin. This is a parameter of message tracking (`postroom track`); the "
        "stored value is its default."),
    opt("utilities.backup.set_name", "str", "", "10.6",
        "Backup (backup set name): Descriptive name of a backup set (file-based config only)."
        " This is a parameter of the backup utility."),
    opt("utilities.backup.restore_set", "str", "", "10.6",
        "Restore (backup set): Existing backup set to restore. This is a parameter of the "
        "backup utility."),
]
