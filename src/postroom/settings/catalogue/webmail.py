"""Webmail (manual 6.3.5, 11.9): user features, spam reporting, logging, host headers, uploads.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("advertising.webmail_banners_enabled", "bool", False, "5.9.2",
        "Display advertising banners in web mail: Show campaign banners in webmail."),
    opt("webmail.general.users_can_configure_pop_retrieval", "bool", True, "6.3.5.2.1",
        "Users can configure POP Retrieval items: Show the POP Retrieval page under Options >"
        " Advanced."),
    opt("webmail.general.users_can_add_redirection", "bool", True, "6.3.5.2.1",
        "Users can add a redirection: Show the Redirections page under Options > Mail."),
    opt("webmail.general.users_can_configure_autoresponders", "bool", True, "6.3.5.2.1",
        "User can configure autoresponders: Show the Auto response page under Options > Mail."),
    opt("webmail.general.calendaring_enabled", "bool", True, "6.3.5.2.1",
        "Enable calendaring: Provide a private per-mailbox calendar in webmail."),
    opt("webmail.general.tasks_enabled", "bool", True, "6.3.5.2.1",
        "Enable tasks: Provide tasks to all webmail users."),
    opt("webmail.general.users_can_change_spam_level", "bool", True, "6.3.5.2.1",
        "Users can change their spam protection level: Show the Spam protection page under "
        "Options > Advanced."),
    opt("webmail.general.users_can_set_display_name", "bool", True, "6.3.5.2.1",
        "User can set their display name: Let users set a friendly name used for webmail-sent"
        " mail."),
    opt("webmail.general.users_can_change_password", "bool", True, "6.3.5.2.1",
        "User can change their passwords: Allow password changes from webmail options."),
    opt("webmail.general.plain_text_hyperlinks", "bool", True, "6.3.5.2.1",
        "Create URL and email hyperlinks for plain text messages: Turn URLs and addresses in "
        "plain-text mail into links."),
    opt("webmail.general.html_preview", "bool", True, "6.3.5.2.1",
        "Display HTML mails in preview window: Render HTML messages in the preview pane (may "
        "be disabled for speed or safety)."),
    opt("webmail.general.users_can_publish_resources", "bool", True, "6.3.5.2.1",
        "Users can publish resources: Show Calendar Publishing under Options > Calendar."),
    opt("webmail.general.help_enabled", "bool", True, "6.3.5.2.1",
        "Enable help: Show help links in webmail."),
    opt("webmail.general.show_branded_logos", "bool", True, "6.3.5.2.1",
        "Show branded logos: Display company logos at top left of webmail."),
    opt("webmail.general.hide_client_ip", "bool", False, "6.3.5.2.1",
        "Don't add client IP addresses to headers: Omit the browser client's IP from Received"
        " headers of webmail-sent mail."),
    opt("webmail.general.users_can_access_activity_view", "bool", True, "6.3.5.2.1",
        "Users can access activity view: Allow users to see their activity statistics."),
    opt("webmail.general.users_can_edit_whitelist", "bool", True, "6.3.5.2.1",
        "Users can edit their Whitelist: Show the Whitelist page under Options > Mail."),
    opt("webmail.general.users_can_edit_blacklist", "bool", True, "6.3.5.2.1",
        "Users can edit their Blacklist: Show the Blacklist page under Options > Mail."),
    opt("webmail.general.youtube_previews", "bool", False, "6.3.5.2.1",
        "Show YouTube Previews: Embed playable previews for YouTube links in messages. Safe "
        "default: off (loads third-party content)."),
    opt("webmail.general.media_player_enabled", "bool", True, "6.3.5.2.1",
        "Enable Media Player: Stream MP3 attachments and MyFiles audio in-browser."),
    opt("webmail.general.file_storage_enabled", "bool", True, "6.3.5.2.1",
        "File Storage is enabled: Show the MyFiles storage branch."),
    opt("webmail.general.default_charset", "enum", "UTF-8", "6.3.5.2.1",
        "Default Character Set: Initial character set for users, who may change it in "
        "Settings. Safe default: UTF-8 (the manual's is US-ASCII).",
        choices=(
            "UTF-8", "US-ASCII", "ISO-8859-1", "ISO-8859-15", "Windows-1252", "ISO-2022-JP",
            "Shift_JIS", "EUC-KR", "GB2312", "Big5", "KOI8-R",
        )),
    opt("webmail.general.default_timezone", "timezone", "UTC", "6.3.5.2.1",
        "Default time zone: Initial time zone used to display message dates. An IANA zone "
        "name such as Europe/Paris."),
    opt("webmail.spam.report_action", "enum", "postoffice_setting", "6.3.5.2.2",
        "Report as spam action: What 'Report as spam' does: use post office setting, move to "
        "post office reported folder, move to global spam folder, or delete.",
        choices=(
            "postoffice_setting", "move_to_postoffice_folder", "move_to_global_folder", "delete",
        )),
    opt("webmail.spam.mark_sender_ip", "bool", False, "6.3.5.2.2",
        "Mark the sender IP as spam source: Record the message's sending IP in post office "
        "and system spam databases for SMTP IP blocking."),
    opt("webmail.spam.global_spam_folder", "path", "", "6.3.5.2.2",
        "Global spam folder (Report as spam): Destination folder for the 'move to global spam"
        " folder' action."),
    opt("webmail.logging.status", "enum", "disabled", "6.3.5.2.3",
        "Logging status: Disabled, log to debug log, or log to Windows Event log; change "
        "needs IIS reset.",
        choices=("disabled", "debug_log", "system_log")),
    opt("webmail.logging.level", "int", 2, "6.3.5.2.3",
        "Logging level (sliding bar): Verbosity from logins only (low) to all actions and "
        "retrieval (high).",
        minimum=1, maximum=5),
    opt("webmail.host_header.host_name", "str", "", "6.3.5.3.2",
        "Host name: Host name (e.g. webmail.example.com) published for webmail."),
    opt("webmail.host_header.ip_address", "str", "", "6.3.5.3.2",
        "IP Address: Address the webmail host header binds to."),
    opt("webmail.host_header.port", "int", 0, "6.3.5.3.2",
        "Port: Port for the webmail host header. 0: web.port.", minimum=0, maximum=65535),
    opt("webmail.host_header.default_postoffice", "str", "", "6.3.5.3.2",
        "Default postoffice: Post office assumed for logons through this host header."),
    opt("webmail.host_header.base", "enum", "professional", "6.3.5.3.2",
        "Base: Professional or Enterprise base for this host header.",
        choices=("professional", "enterprise")),
    opt("webmail.host_header.skin", "str", "default", "6.3.5.3.2",
        "Skin: Skin for this host header."),
    opt("webmail.host_header.language", "str", "en", "6.3.5.3.2",
        "Language: Default language for this host header."),
    opt("webmail.site_options.server_base", "enum", "professional", "6.3.5.3.2",
        "Server level base web mail design: Default base for all domains/sites unless "
        "overridden.",
        choices=("professional", "enterprise")),
    opt("webmail.site.skin_availability", "enum", "public", "6.3.5.3.2",
        "Skin Availability: Per-skin Public (offered on login page) or Private.",
        choices=("public", "private")),
    opt("webmail.upload.max_request_length", "int", 10240, "11.9",
        "httpRuntime maxRequestLength: Maximum webmail request/upload size (web.config).",
        minimum=1, maximum=4_194_304, unit="KB"),
    opt("webmail.upload.execution_timeout", "int", 3600, "11.9",
        "httpRuntime executionTimeout: Maximum webmail request execution time (web.config).",
        minimum=1, maximum=86400, unit="seconds"),
]
