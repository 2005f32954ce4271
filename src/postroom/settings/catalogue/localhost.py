"""Server-wide properties of "Localhost" (manual 5.8): default post office, policies, SSL, auditing.

The password policy keys are read by :mod:`postroom.auth.policy` whenever an
administrator or user sets a password; lockout and abuse detection by the
authentication layer shared by every service.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("localhost.general.default_postoffice_enabled", "bool", False, "5.8.1",
        "Enable Default Post Office: Allow logons with bare mailbox names, resolved against a"
        " default post office."),
    opt("localhost.general.default_postoffice", "str", "", "5.8.1",
        "Enable Default Post Office (post office): Post office assumed when a username has no"
        " @postoffice part."),
    opt("localhost.general.postoffice_ip_bindings", "list", [], "5.8.1",
        "Post office bindings to IP addresses: Mapping of post offices to server IP "
        "addresses, shown on the General tab. Entries are POSTOFFICE=IP."),
    opt("localhost.policies.lockout_enabled", "bool", False, "5.8.2",
        "Lock out user for one hour after: Lock a mailbox for one hour after too many failed "
        "logins across all services in an hour."),
    opt("localhost.policies.lockout_failed_attempts", "int", 10, "5.8.2",
        "Lock out user for one hour after (attempts): Number of authentication failures per "
        "hour that triggers the lockout.",
        minimum=1, maximum=1000, unit="failed attempts"),
    opt("localhost.policies.enforce_password_policy", "bool", True, "5.8.2",
        "Enforce password policy: Apply complexity rules when admins create or users change "
        "passwords; always bans name, 'password', 'pass', 'test'."),
    opt("localhost.policies.password_policy_rules", "list", [], "5.8.2",
        "Other password policies: Additional selectable password complexity requirements (not"
        " enumerated in manual)."),
    opt("localhost.policies.abuse_detection_enabled", "bool", True, "5.8.2",
        "Enable abuse detection and prevention: Temporarily block (1 hour, in memory) IPs "
        "guessing passwords; whitelisted IPs exempt; Unblock IP Address releases early (v9, "
        "2.4). Safe default: on."),
    opt("localhost.ssl.certificate", "path", "", "5.8.3",
        "SSL certificate: Single certificate used by SMTP, POP and IMAP for SSL/TLS (chosen "
        "from the machine's personal certificate store on Windows). Empty: the certificate "
        "created by `postroom init`."),
    opt("localhost.ssl.enabled", "bool", True, "5.8.3",
        "SSL tab (enable certificate for MailEnable): Server-level enablement of SSL that "
        "per-service SSL options depend on. `postroom init` creates a self-signed "
        "certificate."),
    opt("localhost.auditing.enabled", "bool", False, "5.8.4",
        "Auditing: Record account activity (authentication, folder deletion) viewable by "
        "users in webmail options."),
    opt("localhost.policies.password_min_length", "int", 10, "5.8.2",
        "Minimum password length: passwords shorter than this are refused when the password "
        "policy is enforced. Not in the manual, which leaves the rules unlisted.",
        minimum=4, maximum=128, manual_id=""),
    opt("localhost.policies.password_min_classes", "int", 3, "5.8.2",
        "Minimum character classes: how many of lower case, upper case, digits and other "
        "characters a password must contain when the password policy is enforced.",
        minimum=1, maximum=4, manual_id=""),
    opt("localhost.policies.password_disallow_username", "bool", True, "5.8.2",
        "Password may not contain the user name: refuse passwords containing the mailbox name"
        " when the password policy is enforced (the manual always bans it).",
        manual_id=""),
]
