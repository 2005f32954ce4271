"""Synchronization service (manual 6.3.6): CalDAV/CardDAV, SyncML and HTTPMail endpoints.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("sync.general.inactivity_timeout", "int", 1800, "6.3.6.1",
        "Inactivity timeout: How long an idle synchronization connection stays open.",
        minimum=1, maximum=86400, unit="seconds"),
    opt("sync.general.port", "int", 8080, "6.3.6.1",
        "Service listens on port: Main synchronization service port (HTTPMail published on "
        "8080 by default). When equal to web.port the endpoints share the web listener. Port "
        "0 disables the listener.",
        minimum=0, maximum=65535, live=False),
    opt("sync.general.alternate_port_enabled", "bool", False, "6.3.6.1",
        "Also listen on alternate port: Listen on a second port.", live=False),
    opt("sync.general.alternate_port", "int", 8443, "6.3.6.1",
        "Also listen on alternate port (port): Second synchronization port. Port 0 disables "
        "the listener.",
        minimum=0, maximum=65535, live=False),
    opt("sync.general.basic_auth_enabled", "bool", True, "6.3.6.1",
        "Enable Basic authentication: Accept HTTP Basic authentication. Offered over TLS only."),
    opt("sync.general.digest_auth_enabled", "bool", False, "6.3.6.1",
        "Enable Digest authentication: Accept HTTP Digest authentication."),
    opt("sync.general.bind_all_ips", "bool", False, "6.3.6.1",
        "Always bind all IPs: Listen on all local addresses.", live=False),
    opt("sync.general.ip_bindings", "addresses", [], "6.3.6.1",
        "IP Binding: Specific local addresses for the sync service. Empty: web.bind.", live=False),
    opt("sync.caldav.enabled", "bool", True, "6.3.6.2",
        "Enable CalDAV/CardDAV support and iCalendar hosting: Serve CalDAV, CardDAV and "
        "hosted .ics calendars."),
    opt("sync.syncml.enabled", "bool", False, "6.3.6.3.2",
        "Enable SyncML Support: Accept SyncML 1.2 (XML/WBXML) synchronization of contacts, "
        "calendar and tasks."),
    opt("sync.syncml.max_msg_size", "int", 1_048_576, "6.3.6.3.2",
        "MaxMsgSize: Largest SyncML response message allowed in a package (registry value).",
        minimum=1024, maximum=2_147_483_647, unit="bytes"),
    opt("sync.syncml.max_obj_size", "int", 4_194_304, "6.3.6.3.2",
        "MaxObjSize: Largest data object the server accepts (registry value).",
        minimum=1024, maximum=2_147_483_647, unit="bytes"),
    opt("sync.httpmail.public_folders_enabled", "bool", False, "6.3.6.4",
        "Enable public folders for post offices: Expose each post office's Pubroot as a "
        "shared public folder over HTTPMail."),
]
