"""DNS resolution used by outbound SMTP, SPF, DKIM and DNSBL checks (manual 6.2.3.2, "DNS Address").

The manual keeps resolver addresses on the SMTP General tab; every Postroom
component that resolves names reads this one key. Entries are administrator input
parsed strictly (IPv4, IPv6 in brackets when a port is given).
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("dns.nameservers", "nameservers", [], "6.2.3.2",
        "DNS Address: DNS resolvers tried in order for MX, SPF, DKIM and DNSBL lookups. "
        "Empty: the system resolver (/etc/resolv.conf). Entries are IP or IP:PORT, e.g. "
        "127.0.0.1:5353 or [::1]:53.",
        manual_id="smtp.general.dns_addresses"),
]
