"""SMTP anti-spam checks (manual 6.2.3.12 to 6.2.3.16): white lists, SPF, DNS and URL
blacklists, greylisting and reported-IP blocking.

The checks themselves are policies in ``connectors/smtp/policy``; DNS answers they
need are hostile input and are looked up by ``net/`` with timeouts.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("smtp.whitelist.enabled", "bool", False, "6.2.3.12",
        "Enable white list: Exempt listed IPs from RBL, SPF and automatic blocking."),
    opt("smtp.whitelist.addresses", "ip_list", [], "6.2.3.12",
        "White list (Add/Remove): IP addresses exempt from blacklist, SPF and auto-block checks."),
    opt("smtp.outbound_whitelist.enabled", "bool", False, "6.2.3.12",
        "Enable white list (outbound auto white list): Automatically whitelist IPs this "
        "server has delivered mail to."),
    opt("smtp.outbound_whitelist.addresses", "ip_list", [], "6.2.3.12",
        "Outbound white list (Add/Remove): IPs in the automatic outbound-derived white list, "
        "editable manually."),
    opt("smtp.spf.enabled", "bool", True, "6.2.3.13",
        "Enable SPF: Evaluate SPF for inbound senders and record Received-SPF."),
    opt("smtp.spf.reject_failures", "bool", False, "6.2.3.13",
        "Reject failures: Refuse mail whose SPF result is fail."),
    opt("smtp.spf.add_received_spf_header", "bool", True, "6.2.3.13",
        "Add Received-SPF header for unauthenticated senders: Stamp Received-SPF on "
        "unauthenticated inbound mail (results "
        "pass/softfail/fail/neutral/none/error/unknown)."),
    opt("smtp.spf.pass_local_ips", "bool", True, "6.2.3.13",
        "Pass local IP addresses (no checking will be done): Skip SPF for local addresses."),
    opt("smtp.spf.local_whitelist_enabled", "bool", False, "6.2.3.13",
        "Enable local white list policy: Apply a local SPF policy when the domain's all "
        "mechanism is not a pass."),
    opt("smtp.spf.local_whitelist_policy", "str", "", "6.2.3.13",
        "Enable local white list policy (policy): SPF mechanisms (without v=spf1) used as "
        "local pass policy."),
    opt("smtp.spf.best_guess_enabled", "bool", False, "6.2.3.13",
        "Apply best guess policy for domains without SPF records: Substitute a guessed policy"
        " (e.g. MX or A) where no SPF record exists."),
    opt("smtp.spf.best_guess_policy", "str", "a mx", "6.2.3.13",
        "Apply best guess policy for domains without SPF records (policy): Mechanisms used as"
        " the best-guess policy."),
    opt("smtp.dnsbl.enabled", "bool", False, "6.2.3.14",
        "Enable DNS Blacklisting: Check connecting IPs against selected DNS blacklists."),
    opt("smtp.dnsbl.action", "enum", "reject", "6.2.3.14",
        "Action when detected (DNS): Refuse connection or mark the message as spam via "
        "header.",
        choices=("reject", "mark_spam")),
    opt("smtp.dnsbl.selected_lists", "list", [], "6.2.3.14",
        "Current Enabled DNS Blacklists: Blacklist providers queried for connecting IPs."),
    opt("smtp.urlbl.enabled", "bool", False, "6.2.3.14",
        "Enable URL Blacklisting: Check hosts of URLs found in message bodies against blacklists."),
    opt("smtp.urlbl.action", "enum", "reject", "6.2.3.14",
        "Action when detected (URL): Refuse, mark as spam, or replace the link with 'Link is "
        "removed'.",
        choices=("reject", "mark_spam", "remove_link")),
    opt("smtp.urlbl.selected_lists", "list", [], "6.2.3.14",
        "Selected URL Blacklists: Blacklists used for URL checks."),
    opt("smtp.dnsbl.custom.name", "str", "", "6.2.3.14",
        "Blacklist name: Name of a custom blacklist definition."),
    opt("smtp.dnsbl.custom.lookup_type", "enum", "zone", "6.2.3.14",
        "Lookup type: How the custom blacklist is queried.", choices=("zone", "dns_host")),
    opt("smtp.dnsbl.custom.zone_server", "str", "", "6.2.3.14",
        "Zone Server: DNS zone name or DNS host IP queried for the custom list."),
    opt("smtp.dnsbl.custom.record_type", "enum", "A", "6.2.3.14",
        "Record Type to check for: Record type (A, NS, PTR, MX) indicating a listing.",
        choices=("A", "NS", "PTR", "MX")),
    opt("smtp.dnsbl.custom.response", "str", "", "6.2.3.14",
        "Response: Rejection text sent to clients for this list."),
    opt("smtp.greylisting.enabled", "bool", False, "6.2.3.15",
        "Enable greylisting: Temporarily refuse first delivery attempts (452) from unknown "
        "triplets."),
    opt("smtp.greylisting.scope", "enum", "all", "6.2.3.15",
        "Greylisting enabled for all users / determined by postoffice: Apply greylisting to "
        "all mailboxes or defer to each post office's feature setting.",
        choices=("all", "postoffice")),
    opt("smtp.greylisting.initial_delay", "int", 5, "6.2.3.15",
        "Messages must be retried this many minutes after initial delay: Minimum wait before "
        "a retried message is accepted.",
        minimum=0, maximum=1440, unit="minutes"),
    opt("smtp.greylisting.remember_period", "int", 36, "6.2.3.15",
        "Senders will be remembered for: How long a passed sender/recipient/IP triplet stays "
        "whitelisted.",
        minimum=1, maximum=3650, unit="days"),
    opt("smtp.greylisting.ip_match_sensitivity", "enum", "exact", "6.2.3.15",
        "Sensitivity for greylisting IP matching: Netmask used when matching the retrying IP "
        "(exact by default).",
        choices=("exact", "/24", "/16")),
    opt("smtp.greylisting.exceptions_enabled", "bool", True, "6.2.3.15",
        "Allow IP and domain exceptions to the greylisting: Enable the greylisting bypass list."),
    opt("smtp.greylisting.exceptions", "list", [], "6.2.3.15",
        "Allow IP and domain exceptions to the greylisting (list): IPs, or SPF-published "
        "domains whose SPF-matching IPs bypass greylisting (domain form new in v9, 2.4). "
        "Entries are IP addresses, ranges, or domains with SPF records."),
    opt("smtp.ip_blocking.refuse_reported_ips", "bool", False, "6.2.3.16",
        "Refuse e-mail from IP addresses reported as sending spam: Reject at RCPT TO from IPs"
        " reported by webmail users, at system then post office level."),
    opt("smtp.ip_blocking.reports_required", "int", 3, "6.2.3.16",
        "Reports required: Reports (by post offices for system level, by users for post "
        "office level) needed to block.",
        minimum=1, maximum=10000, unit="reports"),
    opt("smtp.ip_blocking.expire_after", "int", 30, "6.2.3.16",
        "Expire after: Time window after which spam reports no longer count.",
        minimum=1, maximum=3650, unit="days"),
    opt("smtp.ip_blocking.blocked_addresses", "ip_list", [], "6.2.3.16",
        "Blocked Address Management (Remove IP... / View Report...): Managed list of spam-"
        "reported blocked IPs; entries can be removed (Remove IP...) or inspected (View "
        "Report...)."),
]
