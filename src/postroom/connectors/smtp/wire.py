"""SMTP replies on the wire: one :class:`Reply` type and the named replies we send.

Shared by the inbound server and the outbound client (manual section 6.2.3), so
both directions speak the same codes. Sources:

- RFC 5321 §4.2 (reply syntax, multi-line replies ``250-...`` then ``250 ...``),
  §4.2.2/§4.2.3 (the codes), §4.5.3.1.5 (a reply line is at most 512 octets);
- RFC 3463 (enhanced status codes ``class.subject.detail``) and RFC 2034 (they are
  put on every line of every 2xx/4xx/5xx reply except the greeting and the
  HELO/EHLO reply; 3xx intermediate replies carry none);
- RFC 1870 (SIZE), RFC 3030 (CHUNKING), RFC 3207 (STARTTLS), RFC 4954 (AUTH),
  RFC 6531 (SMTPUTF8), RFC 3461 (DSN).

Reply text is ours, never the client's, but it may carry values that came from the
client (an address echoed back): :class:`Reply` refuses CR, LF and NUL in text, so a
reply can never be split into two (reply injection).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from functools import lru_cache

_ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
MAX_REPLY_LINE = 512
"""RFC 5321 §4.5.3.1.5: reply line length including the code and CRLF."""


@dataclass(frozen=True)
class Reply:
    """One SMTP reply: a three-digit code, an optional enhanced code and text.

    ``text`` is a single line or a tuple of lines (a multi-line reply such as the
    EHLO keyword list). The enhanced code, when present, must agree with the
    reply's class (a 5xx reply carries ``5.x.y``).
    """

    code: int
    enhanced: str | None = None
    text: str | tuple[str, ...] = ""

    def __post_init__(self) -> None:
        if not 200 <= self.code <= 599:
            raise ValueError(f"reply code: {self.code} is not between 200 and 599")
        if self.enhanced is not None:
            if not _ENHANCED.match(self.enhanced):
                raise ValueError(f"enhanced code: {self.enhanced!r} is not class.subject.detail")
            if self.code // 100 in (2, 4, 5) and self.enhanced[0] != str(self.code)[0]:
                raise ValueError(
                    f"enhanced code: {self.enhanced} does not match reply class {self.code}"
                )
            if self.code // 100 == 3:
                raise ValueError("enhanced code: 3xx intermediate replies carry none (RFC 2034)")
        for line in self.lines:
            if "\r" in line or "\n" in line or "\x00" in line:
                raise ValueError("reply text: CR, LF and NUL are not allowed")

    @property
    def lines(self) -> tuple[str, ...]:
        """The text lines (at least one, possibly empty)."""
        if isinstance(self.text, str):
            return (self.text,)
        return self.text or ("",)

    @property
    def is_positive(self) -> bool:
        """2xx: the command was accepted."""
        return 200 <= self.code < 300

    @property
    def is_intermediate(self) -> bool:
        """3xx: the server waits for more (354 for data, 334 for an AUTH challenge)."""
        return 300 <= self.code < 400

    @property
    def is_transient(self) -> bool:
        """4xx: refused for now; the client may try again later."""
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        """5xx: refused; the client must not retry as is."""
        return self.code >= 500

    def with_text(self, text: str | tuple[str, ...]) -> Reply:
        """The same codes with other text (e.g. naming the refused address)."""
        return Reply(self.code, self.enhanced, text)

    def to_bytes(self, *, enhanced_codes: bool = True) -> bytes:
        """The reply as sent: ``CODE-...`` continuation lines, then ``CODE ...``.

        With ``enhanced_codes`` false (ENHANCEDSTATUSCODES not offered) the
        enhanced code is left out. Kept on the reply once made: most replies are
        module constants sent again on every transaction.
        """
        made = self.__dict__.get("_wire")
        if made is not None and made[0] is enhanced_codes:
            return made[1]  # type: ignore[no-any-return]
        data = self._format(enhanced_codes)
        object.__setattr__(self, "_wire", (enhanced_codes, data))
        return data

    def _format(self, enhanced_codes: bool) -> bytes:
        prefix = f"{self.enhanced} " if (self.enhanced and enhanced_codes) else ""
        if type(self.text) is str:      # one line: what the loop below gives, directly
            return f"{self.code} {prefix}{self.text}\r\n".encode()
        lines = self.lines
        out = []
        for index, line in enumerate(lines):
            sep = " " if index == len(lines) - 1 else "-"
            text = f"{prefix}{line}"
            if text or self.code == 334:  # RFC 4954: "334" SP [base64]
                out.append(f"{self.code}{sep}{text}\r\n")
            else:
                out.append(f"{self.code}{sep}\r\n")
        return "".join(out).encode("utf-8")


@lru_cache(maxsize=64)
def greeting(hostname: str, text: str = "ESMTP Postroom") -> Reply:
    """220 service ready (RFC 5321 §4.2: the greeting starts with the server's name).
    The same reply object for the same text (a reply keeps its wire bytes once made):
    every connection sends one."""
    return Reply(220, None, f"{hostname} {text}".strip())


@lru_cache(maxsize=256)
def hello(hostname: str, client: str) -> Reply:
    """250 in answer to HELO (one object per client name, as :func:`greeting`)."""
    return Reply(250, None, f"{hostname} Hello {client}")


@lru_cache(maxsize=64)
def closing(hostname: str) -> Reply:
    """221 closing the transmission channel, in answer to QUIT (one object per host
    name, as :func:`greeting`)."""
    return Reply(221, "2.0.0", f"{hostname} closing connection")


def auth_challenge(challenge: bytes) -> Reply:
    """334 with a base64 challenge (RFC 4954 §4); empty bytes give a bare ``334 ``."""
    return Reply(334, None, base64.b64encode(challenge).decode("ascii"))


def bdat_received(size: int) -> Reply:
    """250 for a non-final BDAT chunk (RFC 3030 §2)."""
    return Reply(250, "2.0.0", f"{size} octets received")


def help_text(lines: tuple[str, ...] | str) -> Reply:
    """214 help message (RFC 5321 §4.1.1.8)."""
    return Reply(214, "2.0.0", lines)


# 2xx / 3xx
OK = Reply(250, "2.0.0", "OK")
SENDER_OK = Reply(250, "2.1.0", "Sender OK")
RECIPIENT_OK = Reply(250, "2.1.5", "Recipient OK")
MESSAGE_ACCEPTED = Reply(250, "2.0.0", "Message accepted for delivery")
RESET_OK = Reply(250, "2.0.0", "Reset OK")
CANNOT_VRFY = Reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery")
START_MAIL_INPUT = Reply(354, None, "Start mail input; end with <CRLF>.<CRLF>")
READY_TO_START_TLS = Reply(220, "2.0.0", "Ready to start TLS")
AUTH_OK = Reply(235, "2.7.0", "Authentication successful")

# 4xx
SERVICE_UNAVAILABLE = Reply(421, "4.3.2", "Service not available, closing transmission channel")
TIMEOUT = Reply(421, "4.4.2", "Timeout exceeded, closing transmission channel")
TOO_MANY_ERRORS = Reply(421, "4.7.0", "Too many errors, closing transmission channel")
LOCAL_ERROR = Reply(451, "4.3.0", "Local error in processing; try again later")
INSUFFICIENT_STORAGE = Reply(452, "4.3.1", "Insufficient system storage")
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients")
TLS_NOT_AVAILABLE = Reply(454, "4.7.0", "TLS not available due to temporary reason")
AUTH_TEMPORARY_FAILURE = Reply(454, "4.7.0", "Temporary authentication failure")
GREYLISTED = Reply(452, "4.7.1", "Greylisted; please try again later")

# 5xx: syntax and sequence (RFC 5321 §4.2.2, RFC 3463 X.5.x)
SYNTAX_ERROR = Reply(500, "5.5.2", "Syntax error")
UNRECOGNIZED_COMMAND = Reply(500, "5.5.1", "Command unrecognized")
LINE_TOO_LONG = Reply(500, "5.5.6", "Line too long")
BARE_LINE_ENDING_IN_COMMAND = Reply(500, "5.5.2", "Command lines must end with <CRLF>")
EIGHT_BIT_COMMAND = Reply(500, "5.5.2", "Command contains non-ASCII or control characters")
PARAM_SYNTAX = Reply(501, "5.5.4", "Syntax error in parameters or arguments")
BAD_SENDER_SYNTAX = Reply(501, "5.1.7", "Bad sender address syntax")
BAD_RECIPIENT_SYNTAX = Reply(501, "5.1.3", "Bad recipient address syntax")
NOT_IMPLEMENTED = Reply(502, "5.5.1", "Command not implemented")
BAD_SEQUENCE = Reply(503, "5.5.1", "Bad sequence of commands")
NEED_EHLO = Reply(503, "5.5.1", "Send EHLO first")
NEED_MAIL = Reply(503, "5.5.1", "Need MAIL command first")
NEED_RCPT = Reply(503, "5.5.1", "Need RCPT command first")
NESTED_MAIL = Reply(503, "5.5.1", "Sender already specified")
ALREADY_AUTHENTICATED = Reply(503, "5.5.1", "Already authenticated")
TLS_ALREADY_ACTIVE = Reply(503, "5.5.1", "TLS already active")
PARAM_NOT_IMPLEMENTED = Reply(504, "5.5.4", "Command parameter not implemented")
AUTH_MECHANISM_UNKNOWN = Reply(504, "5.5.4", "Unrecognized authentication mechanism")
MAIL_PARAMS_UNKNOWN = Reply(
    555, "5.5.4", "MAIL FROM/RCPT TO parameters not recognized or not implemented"
)

# 5xx: mailbox, policy, content
MAILBOX_UNAVAILABLE = Reply(550, "5.1.1", "Mailbox unavailable")
RELAY_DENIED = Reply(550, "5.7.1", "Relaying denied")
ACCESS_DENIED = Reply(550, "5.7.1", "Access denied")
USER_NOT_LOCAL = Reply(551, "5.1.6", "User not local")
SIZE_EXCEEDED = Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
MAILBOX_NAME_NOT_ALLOWED = Reply(553, "5.1.3", "Mailbox name not allowed")
NON_ASCII_SENDER = Reply(553, "5.6.7", "Non-ASCII addresses are not permitted for that sender")
NON_ASCII_RECIPIENT = Reply(
    553, "5.6.7", "Non-ASCII addresses are not permitted for that recipient"
)
TRANSACTION_FAILED = Reply(554, "5.0.0", "Transaction failed")
NO_VALID_RECIPIENTS = Reply(554, "5.5.1", "No valid recipients")
NO_SERVICE = Reply(554, "5.3.2", "No SMTP service here")
BARE_LINE_ENDING_IN_DATA = Reply(
    550, "5.5.2", "Message contains bare <CR> or <LF>; lines must end with <CRLF>"
)
DATA_LINE_TOO_LONG = Reply(500, "5.5.6", "Message line too long")
BINARYMIME_NEEDS_BDAT = Reply(503, "5.5.1", "BODY=BINARYMIME requires BDAT, not DATA")

# 5xx: authentication and TLS (RFC 4954 §6, RFC 3207 §4)
AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required")
MUST_ISSUE_STARTTLS = Reply(530, "5.7.0", "Must issue a STARTTLS command first")
AUTH_TOO_WEAK = Reply(534, "5.7.9", "Authentication mechanism is too weak")
AUTH_FAILED = Reply(535, "5.7.8", "Authentication credentials invalid")
ENCRYPTION_REQUIRED = Reply(
    538, "5.7.11", "Encryption required for requested authentication mechanism"
)
AUTH_CANCELLED = Reply(501, "5.0.0", "Authentication cancelled")
AUTH_BAD_BASE64 = Reply(501, "5.5.2", "Cannot decode base64 response")
