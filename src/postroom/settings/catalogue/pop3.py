"""POP3 service (manual 6.3.4): listeners, limits, authentication mechanisms and logs.

Listener keys (ports, bind addresses, implicit TLS) take effect after a restart;
port 0 disables that listener.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("pop3.general.max_connections", "int", 500, "6.3.4.2",
        "Maximum concurrent connections: Cap on simultaneous POP client connections.",
        minimum=1, maximum=100_000, unit="connections"),
    opt("pop3.general.accept_processes", "int", 1, "6.3.4.2",
        "How many processes accept POP3 connections, sharing the ports (SO_REUSEPORT); 0 "
        "means one per CPU (at most 8). The maximum of connections is divided between them. "
        "Not in the manual (its service is multi-threaded).",
        minimum=0, maximum=64, unit="processes", live=False, manual_id=""),
    opt("pop3.general.alternate_at_characters", "str", "", "6.3.4.2",
        "Alternate @ characters: Characters (e.g. #$%) accepted in place of @ in usernames."),
    opt("pop3.port", "int", 110, "6.3.4.2",
        "POP Port: Main POP3 listening port. Port 0 disables the listener.",
        minimum=0, maximum=65535, live=False, manual_id="pop3.general.port"),
    opt("pop3.general.ssl_default_port", "bool", False, "6.3.4.2",
        "POP Enable SSL (Default Port): Implicit SSL on the main port.", live=False),
    opt("pop3.general.alternate_port_enabled", "bool", True, "6.3.4.2",
        "Also listen on alternate port: Listen on a second POP port.", live=False),
    opt("pop3.pop3s_port", "int", 995, "6.3.4.2",
        "Also listen on alternate port (port): Second POP3 port with implicit TLS (RFC 8314),"
        " typically 995. Port 0 disables the listener.",
        minimum=0, maximum=65535, live=False, manual_id="pop3.general.alternate_port"),
    opt("pop3.general.ssl_alternate_port", "bool", True, "6.3.4.2",
        "POP Enable SSL (Alternate Port): Implicit SSL on the alternate port.", live=False),
    opt("pop3.general.apop_enabled", "bool", False, "6.3.4.2",
        "Enable APOP authentication: Require clients to log in with APOP. On: refuse "
        "USER/PASS; APOP needs messaging_manager.security.encrypt_passwords."),
    opt("pop3.general.ntlm_enabled", "bool", False, "6.3.4.2",
        "Enable NTLM authentication: Accept NTLM (SPA) logins. Safe default: off (NTLMv1 is "
        "broken)."),
    opt("pop3.general.cram_md5_enabled", "bool", True, "6.3.4.2",
        "Enable CRAM-MD5 authentication: Accept CRAM-MD5 logins."),
    opt("pop3.security.allow_plaintext_auth_without_tls", "bool", False, "6.3.4.2",
        "Allow plain text logins without TLS: accept USER/PASS and AUTH PLAIN/LOGIN before "
        "STLS. Safe default: off (RFC 8314 asks for TLS; APOP and CRAM-MD5 stay usable). Not "
        "in the manual.", manual_id=""),
    opt("pop3.general.idle_timeout_enabled", "bool", True, "6.3.4.2",
        "Timeout for idle connections: Drop idle connections."),
    opt("pop3.general.idle_timeout", "int", 600, "6.3.4.2",
        "Timeout for idle connections (period): Idle time before disconnect. RFC 1939 asks "
        "for at least 10 minutes.",
        minimum=1, maximum=86400, unit="seconds"),
    opt("pop3.general.access_control_mode", "enum", "deny_listed", "6.3.4.2",
        "Access Control: IP list acts as banned list or allow-only list.",
        choices=("deny_listed", "allow_listed_only")),
    opt("pop3.general.access_control_list", "ip_list", [], "6.3.4.2",
        "Access Control (addresses): Client IPs denied or exclusively allowed."),
    opt("pop3.general.bind_all_ips", "bool", False, "6.3.4.2",
        "Always bind all IPs: Listen on every local address. On: listen on every address, "
        "ignoring pop3.bind.",
        live=False),
    opt("pop3.bind", "addresses", ["0.0.0.0", "::"], "6.3.4.2",
        "IP Addresses to bind POP to: Local addresses the POP3 listeners (pop3.port, "
        "pop3.pop3s_port) bind to.",
        live=False, manual_id="pop3.general.ip_bindings"),
    opt("pop3.advanced.alternate_welcome_enabled", "bool", False, "6.3.4.3",
        "Use alternate welcome message: Replace the default POP greeting."),
    opt("pop3.advanced.alternate_welcome_text", "str", "POP3 server ready", "6.3.4.3",
        "Use alternate welcome message (text): Custom POP greeting text."),
    opt("pop3.advanced.inactivity_timeout", "int", 600, "6.3.4.3",
        "Inactivity timeout: Close connections inactive longer than this.",
        minimum=1, maximum=86400, unit="seconds"),
    opt("pop3.advanced.allow_concurrent_mailbox_access", "bool", False, "6.3.4.3",
        "Allow concurrent mailbox access: Permit multiple simultaneous sessions on one mailbox."),
    opt("pop3.logging.w3c_enabled", "bool", True, "6.3.4.4",
        "Enable Logging (W3C): Record W3C usage log (on by default per 9.2)."),
    opt("pop3.logging.w3c_fields", "list",
        [
            "date", "time", "c-ip", "cs-username", "cs-method", "cs-uri-query", "sc-status",
            "sc-bytes", "cs-bytes",
        ], "6.3.4.4",
        "W3C logged fields: Fields included in W3C log lines."),
    opt("pop3.logging.w3c_rollover", "enum", "daily", "6.3.4.4",
        "W3C rollover frequency: Log file rollover period.",
        choices=("hourly", "daily", "weekly", "monthly")),
    opt("pop3.logging.w3c_directory", "path", "", "6.3.4.4",
        "W3C log directory: Folder for W3C logs. Empty: the logs folder of the data directory."),
    opt("pop3.logging.activity_enabled", "bool", True, "6.3.4.4",
        "Logging Options (Activity): Record activity log (on by default per 9.2)."),
    opt("pop3.logging.debug_enabled", "bool", True, "6.3.4.4",
        "Logging Options (Debug): Record debug log (on by default per 9.2)."),
]
