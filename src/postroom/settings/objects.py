"""Option sets of directory objects: post offices, domains, mailboxes, groups, lists.

Manual 5.3 (post office: footers 5.3.4, usage notifications 5.3.5, web admin 5.3.6,
default message 5.3.7.9), 5.4 (domain: general 5.4.2, blacklist 5.4.3, DKIM 5.4.4,
autodiscover 5.4.5), 5.5 (mailbox: general 5.5.3, addresses 5.5.4, redirection 5.5.5,
actions 5.5.6, messages 5.5.7), 5.5.8 (POP retrieval entries), 5.6.2 (group), 5.7.3-5.7.5
(list), plus the per-post-office switches that chapters 6 and 7 refer to (NDR
templates, greylisting and junk mail feature selection, webmail spam reporting).

Each option carries ``manual_id`` = the row id of ``spec/manual-options.tsv``. Rows of
those scopes that are *not* options are listed in :data:`NOT_OPTIONS` (columns and
arguments such as names, passwords and quotas; relationships kept in their own tables
such as group members and address mappings; administrator actions, which are CLI
commands; Windows-only and e-mail-client settings) and rows folded into another
option in :data:`FOLDED`. ``tests/settings/test_objects.py`` checks that every row is
accounted for.

Values are untrusted (CLI, CSV, web forms): e-mail address, domain and date options
are checked and normalised here (domains to their ASCII form), so the directory stores
only canonical values. Where the manual gives no default, the default is the safe
choice today and says so in its description.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from postroom.settings.model import Option, OptionError, OptionSet
from postroom.store.addresses import AddressError, ascii_domain, parse_email


class AddressOption(Option):
    """An e-mail address (``local@domain``) or empty; the domain is stored in ASCII."""

    def validate(self, value: Any) -> Any:
        text = super().validate(value)
        if not text:
            return ""
        try:
            local, domain = parse_email(text, self.key)
        except AddressError as exc:
            raise OptionError(self.key, exc.message) from None
        return f"{local}@{domain}"


class AddressListOption(Option):
    """A list of e-mail addresses (redirection targets ...), each normalised."""

    def validate(self, value: Any) -> Any:
        items = super().validate(value)
        result: list[str] = []
        for item in items:
            try:
                local, domain = parse_email(item, self.key)
            except AddressError as exc:
                raise OptionError(self.key, exc.message) from None
            address = f"{local}@{domain}"
            if address.lower() in (r.lower() for r in result):
                raise OptionError(self.key, f"{item!r} is listed twice")
            result.append(address)
        return result


class DomainOption(Option):
    """A domain name or empty; stored in ASCII (punycode) form."""

    def validate(self, value: Any) -> Any:
        text = super().validate(value)
        if not text:
            return ""
        try:
            return ascii_domain(text, self.key)
        except AddressError as exc:
            raise OptionError(self.key, exc.message) from None


class DomainListOption(Option):
    """A list of domain names (blacklists); each stored in ASCII form, no repeats."""

    def validate(self, value: Any) -> Any:
        items = super().validate(value)
        result: list[str] = []
        for item in items:
            try:
                domain = ascii_domain(item, self.key)
            except AddressError as exc:
                raise OptionError(self.key, exc.message) from None
            if domain not in result:
                result.append(domain)
        return result


class DateTimeOption(Option):
    """An ISO 8601 date or date-time (``2026-12-24`` or ``2026-12-24T17:00``) or empty."""

    def validate(self, value: Any) -> Any:
        text = super().validate(value)
        if not text:
            return ""
        try:
            datetime.fromisoformat(text)
        except ValueError:
            raise OptionError(self.key, f"expected an ISO 8601 date or date-time such as "
                                        f"2026-12-24T17:00, got {text!r}") from None
        return text


class HostOption(Option):
    """A host name or IP address (no port, no spaces) or empty."""

    def validate(self, value: Any) -> Any:
        text = super().validate(value).strip()
        if not text:
            return ""
        if any(ch.isspace() or ch in "/@:[]" for ch in text) and not _is_ipv6(text):
            raise OptionError(self.key, f"expected a host name or IP address, got {text!r}")
        return text


def _is_ipv6(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _bool(key: str, default: bool, description: str, section: str, manual_id: str = "") -> Option:
    return Option(key, "bool", default, description, section=section, manual_id=manual_id)


# --- post office (5.3) -------------------------------------------------------------------

POSTOFFICE = OptionSet("post office")
POSTOFFICE.add(
    _bool("disabled", False, "Suspend the post office: its mailboxes cannot log in.", "5.3"),
    Option("default_quota_mb", "int", None,
           "Size limit given to new mailboxes of this post office, in MB (unset: the server's "
           "'New mailboxes have size limit'); also the most a web administrator may grant.",
           section="5.3.6", minimum=1, unit="MB",
           manual_id="postoffice.webadmin.max_default_mailbox_size"),
    Option("footer.text", "text", "",
           "Disclaimer appended to externally bound mail from this post office (plain text), "
           "when the global footer scope uses post office footers.",
           section="5.3.4", manual_id="postoffice.footers.footer"),
    Option("footer.html", "text", "",
           "HTML form of the post office footer, used for HTML messages (plain text if empty).",
           section="5.3.4"),
    _bool("usage_notifications.enabled", False,
          "Notify a mailbox when the whole post office reaches its disk usage threshold.",
          "5.3.5", "postoffice.usage_notifications.enabled"),
    Option("usage_notifications.threshold_mb", "int", 0,
           "Disk space allowance of the whole post office that triggers the notice (0: none).",
           section="5.3.5", minimum=0, unit="MB",
           manual_id="postoffice.usage_notifications.threshold"),
    Option("usage_notifications.notify_mailbox", "str", "",
           "Mailbox (name in this post office) that receives the threshold notice.",
           section="5.3.5", manual_id="postoffice.usage_notifications.notify_mailbox"),
    _bool("webadmin.enabled", False, "Allow ADMIN mailboxes to administer this post office "
          "through web administration.", "5.3.6", "postoffice.webadmin.enabled"),
    _bool("webadmin.can_edit_mailboxes", True, "Web administrators may create and edit "
          "mailboxes.", "5.3.6", "postoffice.webadmin.can_edit_mailboxes"),
    Option("webadmin.max_mailboxes", "int", 0, "Most mailboxes web administrators may "
           "create in this post office (0: no limit).", section="5.3.6", minimum=0,
           unit="mailboxes", manual_id="postoffice.webadmin.max_mailboxes"),
    _bool("webadmin.can_select_mailbox_size", False, "Web administrators may choose mailbox "
          "size limits up to default_quota_mb.", "5.3.6",
          "postoffice.webadmin.can_select_mailbox_size"),
    _bool("webadmin.can_edit_lists", True, "Web administrators may create and edit lists.",
          "5.3.6", "postoffice.webadmin.can_edit_lists"),
    Option("webadmin.max_lists", "int", 0, "Most lists web administrators may create "
           "(0: no limit).", section="5.3.6", minimum=0, unit="lists",
           manual_id="postoffice.webadmin.max_lists"),
    Option("webadmin.max_list_addresses", "int", 0, "Most members in each list made in web "
           "administration (0: no limit).", section="5.3.6", minimum=0, unit="addresses",
           manual_id="postoffice.webadmin.max_list_addresses"),
    _bool("webadmin.can_manage_domains", False, "Web administrators may add, edit and remove "
          "domains.", "5.3.6", "postoffice.webadmin.can_manage_domains"),
    _bool("webadmin.can_brand", False, "Web administrators may replace the webmail and web "
          "administration logos.", "5.3.6", "postoffice.webadmin.can_brand"),
    Option("default_message", "text", "",
           "Welcome message (RFC 5322 text) placed in every new mailbox; empty: none.",
           section="5.3.7.9", manual_id="postoffice.default_message"),
    Option("advertising.campaigns", "list", [], "Advertising campaigns distributed to the "
           "users of this post office.", section="5.9",
           manual_id="postoffice.advertising.campaigns"),
    _bool("restrictions.require_authenticated_inbound", False,
          "Mail to this post office must arrive over authenticated connections (used when "
          "SMTP delegates inbound authentication to post offices).", "6.2.3.7",
          "postoffice.restrictions.require_authenticated_inbound"),
    Option("ndr.failed_recipients_template", "text", "",
           "Post office override of the failed-recipients NDR text (empty: server template).",
           section="6.2.3.8", manual_id="postoffice.ndr_template_failed_recipients"),
    Option("ndr.general_template", "text", "",
           "Post office override of the general NDR text (empty: server template).",
           section="6.2.3.8", manual_id="postoffice.ndr_template_general"),
    _bool("features.greylisting", True, "Greylist mail to this post office when the server's "
          "greylisting scope is 'determined by post office'.", "6.2.3.15",
          "postoffice.features.greylisting_enabled"),
    _bool("features.junk_email_delivery", True, "Deliver messages marked as spam to the "
          "mailbox's Junk E-mail folder (off: to the Inbox).", "7.4.3",
          "postoffice.features.junk_email_delivery"),
    Option("webmail.spam.report_action", "enum", "postoffice_folder",
           "What 'Report as spam' in webmail does: move to the post office reported folder, "
           "move to the global spam folder, or delete.", section="6.3.5.2.2",
           choices=("postoffice_folder", "global_folder", "delete"),
           manual_id="postoffice.webmail.spam.report_action"),
    _bool("webmail.spam.mark_sender_ip", False, "Webmail users may report the sender's IP "
          "address as a spam source.", "6.3.5.2.2", "postoffice.webmail.spam.mark_sender_ip"),
    _bool("message_store.public_folders", False, "Enable public folders for this post office.",
          "6.3.6.4", "postoffice.message_store.public_folders_enabled"),
)

# --- domain (5.4) ------------------------------------------------------------------------

DOMAIN = OptionSet("domain")
DOMAIN.add(
    _bool("disabled", False, "Stop accepting mail addressed to this domain.", "5.4.2",
          "domain.general.disabled"),
    AddressOption("abuse_address", "email", "", "Address receiving mail for abuse@domain.",
                  section="5.4.2", manual_id="domain.general.abuse_address"),
    AddressOption("postmaster_address", "email", "", "Address receiving mail for "
                  "postmaster@domain and the domain's notifications.", section="5.4.2",
                  manual_id="domain.general.postmaster_address"),
    AddressOption("catch_all", "email", "",
                  "Destination of mail to addresses of this domain that have no mapping: a "
                  "mapped address of a local mailbox or group, or (discouraged: it relays "
                  "spam) a remote address. Empty: no catch-all. Kept in the address map as "
                  "[SMTP:*@domain].", section="5.4.2", manual_id="domain.general.catchall_address"),
    _bool("smart_host.enabled", False, "Forward all mail for this domain to another server "
          "(e.g. when acting as backup MX).", "5.4.2", "domain.general.smart_host_enabled"),
    HostOption("smart_host.host", "str", "", "Host name or IP address of the server that "
               "receives this domain's mail; must not be this server.", section="5.4.2",
               manual_id="domain.general.smart_host_address"),
    Option("smart_host.port", "int", 25, "Port of the smart host.", section="5.4.2",
           minimum=1, maximum=65535),
    _bool("smart_host.authenticated_relay_only", False, "Smart host this domain's mail only "
          "for senders that meet the SMTP relay criteria.", "5.4.2",
          "domain.general.smart_host_authenticated_relay_only"),
    HostOption("smart_host.bound_ip_host", "str", "",
               "When outbound mail of this domain is bound to an IP address, send it via "
               "this remote host (empty: deliver directly).", section="2.4",
               manual_id="smtp.smart_host.per_domain_ip_binding"),
    DomainListOption("blacklist", "list", [], "Sender domains (envelope sender) refused when "
                     "sending to this domain.", section="5.4.3",
                     manual_id="domain.blacklist.domains"),
    _bool("dkim.enabled", False, "DKIM-sign mail sent from this domain.", "5.4.4",
          "domain.dkim.sign_outgoing"),
    Option("dkim.algorithm", "enum", "rsa-sha256", "Signature algorithm (RFC 6376, RFC 8463; "
           "rsa-sha1 is refused by verifiers today and not offered).", section="5.4.4",
           choices=("rsa-sha256", "ed25519-sha256"), manual_id="domain.dkim.encryption_algorithm"),
    Option("dkim.canonicalization.header", "enum", "relaxed", "Header canonicalization: "
           "simple fails on any change in transit, relaxed tolerates white space changes.",
           section="5.4.4", choices=("simple", "relaxed"),
           manual_id="domain.dkim.canonicalization.header"),
    Option("dkim.canonicalization.body", "enum", "relaxed", "Body canonicalization.",
           section="5.4.4", choices=("simple", "relaxed"),
           manual_id="domain.dkim.canonicalization.body"),
    _bool("dkim.body_length_limit.enabled", False, "Hash only part of the body (l= tag); data "
          "appended in transit then still verifies.", "5.4.4",
          "domain.dkim.body_hash_length_limit_enabled"),
    Option("dkim.body_length_limit", "int", 0, "Octets of the body covered by the body hash "
           "when the limit is on.", section="5.4.4", minimum=0, unit="bytes",
           manual_id="domain.dkim.body_hash_length_limit"),
    _bool("dkim.include_user_identity", False, "Put the sending user's identity (i=) in the "
          "signature.", "5.4.4", "domain.dkim.include_user_identity"),
    Option("dkim.selector", "str", "", "Selector of the signing key; its public key is "
           "published at SELECTOR._domainkey.DOMAIN.", section="5.4.4",
           manual_id="domain.dkim.selector.name"),
    Option("dkim.key_size", "enum", "2048", "RSA key length for a new selector (the "
           "manual's example 1024 is too weak today).", section="5.4.4",
           choices=("1024", "2048", "3072", "4096"), unit="bits",
           manual_id="domain.dkim.selector.key_size"),
    Option("dkim.private_key", "text", "", "PEM private key of the selector.",
           section="5.4.4", secret=True),
    _bool("dkim.test_mode", False, "Publish t=y: verifiers treat failures as unsigned.",
          "5.4.4", "domain.dkim.selector.test_mode"),
    Option("dkim.granularity", "str", "", "Restrict valid signatures to this user "
           "(compared with the user identity).", section="5.4.4",
           manual_id="domain.dkim.selector.granularity"),
    Option("dkim.notes", "text", "", "Notes for people (n= tag of the published record).",
           section="5.4.4", manual_id="domain.dkim.selector.notes"),
    _bool("dkim.selector_active", True, "Sign with this selector (off: keep it published "
          "for verifying mail sent earlier, but do not sign).", "5.4.4",
          "domain.dkim.selector.active"),
    Option("autodiscover.services", "list", [],
           "Services published by Autodiscover for this domain, each 'PROTOCOL HOST PORT "
           "ssl|plain' (e.g. 'imap mail.example.com 993 ssl'); empty: from the server's "
           "listeners.", section="5.4.5", manual_id="domain.autodiscover.services"),
    Option("webmail.base", "str", "", "Webmail base used for this domain (empty: server's).",
           section="6.3.5.3.2", manual_id="webmail.site.base"),
    Option("webmail.skin", "str", "", "Webmail skin for this domain; must exist in the base.",
           section="6.3.5.3.2", manual_id="webmail.site.skin"),
)

# --- mailbox (5.5) -----------------------------------------------------------------------

MAILBOX = OptionSet("mailbox")
MAILBOX.add(
    _bool("disabled", False, "Suspend the mailbox: no service access, and its address "
          "mappings are inactive.", "5.5.3", "mailbox.disabled"),
    _bool("prevent_authentication", False, "Refuse logins with this mailbox's credentials on "
          "every service.", "5.5.3", "mailbox.prevent_authentication"),
    Option("friendly_name", "str", "", "Display name for mail sent from webmail and for "
           "auto-responder messages.", section="5.5.4",
           manual_id="mailbox.addresses.friendly_name"),
    AddressOption("reply_to", "email", "", "Reply-To address of auto-responder messages.",
                  section="5.5.4", manual_id="mailbox.addresses.reply_to_address"),
    _bool("redirect.enabled", False, "Forward all incoming mail to redirect.addresses.",
          "5.5.5", "mailbox.redirection.enabled"),
    AddressListOption("redirect.addresses", "list", [], "Redirection targets (for many "
                      "targets use a group).", section="5.5.5",
                      manual_id="mailbox.redirection.addresses"),
    _bool("redirect.keep_copy", False, "Also keep redirected mail in this mailbox.", "5.5.5",
          "mailbox.redirection.keep_copy"),
    _bool("autoresponder.enabled", False, "Reply automatically to senders (never to bulk or "
          "system mail; not allowed for postmaster).", "5.5.6", "mailbox.autoresponder.enabled"),
    Option("autoresponder.subject", "str", "Automatic reply", "Subject of the automatic reply.",
           section="5.5.6"),
    Option("autoresponder.body", "text", "", "Text of the automatic reply.", section="5.5.6",
           manual_id="mailbox.autoresponder.message"),
    _bool("autoresponder.html", False, "The auto-responder body is HTML.", "5.5.6"),
    _bool("autoresponder.time_window", False, "Only send replies between start_time and "
          "end_time.", "5.5.6", "mailbox.autoresponder.time_window_enabled"),
    DateTimeOption("autoresponder.start_time", "time", "", "ISO 8601 date/time from which "
                   "replies are sent.", section="5.5.6",
                   manual_id="mailbox.autoresponder.start_time"),
    DateTimeOption("autoresponder.end_time", "time", "", "ISO 8601 date/time after which "
                   "replies stop.", section="5.5.6", manual_id="mailbox.autoresponder.end_time"),
    _bool("delivery_event.enabled", False, "Run delivery_event.program for each delivered "
          "message (not for bulk mail unless the post office connector says so).", "5.5.6",
          "mailbox.delivery_event.enabled"),
    Option("delivery_event.program", "path", "", "Program run as: PROGRAM MESSAGEFILE "
           "CONNECTORTYPE.", section="5.5.6", manual_id="mailbox.delivery_event.program"),
    _bool("forward_all.enabled", False, "Forward the messages stored in this mailbox to "
          "another account, as a mail client would.", "5.5.7",
          "mailbox.messages.forward_all.enabled"),
    AddressOption("forward_all.target", "email", "", "Account the stored messages are "
                  "forwarded to.", section="5.5.7",
                  manual_id="mailbox.messages.forward_all.target"),
    _bool("forward_all.delete_after", False, "Remove messages after forwarding them.", "5.5.7",
          "mailbox.messages.forward_all.delete_after"),
)

# --- POP retrieval entry (5.5.8) ---------------------------------------------------------

POP_RETRIEVAL = OptionSet("POP retrieval")
POP_RETRIEVAL.add(
    HostOption("host", "str", "", "Remote POP3 server (DNS name or IP address).",
               section="5.5.8", manual_id="mailbox.pop_retrieval.mail_server"),
    Option("port", "int", 110, "Remote POP3 port (995 for implicit TLS).", section="5.5.8",
           minimum=1, maximum=65535, manual_id="mailbox.pop_retrieval.port"),
    Option("username", "str", "", "Remote account login (mailbox@postoffice for "
           "MailEnable-style servers).", section="5.5.8",
           manual_id="mailbox.pop_retrieval.username"),
    _bool("apop", False, "Log in with APOP instead of USER/PASS.", "5.5.8",
          "mailbox.pop_retrieval.apop"),
    Option("tls", "enum", "starttls", "Connection security: implicit TLS, STARTTLS (STLS, "
           "RFC 2595), or none. The manual predates TLS by default; STARTTLS is the safe "
           "default today.", section="5.5.8", choices=("none", "starttls", "implicit")),
    _bool("leave_on_server", False, "Leave messages on the server and download only new "
          "ones.", "5.5.8", "mailbox.pop_retrieval.leave_on_server"),
    _bool("enabled", True, "Retrieve mail for this entry (off keeps the settings).", "5.5.8",
          "mailbox.pop_retrieval.enabled"),
)

# --- group (5.6) -------------------------------------------------------------------------

GROUP = OptionSet("group")
GROUP.add(
    _bool("disabled", False, "Stop the group: mail to its addresses bounces as invalid.",
          "5.6.2", "group.disabled"),
)

# --- list (5.7) --------------------------------------------------------------------------

LIST = OptionSet("list")
LIST.add(
    DomainOption("domain", "str", "", "Domain of the list's posting address NAME@DOMAIN; "
                 "must be a domain of the post office. Setting it maps that address.",
                 section="5.7.3", manual_id="list.domain"),
    AddressOption("owner_email", "email", "", "List owner and moderator; must differ from "
                  "the SMTP system notification address.", section="5.7.3",
                  manual_id="list.owner_email"),
    _bool("disabled", False, "Refuse posts to the list.", "5.7.3", "list.disabled"),
    _bool("help_enabled", True, "Reply with command help to posts whose subject is 'help'.",
          "5.7.3", "list.help_enabled"),
    Option("type", "enum", "unmoderated", "Unmoderated; moderated (every post goes to the "
           "moderator); or password-moderated (the moderator posts with the password).",
           section="5.7.3", choices=("unmoderated", "moderated", "password_moderated"),
           manual_id="list.type"),
    Option("description", "text", "", "Description shown to administrators.", section="5.7.3",
           manual_id="list.description"),
    Option("subscription_type", "enum", "confirm", "Subscribing by mail: anyone, not "
           "permitted, or confirmed with a code (double opt-in, the safe default).",
           section="5.7.4", choices=("anyone", "closed", "confirm"),
           manual_id="list.subscription_type"),
    Option("posting_permissions", "enum", "subscribers", "Who may post: anyone, subscribers "
           "only, or whoever includes the password as [:password:].", section="5.7.4",
           choices=("anyone", "subscribers", "password"), manual_id="list.posting_permissions"),
    Option("posting_password", "str", "", "Password for posting (or moderating a "
           "password-moderated list).", section="5.7.4", secret=True,
           manual_id="list.posting_password"),
    Option("reply_to", "enum", "list", "Where replies go: the list, the poster, or the "
           "moderator.", section="5.7.4", choices=("list", "poster", "moderator"),
           manual_id="list.reply_options"),
    Option("subject_prefix.mode", "enum", "list_name", "Subject prefix: [listname], none, or "
           "subject_prefix.text.", section="5.7.4", choices=("list_name", "none", "custom"),
           manual_id="list.subject_prefix_mode"),
    Option("subject_prefix.text", "str", "", "Custom subject prefix.", section="5.7.4",
           manual_id="list.subject_prefix_text"),
    _bool("header.enabled", False, "Add header.text to the top of every list message.",
          "5.7.5", "list.header.enabled"),
    Option("header.text", "text", "", "List header (plain text or HTML).", section="5.7.5",
           manual_id="list.header.text"),
    _bool("footer.enabled", False, "Add footer.text to the bottom of every list message.",
          "5.7.5", "list.footer.enabled"),
    Option("footer.text", "text", "", "List footer (plain text or HTML).", section="5.7.5",
           manual_id="list.footer.text"),
    _bool("tracking_enabled", False, "Track messages of this list in message tracking.",
          "6.3.2.3", "list.tracking_enabled"),
)

ALL: dict[str, OptionSet] = {
    "postoffice": POSTOFFICE, "domain": DOMAIN, "mailbox": MAILBOX,
    "pop_retrieval": POP_RETRIEVAL, "group": GROUP, "list": LIST,
}

# Manual rows of these scopes that are not options, and why (see the module docstring).
NOT_OPTIONS: dict[str, str] = {
    "postoffice.name": "column: create_postoffice(name)",
    "postoffice.postmaster_password": "argument of the CLI's postoffice create (it creates "
                                      "the postmaster mailbox)",
    "postoffice.option_files.mailbox_template": "file-based configuration only; options "
                                                "live in the store",
    "domain.name": "column: create_domain(name)",
    "mailbox.name": "column: create_mailbox(name)",
    "mailbox.password": "column: password hash and recoverable secret; set_password()",
    "mailbox.type": "column: USER | ADMIN | SYSADMIN",
    "mailbox.size_limit_enabled": "column: quota_bytes None means no limit",
    "mailbox.size_limit": "column: quota_bytes",
    "mailbox.addresses.email_addresses": "the address map (add_address)",
    "mailbox.pop_retrieval.password": "encrypted column of the POP retrieval entry",
    "group.name": "column: create_group(name)",
    "group.members": "table group_member (add_group_member)",
    "group.addresses": "the address map: add_address(addr, [SF:po/group])",
    "list.name": "column: create_list(name)",
    "list.members": "table list_member (list server)",
}

# Rows folded into another option: row id -> option key (set.key).
FOLDED: dict[str, str] = {
    "domain.autodiscover.service.port": "domain.autodiscover.services",
    "domain.autodiscover.service.ssl": "domain.autodiscover.services",
}

# Components of rows that are never options here.
SKIPPED_COMPONENTS = frozenset({"windows_only", "admin_actions", "email_client"})


# --- applying option changes -------------------------------------------------------------

_TEXT_PARSED_KINDS = ("bool", "int", "list", "ip_list")


def validate_changes(option_set: OptionSet, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Check every key and value of ``changes``; return them in canonical form.

    A value of ``None`` means "back to the default". Text given for a bool, int or list
    option (web forms, CSV) is parsed as on the command line. Raises OptionError whose
    ``field`` is the key (unknown keys carry the nearest-key hint).
    """
    result: dict[str, Any] = {}
    for key, value in changes.items():
        option = option_set.get(key)
        if value is None:
            result[key] = None
        elif isinstance(value, str) and option.kind in _TEXT_PARSED_KINDS:
            result[key] = option.parse(value)
        else:
            result[key] = option.validate(value)
    return result


def merge(option_set: OptionSet, stored: Mapping[str, Any],
          changes: Mapping[str, Any]) -> dict[str, Any]:
    """Stored (non-default) values after applying validated ``changes``.

    Only values that differ from their option's default are kept, so a later change of
    a default reaches every object that never set the option.
    """
    result = {k: v for k, v in stored.items() if k in option_set}
    for key, value in changes.items():
        if value is None or value == option_set.get(key).default:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def effective(option_set: OptionSet, stored: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults with the stored values over them (what records carry)."""
    values = option_set.defaults()
    for key, value in stored.items():
        if key in option_set:
            values[key] = list(value) if isinstance(value, list) else value
    return {k: (list(v) if isinstance(v, list) else v) for k, v in sorted(values.items())}
