"""Web administration (manual 5.9, 6.3.2): features, host headers and advertising campaigns.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("advertising.campaign.rotation_frequency", "int", 60, "5.9",
        "Campaign banner rotation frequency: How often banners of a campaign rotate (set in "
        "web administration).",
        minimum=1, maximum=86400, unit="seconds"),
    opt("advertising.campaign.click_through_url", "str", "", "5.9",
        "Campaign click through URL: URL opened when a campaign banner is clicked."),
    opt("advertising.campaign_management_enabled", "bool", False, "5.9.1",
        "Enable Campaign Management in Web Administration: Let administrators define banner "
        "campaigns in web administration."),
    opt("webadmin.general.default_base", "enum", "professional", "6.3.2.2",
        "Default base: Edition base folder used when a site has no explicit base.",
        choices=("professional", "enterprise")),
    opt("webadmin.features.campaign_management", "bool", True, "6.3.2.3",
        "Enable Campaign Management: Show the campaign management page."),
    opt("webadmin.features.campaign_subscription", "bool", True, "6.3.2.3",
        "Enable Campaign Subscription: Allow subscribing to campaigns."),
    opt("webadmin.features.dkim_management", "bool", True, "6.3.2.3",
        "Enable DKIM Management: Allow DKIM settings to be managed in web admin."),
    opt("webadmin.features.list_tracking", "bool", True, "6.3.2.3",
        "Enable List Tracking: Show the list tracking page for subscription management."),
    opt("webadmin.features.sms_address_editing", "bool", False, "6.3.2.3",
        "Enable SMS address editing: Allow SMS addresses to be managed."),
    opt("webadmin.host_header.host_name", "str", "", "6.3.2.5",
        "Host name: Host name (e.g. webadmin.example.com) for a web admin host header."),
    opt("webadmin.host_header.ip_address", "str", "", "6.3.2.5",
        "IP Address: Address the host header binds to."),
    opt("webadmin.host_header.port", "int", 0, "6.3.2.5",
        "Port: Port for the host header. 0: web.port.", minimum=0, maximum=65535),
    opt("webadmin.host_header.base", "enum", "professional", "6.3.2.5",
        "Base: Professional or Enterprise base for this host header.",
        choices=("professional", "enterprise")),
    opt("webadmin.host_header.skin", "str", "default", "6.3.2.5",
        "Skin: Skin for web administration on this host header."),
    opt("webadmin.host_header.language", "str", "en", "6.3.2.5",
        "Language: Default interface language for this host header."),
]
