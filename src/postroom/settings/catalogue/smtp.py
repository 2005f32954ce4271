"""SMTP connector: general, listener, outbound and relay settings (manual 6.2.3.2 to 6.2.3.5).

The listener keys (``smtp.port``, ``smtp.submission_port``, ``smtp.smtps_port``,
``smtp.bind``) take effect after a restart; port 0 disables that listener. Relay
defaults are closed: only authenticated users and loopback may relay.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("smtp.general.local_domain_name", "str", "", "6.2.3.2",
        "Local Domain Name: Server's own domain used in system messages and EHLO/greeting; "
        "also set at install (4.2 Domain Name). Empty: the host name given to `postroom "
        "init`."),
    opt("smtp.general.default_mail_domain_name", "str", "", "6.2.3.2",
        "Default mail domain name: Default host name matching the MX record; overridden by "
        "per-IP host names. Empty: smtp.general.local_domain_name."),
    opt("smtp.general.ip_host_names", "list", [], "6.2.3.2",
        "Host name specified for an IP address: Per-IP host names that override the default "
        "mail domain name for that address (where set is not described). Entries are "
        "IP=HOSTNAME."),
    opt("smtp.general.notification_address", "email", "", "6.2.3.2",
        "Specify the email address when sending notifications: From address for delay and "
        "failure notifications. Empty: postmaster@ the local domain name."),
    opt("smtp.general.ntlm_auth_enabled", "bool", False, "6.2.3.2",
        "Enable NTLMv1 Authentication: Accept NTLM (SPA) secure password authentication. Safe"
        " default: off (NTLMv1 is broken)."),
    opt("smtp.general.cram_md5_enabled", "bool", True, "6.2.3.2",
        "Enable CRAM-MD5 Authentication: Accept CRAM-MD5 challenge-response authentication "
        "(only a hash is sent). Needs messaging_manager.security.encrypt_passwords."),
    opt("smtp.general.tls_enabled", "bool", True, "6.2.3.2",
        "Enable TLS: Offer STARTTLS on inbound connections using the server certificate."),
    opt("smtp.general.drop_folder", "path", "", "6.2.3.2",
        "Drop Folder: Folder scanned for RFC822 files to send; recipients taken from headers."
        " Empty: the pickup folder of the data directory."),
    opt("smtp.port", "int", 25, "6.2.3.3",
        "SMTP service listens on port: Main listening port; also set at install (4.2 SMTP "
        "Port). Port 0 disables the listener.",
        minimum=0, maximum=65535, live=False, manual_id="smtp.inbound.port"),
    opt("smtp.inbound.port_requires_ssl", "bool", False, "6.2.3.3",
        "Requires SSL (SMTP port): Use implicit SSL on the main port.", live=False),
    opt("smtp.inbound.port_requires_auth", "bool", False, "6.2.3.3",
        "Requires connections to authenticate before sending email (SMTP port): Force "
        "authentication on the main port even for local delivery."),
    opt("smtp.inbound.submission_enabled", "bool", True, "6.2.3.3",
        "Listen on alternative port: Also listen on a submission port.", live=False),
    opt("smtp.submission_port", "int", 587, "6.2.3.3",
        "Listen on alternative port (port): Alternative (submission) listening port. Port 0 "
        "disables the listener.",
        minimum=0, maximum=65535, live=False, manual_id="smtp.inbound.submission_port"),
    opt("smtp.inbound.submission_requires_ssl", "bool", False, "6.2.3.3",
        "Requires SSL (Submission port): Use implicit SSL on the submission port.", live=False),
    opt("smtp.inbound.submission_requires_auth", "bool", True, "6.2.3.3",
        "Requires connections to authenticate before sending email (Submission port): Force "
        "authentication on the submission port. Safe default: on (RFC 6409)."),
    opt("smtp.inbound.max_connections", "int", 500, "6.2.3.3",
        "Maximum number of concurrent connections: Limit of simultaneous inbound sessions.",
        minimum=1, maximum=100_000, unit="connections"),
    opt("smtp.inbound.max_connections_per_ip", "int", 20, "6.2.3.3",
        "Maximum concurrent connections from one client IP (privileged and white-listed "
        "addresses are exempt). Not in the manual; limits one host hogging the service.",
        minimum=1, maximum=100_000, unit="connections", manual_id=""),
    opt("smtp.inbound.accept_processes", "int", 1, "6.2.3.3",
        "How many processes accept SMTP connections, sharing the ports (SO_REUSEPORT); 0 "
        "means one per CPU (at most 8). More processes use more cores; connection limits "
        "are then divided between them and hourly limits count per process. Not in the "
        "manual (its service is multi-threaded).",
        minimum=0, maximum=64, unit="processes", live=False, manual_id=""),
    opt("smtp.inbound.command_timeout", "int", 300, "6.2.3.3",
        "How long the server waits for the next command before closing the connection "
        "with 421 (RFC 5321 §4.5.3.2.7: at least 5 minutes). Not in the manual.",
        minimum=10, maximum=3600, unit="seconds", manual_id=""),
    opt("smtp.inbound.data_timeout", "int", 600, "6.2.3.3",
        "How long the server waits for more message data during DATA or BDAT before "
        "closing the connection (RFC 5321 §4.5.3.2.6). Not in the manual.",
        minimum=10, maximum=3600, unit="seconds", manual_id=""),
    opt("smtp.inbound.advertised_max_message_size", "int", 52_428_800, "6.2.3.3",
        "Advertised Maximum message size: SIZE value announced to clients and servers; 0 "
        "means no limit.",
        minimum=0, maximum=2_147_483_647, unit="bytes"),
    opt("smtp.inbound.enforce_max_message_size", "bool", True, "6.2.3.3",
        "Enforce this message size: Reject and delete received messages exceeding the "
        "advertised size."),
    opt("smtp.bind", "addresses", ["0.0.0.0", "::"], "6.2.3.3",
        "Inbound IP Bindings: Local addresses the SMTP listeners (smtp.port, "
        "smtp.submission_port, smtp.smtps_port) bind to.",
        live=False, manual_id="smtp.inbound.ip_bindings"),
    opt("smtp.inbound.bind_all_ips", "bool", False, "6.2.3.3",
        "Always bind the service to all available IP addresses: Listen on every configured "
        "local address. On: listen on every address, ignoring smtp.bind (whose default "
        "already covers all).",
        live=False),
    opt("smtp.inbound.allow_ipv6", "bool", True, "6.2.3.3",
        "Allow IPv6 client connectivity: Accept connections over IPv6.", live=False),
    opt("smtp.inbound.access_control_mode", "enum", "deny_listed", "6.2.3.3",
        "IP Address Connection Restrictions / Access Control: Whether the IP list is a deny "
        "list or an allow-only list.",
        choices=("deny_listed", "allow_listed_only")),
    opt("smtp.inbound.access_control_list", "ip_list", [], "6.2.3.3",
        "IP Address Connection Restrictions (addresses): IP patterns (with * wildcards) "
        "banned or exclusively allowed."),
    opt("smtp.outbound.max_send_threads", "int", 16, "6.2.3.4",
        "Maximum number of send threads: Concurrent outbound delivery threads.",
        minimum=1, maximum=1024, unit="threads"),
    opt("smtp.outbound.remote_timeout", "int", 300, "6.2.3.4",
        "Timeout for Remote Mail Servers: Wait for a remote server response before "
        "disconnecting.",
        minimum=1, maximum=3600, unit="seconds"),
    opt("smtp.outbound.queue_poll_interval", "int", 10, "6.2.3.4",
        "Outgoing queue poll interval: How often the outgoing queue directory is scanned.",
        minimum=1, maximum=3600, unit="seconds"),
    opt("smtp.outbound.limit_message_size_enabled", "bool", False, "6.2.3.4",
        "Limit outbound message size: Check size before remote delivery; oversize mail "
        "bounces (system mail to bad mail)."),
    opt("smtp.outbound.limit_message_size", "int", 52_428_800, "6.2.3.4",
        "Limit outbound message size (value): Maximum size allowed for outbound delivery.",
        minimum=0, maximum=2_147_483_647, unit="bytes"),
    opt("smtp.outbound.ip_binding", "str", "", "6.2.3.4",
        "Outbound IP Binding: Local IP used as source for outbound connections. Empty: chosen"
        " by the operating system."),
    opt("smtp.outbound.tls", "bool", True, "6.2.3.4",
        "Outbound TLS: Opportunistic STARTTLS to remote servers, falling back to plain."),
    opt("smtp.outbound.tls_verify", "bool", False, "6.2.3.4",
        "Verify the certificates of MX hosts when using STARTTLS. Off (the default, as "
        "for most MTAs, RFC 7435 opportunistic security): any certificate is accepted, "
        "since MX host names are rarely in their certificates; on: a failed check makes "
        "the delivery fall back to plain text. Not in the manual.", manual_id=""),
    opt("smtp.relay.enabled", "bool", True, "6.2.3.5",
        "Enable Mail Relay: Permit relaying to non-local recipients; a sender matching any "
        "enabled rule may relay. Only senders matching an enabled rule below may relay."),
    opt("smtp.relay.allow_authenticated", "bool", True, "6.2.3.5",
        "Allow relay for authenticated senders: SMTP AUTH users may relay; recommended setting."),
    opt("smtp.relay.auth_method", "enum", "mailbox", "6.2.3.5",
        "Authentication method: Credentials source: MailEnable/integrated, Windows accounts, "
        "or one fixed username/password. Windows accounts do not apply on Linux.",
        choices=("mailbox", "fixed")),
    opt("smtp.relay.auth_fixed_username", "str", "", "6.2.3.5",
        "Authenticate against the following username/password (username): Single username "
        "accepted for relay authentication."),
    opt("smtp.relay.auth_fixed_password", "str", "", "6.2.3.5",
        "Authenticate against the following username/password (password): Password for the "
        "fixed relay credential.",
        secret=True),
    opt("smtp.relay.allow_privileged_ips", "bool", True, "6.2.3.5",
        "Allow relay for privileged IP ranges: Listed IP ranges may relay without authentication."),
    opt("smtp.relay.privileged_ip_ranges", "ip_list", ["127.0.0.1", "::1"], "6.2.3.5",
        "Allow relay for privileged IP ranges (ranges): Addresses/ranges trusted for relay."),
    opt("smtp.relay.allow_local_sender", "bool", False, "6.2.3.5",
        "Allow relay for local sender addresses: Relay if the sender address uses a hosted "
        "domain; spoofable, discouraged. Safe default: off (makes an open relay for spoofed "
        "senders)."),
    opt("smtp.relay.pop_before_smtp_enabled", "bool", False, "6.2.3.5",
        "POP before SMTP authentication: Allow relay from IPs that recently authenticated via"
        " POP (.pbs files in Config\\Connections)."),
    opt("smtp.relay.pop_before_smtp_duration", "int", 15, "6.2.3.5",
        "POP before SMTP authentication (period): How long a POP-authenticated IP is "
        "remembered for relay.",
        minimum=1, maximum=1440, unit="minutes"),
    opt("smtp.smtps_port", "int", 465, "6.2.3.3",
        "SMTPS port: SMTP submission with implicit TLS (RFC 8314); not in the manual, which "
        "only offers implicit SSL on its two ports. Port 0 disables the listener.",
        minimum=0, maximum=65535, live=False, manual_id=""),
]
