"""DKIM (manual 5.4.4): the server-wide switch for signing outbound mail.

Keys and selectors are per domain (domain options), not server settings.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("dkim.enabled", "bool", True, "5.4.4",
        "Enable DomainKeys Identified Mail (DKIM) functionality on this server: Global switch"
        " for DKIM signing under Localhost > Extensions. Domains without a key are not "
        "signed."),
]
