"""Message filtering (manual chapter 7): system filter switches, spam scoring and filter scripts.

Global filters themselves (criteria, actions) are per-filter records, not server
settings; the ``filters.script.*`` rows are script variables from 7.5.1, declared
for completeness only.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("filters.system_filters_enabled", "bool", True, "7.1",
        "Enable the processing of system filters for this server: Master switch for server-"
        "wide message content filtering (Localhost > Extensions)."),
    opt("filters.junk_email_processing", "enum", "junk_folder", "7.1",
        "Junk E-mail Processing: Deliver messages tagged X-ME-Content: Deliver-To=Junk to the"
        " Inbox or to the Junk E-mail folder.",
        choices=("inbox", "junk_folder")),
    opt("filters.message_filter.activity_log_enabled", "bool", True, "7.2",
        "Activity Log (status): Log which filters ran and their results."),
    opt("filters.message_filter.activity_log_path", "path", "", "7.2",
        "Activity Log (location): Location of the filter activity log."),
    opt("filters.message_filter.scratch_directory", "path", "", "7.2",
        "Scratch Directory: Work folder where messages/attachments are unpacked for scanning;"
        " exclude from real-time AV."),
    opt("filters.spam_protection.factor_scores", "list", [], "7.3",
        "Spam protection values (points per factor): Weighted points added per spam indicator"
        " in the Spam Protection super script. Entries are FACTOR=POINTS."),
    opt("filters.spam_protection.thresholds", "list", ["low=5", "medium=10", "high=15"], "7.3",
        "Spam protection thresholds: Score thresholds mapping totals to X-ME-Spam: Low / "
        "Medium / High headers. Entries are LEVEL=POINTS."),
    opt("filters.global_filter.name", "str", "", "7.4.1",
        "Filter name: Name of a global (MTA-level) filter."),
    opt("filters.actions.order", "list", [], "7.4.3",
        "Action priority (up/down arrows): Order in which a filter's actions execute, first "
        "to last."),
    opt("filters.actions.notification_template", "text", "", "7.4.3",
        "Notification message template: Template body for notify actions; tokens such as "
        "ME_FILTERNAME, ME_SENDER, ME_AVRESULT."),
    opt("filters.global_filter.type", "enum", "basic", "7.5.1.1",
        "Basic / Scripted filter: Whether criteria are checkbox-based (OR-combined) or a "
        "VBScript-like script (AND/OR logic).",
        choices=("basic", "scripted")),
    opt("filters.global_filter.script", "text", "", "7.5.1.1",
        "Filter script: VBScript-like script that sets FilterResult to decide whether actions"
        " run."),
    opt("filters.script.filter_result", "int", 0, "7.5.1.1",
        "FilterResult: Script return variable: 1 runs the filter's actions, 0 does not. This "
        "is a variable set by filter scripts, listed for completeness; setting it has no "
        "effect.",
        minimum=0, maximum=1),
    opt("filters.script.literal.spam_probability", "int", 0, "7.5.1.2",
        "[ME_SPAM_PROBABILITY]: Bayesian spam probability of the message. This is a read-only"
        " variable of filter scripts, listed for completeness; setting it has no effect.",
        minimum=0, maximum=100, unit="percent"),
    opt("filters.script.literal.size", "int", 0, "7.5.1.2",
        "[ME_SIZE]: Message size. This is a read-only variable of filter scripts, listed for "
        "completeness; setting it has no effect.",
        minimum=0, unit="bytes"),
    opt("filters.script.literal.sender_auth", "int", 0, "7.5.1.2",
        "[ME_SENDERAUTH]: 1 if sender authenticated, else 0. This is a read-only variable of "
        "filter scripts, listed for completeness; setting it has no effect.",
        minimum=0, maximum=1),
    opt("filters.script.literal.has_virus", "int", 0, "7.5.1.2",
        "[ME_HASVIRUS]: 1 if a virus was found (and removed), else 0. This is a read-only "
        "variable of filter scripts, listed for completeness; setting it has no effect.",
        minimum=0, maximum=1),
    opt("filters.script.literal.has_attachment", "int", 0, "7.5.1.2",
        "[ME_HASANATTACHMENT]: 1 if the message has an attachment, else 0. This is a read-"
        "only variable of filter scripts, listed for completeness; setting it has no effect.",
        minimum=0, maximum=1),
    opt("filters.script.literal.ip_address", "str", "", "7.5.1.2",
        "%IPADDRESS%: Originating IP read from the command file. This is a read-only variable"
        " of filter scripts, listed for completeness; setting it has no effect."),
    opt("filters.script.literal.postoffice", "str", "", "7.5.1.2",
        "%POSTOFFICE%: Post office attributed to the message. This is a read-only variable of"
        " filter scripts, listed for completeness; setting it has no effect."),
    opt("filters.script.literal.sender", "str", "", "7.5.1.2",
        "%SENDER%: Sender in [CONNECTOR:address] form. This is a read-only variable of filter"
        " scripts, listed for completeness; setting it has no effect."),
    opt("filters.script.literal.recipients", "str", "", "7.5.1.2",
        "%RECIPIENTS%: Semicolon list of [CONNECTOR:address] recipients. This is a read-only "
        "variable of filter scripts, listed for completeness; setting it has no effect."),
    opt("filters.script.literal.subject", "str", "", "7.5.1.2",
        "%SUBJECT%: Message subject. This is a read-only variable of filter scripts, listed "
        "for completeness; setting it has no effect."),
    opt("filters.script.me_result_data", "str", "", "7.5.3",
        "MEResultData: Script-set string logged and substituted for [ME_CRITERIA]. This is a "
        "variable set by filter scripts, listed for completeness; setting it has no effect."),
]
