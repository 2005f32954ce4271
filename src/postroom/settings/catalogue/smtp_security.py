"""SMTP security and advanced options (manual 6.2.3.6, 6.2.3.7, 6.2.3.11): sender checks,
recipient limits, banners, disconnecting abusers, enabled commands.

Defaults favour safety over the manual where they differ (no VRFY/EXPN, no version
in the banner, no spoofing of hosted domains); each such choice says "Safe default".
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("smtp.country_blocking.country_codes", "list", [], "2.4",
        "Country Code Blocking: Country codes whose inbound connections are refused; new in "
        "v9, no dialog detail given in the manual. ISO 3166 two-letter codes; needs a country"
        " database file supplied by the administrator."),
    opt("smtp.security.sender_domain_must_resolve", "bool", True, "6.2.3.6",
        "Sender email domain must be local or resolvable through DNS: Permanently reject "
        "envelope senders whose domain is neither hosted nor DNS-resolvable."),
    opt("smtp.security.auth_sender_must_use_postoffice_address", "bool", True, "6.2.3.6",
        "Authenticated senders must use address from their postoffice: Authenticated users "
        "must send with an address belonging to their own post office. Safe default: on."),
    opt("smtp.security.hide_ip_in_headers", "bool", False, "6.2.3.6",
        "Hide IP addresses from email headers: Write 127.0.0.1 instead of the client IP in "
        "Received headers."),
    opt("smtp.security.disable_all_catchalls", "bool", False, "6.2.3.6",
        "Disable all catchalls: Ignore every domain catchall setting server-wide."),
    opt("smtp.security.allow_domain_literals", "bool", False, "6.2.3.6",
        "Allow domain literals: Accept recipients in user@[IP] form for the server's own IPs."),
    opt("smtp.security.domain_literal_extra_ips", "ip_list", [], "6.2.3.6",
        "Allow domain literals (Advanced... extra IP addresses): Additional IPs (e.g. NAT "
        "public addresses) accepted in domain literals."),
    opt("smtp.security.max_recipients_per_message_enabled", "bool", True, "6.2.3.6",
        "Restrict the number of recipients per email: Cap recipients per incoming message."),
    opt("smtp.security.max_recipients_per_message", "int", 500, "6.2.3.6",
        "Restrict the number of recipients per email (value): Maximum recipients accepted per"
        " message.",
        minimum=1, maximum=100_000, unit="recipients"),
    opt("smtp.security.max_recipients_per_hour_enabled", "bool", False, "6.2.3.6",
        "Limit number of recipients per hour to: Enable an hourly recipient quota."),
    opt("smtp.security.max_recipients_per_hour", "int", 1000, "6.2.3.6",
        "Limit number of recipients per hour to (value): Hourly sending recipient limit.",
        minimum=1, maximum=10_000_000, unit="recipients per hour"),
    opt("smtp.security.ptr_check", "enum", "flag_spam", "6.2.3.6",
        "PTR Record Check: For unauthenticated remote IPs: never reject, reject without PTR, "
        "or flag for the system spam filter; local IPs skipped.",
        choices=("off", "reject", "flag_spam")),
    opt("smtp.security.address_spoofing", "enum", "authorized_only", "6.2.3.6",
        "Address Spoofing: Envelope-sender policy for hosted domains: anyone can spoof, "
        "authenticated senders cannot impersonate, or authorized (auth + privileged IP) may "
        "spoof. Safe default: only authenticated or privileged senders may use hosted "
        "domains.",
        choices=("allow_all", "deny_impersonation", "authorized_only")),
    opt("smtp.security.alternate_welcome_enabled", "bool", True, "6.2.3.6",
        "Use alternate welcome message: Replace the default version-revealing banner. Safe "
        "default: on, so the banner reveals no version."),
    opt("smtp.security.alternate_welcome_text", "str", "%LOCALDOMAIN% ESMTP ready", "6.2.3.6",
        "Use alternate welcome message (text): Custom banner; supports %LOCALDOMAIN% and "
        "%TIME% substitutions."),
    opt("smtp.security.drop_on_failed_commands_enabled", "bool", True, "6.2.3.6",
        "Drop a connection when the failed number of commands or recipients reaches: "
        "Disconnect clients that keep issuing failing commands or recipients."),
    opt("smtp.security.drop_on_failed_commands_count", "int", 20, "6.2.3.6",
        "Drop a connection when the failed number of commands or recipients reaches (value): "
        "Failure count before disconnect; avoid low values like 5.",
        minimum=1, maximum=10000, unit="failed commands"),
    opt("smtp.security.add_to_denied_ips_enabled", "bool", False, "6.2.3.6",
        "Add to denied IP addresses if this number is reached: Auto-add disconnected abusers'"
        " IPs to the SMTP access control list."),
    opt("smtp.security.add_to_denied_ips_count", "int", 5, "6.2.3.6",
        "Add to denied IP addresses if this number is reached (value): Threshold before an IP"
        " is added to the deny list.",
        minimum=1, maximum=10000, unit="disconnections"),
    opt("smtp.security.ehlo_block_strings", "list", [], "6.2.3.6",
        "EHLO Blocking: EHLO/HELO values (e.g. ylmf-pc) that cause immediate disconnect; new "
        "in v9 (2.4)."),
    opt("smtp.advanced.alternate_catchall_header_enabled", "bool", False, "6.2.3.7",
        "Enable alternate catch-all header: Record catchall recipients in a named header "
        "instead of Received."),
    opt("smtp.advanced.alternate_catchall_header_name", "str", "X-Catchall-Recipient", "6.2.3.7",
        "Enable alternate catch-all header (header name): Header field name used for catchall"
        " recipient recording."),
    opt("smtp.advanced.add_required_headers", "bool", True, "6.2.3.7",
        "Add required headers for authenticated senders if needed: Insert missing Message-ID "
        "and Date for authenticated relaying clients."),
    opt("smtp.advanced.inbound_authentication", "enum", "none", "6.2.3.7",
        "Inbound Authentication: For mail to local addresses: no auth, auth for all "
        "connections, or per post office restriction.",
        choices=("none", "all", "per_postoffice")),
    opt("smtp.advanced.allowed_commands", "list",
        [
            "HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT", "STARTTLS",
            "AUTH", "HELP",
        ], "6.2.3.7",
        "Allowed SMTP Commands: SMTP verbs that may be disabled, e.g. EXPN and VRFY. Safe "
        "default: VRFY and EXPN are off."),
    opt("smtp.advanced.script.mail_from_enabled", "bool", False, "6.2.3.7",
        "Enable script function for MAIL FROM command: Run the external SMTP script at MAIL FROM."),
    opt("smtp.advanced.script.rcpt_to_enabled", "bool", False, "6.2.3.7",
        "Enable script function for RCPT TO command: Run the external SMTP script at RCPT TO."),
    opt("smtp.advanced.script.data_enabled", "bool", False, "6.2.3.7",
        "Enable script function for DATA command: Run the external SMTP script at DATA."),
    opt("smtp.advanced.script.source", "text", "", "6.2.3.7",
        "External Script (Edit Script...): Script body executed during SMTP transactions; "
        "variables documented in API guide."),
    opt("smtp.blocked_addresses", "list", [], "6.2.3.11",
        "Blocked addresses: Recipient addresses for which SMTP refuses mail as nonexistent."),
    # Not in the manual: choices an administrator expects today beside the manual's.
    opt("smtp.blocked_senders", "list", [], "6.2.3.11",
        "Envelope senders refused at MAIL FROM (addresses, *@domain or *.domain wildcards); "
        "the manual's blocked-address list applies to recipients.", manual_id=""),
    opt("smtp.security.auth_sender_must_use_own_address", "bool", False, "6.2.3.6",
        "Authenticated users may send only as an address mapped to their own mailbox "
        "(stricter than the post office rule).", manual_id=""),
    opt("smtp.security.allow_plaintext_auth_without_tls", "bool", False, "6.2.3.2",
        "Offer AUTH PLAIN and LOGIN before STARTTLS. Safe default: off (loopback clients "
        "are always allowed).", manual_id=""),
    opt("smtp.security.reject_helo_impersonation", "bool", True, "6.2.3.6",
        "Refuse HELO/EHLO names that claim to be this server, from non-privileged clients.",
        manual_id=""),
]
