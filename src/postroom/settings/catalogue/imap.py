"""IMAP service (manual 6.3.3): listeners, limits, authentication mechanisms and logs.

Listener keys (ports, bind addresses, implicit TLS) take effect after a restart;
port 0 disables that listener.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("imap.general.max_threads", "int", 32, "6.3.3.2",
        "Max Concurrent connections (threads): Worker threads handling IMAP client requests.",
        minimum=1, maximum=1024, unit="threads"),
    opt("imap.general.accept_processes", "int", 1, "6.3.3.2",
        "How many processes accept IMAP connections, sharing the ports (SO_REUSEPORT); 0 "
        "means one per CPU (at most 8). The maximum of client connections is divided "
        "between them. Not in the manual (its service is multi-threaded).",
        minimum=0, maximum=64, unit="processes", live=False, manual_id=""),
    opt("imap.port", "int", 143, "6.3.3.2",
        "IMAP port: Main IMAP listening port. Port 0 disables the listener.",
        minimum=0, maximum=65535, live=False, manual_id="imap.general.port"),
    opt("imap.general.ssl_default_port", "bool", False, "6.3.3.2",
        "IMAP Enable SSL (Default Port): Implicit SSL on the main port; requires server "
        "certificate.",
        live=False),
    opt("imap.general.alternate_port_enabled", "bool", True, "6.3.3.2",
        "Also listen on alternate port: Listen on a second IMAP port.", live=False),
    opt("imap.imaps_port", "int", 993, "6.3.3.2",
        "Also listen on alternate port (port): Second IMAP port with implicit TLS (RFC 8314),"
        " typically 993. Port 0 disables the listener.",
        minimum=0, maximum=65535, live=False, manual_id="imap.general.alternate_port"),
    opt("imap.general.ssl_alternate_port", "bool", True, "6.3.3.2",
        "IMAP Enable SSL (Alternate Port): Implicit SSL on the alternate port.", live=False),
    opt("imap.general.client_connections_limited", "enum", "unlimited", "6.3.3.2",
        "Client Connections: Unlimited or capped concurrent client connections.",
        choices=("unlimited", "limited")),
    opt("imap.general.max_client_connections", "int", 1000, "6.3.3.2",
        "Client Connections (maximum): Cap on concurrent IMAP connections; clients may open "
        "several per mailbox.",
        minimum=1, maximum=100_000, unit="connections"),
    opt("imap.general.idle_timeout_enabled", "bool", True, "6.3.3.2",
        "Timeout for idle connections: Drop clients idle beyond the timeout."),
    opt("imap.general.idle_timeout", "int", 1800, "6.3.3.2",
        "Timeout for idle connections (period): Idle period before disconnect. RFC 9051 asks "
        "for at least 30 minutes.",
        minimum=60, maximum=86400, unit="seconds"),
    opt("imap.general.idle_poll_interval", "int", 500, "6.3.3.2",
        "How often the IMAP service checks the folders of IDLE sessions when no wake-up "
        "arrives. The message store wakes every IMAP process at once after each change, "
        "so this is only the fallback. Not in the manual.",
        minimum=50, maximum=600_000, unit="milliseconds", live=False, manual_id=""),
    opt("imap.general.ntlm_enabled", "bool", False, "6.3.3.2",
        "Enable NTLMv1 authentication: Accept NTLMv1 (SPA) logins; NTLMv2 unsupported. Safe "
        "default: off (NTLMv1 is broken)."),
    opt("imap.general.cram_md5_enabled", "bool", True, "6.3.3.2",
        "Enable CRAM-MD5 authentication: Accept CRAM-MD5 authentication."),
    opt("imap.general.xlist_enabled", "bool", True, "6.3.3.2",
        "Enable XLIST support: Advertise special-use folders (Junk, Deleted Items, ...) via "
        "XLIST. Also advertised as SPECIAL-USE (RFC 6154)."),
    opt("imap.general.bind_all_ips", "bool", False, "6.3.3.2",
        "Always bind all IPs: Listen on every local address. On: listen on every address, "
        "ignoring imap.bind.",
        live=False),
    opt("imap.bind", "addresses", ["0.0.0.0", "::"], "6.3.3.2",
        "IP Addresses to bind to: Local addresses the IMAP listeners (imap.port, "
        "imap.imaps_port) bind to.",
        live=False, manual_id="imap.general.ip_bindings"),
    opt("imap.general.access_control_mode", "enum", "deny_listed", "6.3.3.2",
        "Access Control: IP list acts as banned list or allow-only list. As for POP3 "
        "(manual 6.3.4.2); not on the manual's IMAP page.",
        choices=("deny_listed", "allow_listed_only"), manual_id=""),
    opt("imap.general.access_control_list", "ip_list", [], "6.3.3.2",
        "Access Control (addresses): Client IPs denied or exclusively allowed. Not on the "
        "manual's IMAP page.", manual_id=""),
    opt("imap.security.allow_plaintext_auth_without_tls", "bool", False, "6.3.3.2",
        "Allow plain text logins without TLS: accept LOGIN and AUTHENTICATE PLAIN/LOGIN "
        "before STARTTLS (else LOGINDISABLED). Safe default: off (RFC 8314). Not in the "
        "manual.", manual_id=""),
    opt("imap.general.append_limit", "int", 50 * 1024 * 1024, "6.3.3.2",
        "Largest message a client may APPEND (APPENDLIMIT, RFC 7889). Not in the manual.",
        minimum=1024, maximum=2 ** 31 - 1, unit="bytes", manual_id=""),
    opt("imap.logging.w3c_enabled", "bool", True, "6.3.3.3",
        "Logging Options (W3C): Record W3C usage log (on by default per 9.2)."),
    opt("imap.logging.activity_enabled", "bool", True, "6.3.3.3",
        "Logging Options (Activity): Record activity log (on by default per 9.2)."),
    opt("imap.logging.debug_enabled", "bool", True, "6.3.3.3",
        "Logging Options (Debug): Record debug log (on by default per 9.2)."),
]
