"""The web listener (manual 6.3.2 and 6.3.5 run webmail and web administration under IIS).

Postroom serves webmail, web administration and the REST API from one HTTP
listener; its address and port take effect after a restart.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("web.port", "int", 8080, "6.3.5",
        "Port of the HTTP listener serving webmail, web administration (under /admin) and the"
        " REST API; the manual leaves this to IIS. Port 0 disables the listener.",
        minimum=0, maximum=65535, live=False, manual_id=""),
    opt("web.bind", "addresses", ["0.0.0.0", "::"], "6.3.5",
        "Local addresses the web listener binds to.", live=False, manual_id=""),
]
