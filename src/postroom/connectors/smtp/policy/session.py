"""The facts a policy decides on: what the server knows about a session, and DNS answers.

The server fills a :class:`SessionFacts` as the dialogue goes (HELO name, TLS, the
authenticated mailbox, the accepted sender, counters) and passes network answers it
looked up with ``net/`` in a :class:`Facts`; checks never query DNS themselves, so
they stay pure and testable with tables.

Untrusted input: the HELO name, the envelope paths and the reverse DNS names all come
from the client or the client's DNS; the client IP comes from the socket.
IPv4-mapped IPv6 addresses (``::ffff:192.0.2.1``, what a dual-stack socket reports
for IPv4 clients) are turned into plain IPv4 here, so an access list written for
``192.0.2.*`` also matches them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from postroom.connectors.smtp.address import Path

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Listener = Literal["mx", "submission", "smtps"]
LISTENERS: tuple[Listener, ...] = ("mx", "submission", "smtps")


def client_address(value: str | IPAddress) -> IPAddress:
    """Parse an IP address; IPv4-mapped IPv6 becomes IPv4. ValueError if not an IP."""
    if isinstance(value, ipaddress.IPv6Address):
        return value if value.ipv4_mapped is None else value.ipv4_mapped
    if isinstance(value, ipaddress.IPv4Address):
        return value
    return _parsed(str(value))


@lru_cache(maxsize=4096)
def _parsed(text: str) -> IPAddress:
    """Cached: every connection parses its client's and our address, and
    ``ipaddress`` takes several microseconds for it (addresses are immutable)."""
    ip = ipaddress.ip_address(text.strip())
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def client_ip_text(value: str) -> str:
    """The client's address as the logs and records show it (IPv4-mapped IPv6 as IPv4);
    anything that is not an IP as it came (a UNIX socket, a test double)."""
    try:
        return str(client_address(value))
    except ValueError:
        return value


@dataclass
class Counters:
    """Per-session counts the server keeps up to date."""

    recipients: int = 0        # recipients accepted in the current transaction
    failed_commands: int = 0   # refused commands and recipients in this session
    messages: int = 0          # messages accepted in this session


@dataclass
class SessionFacts:
    """One SMTP session as the policy sees it.

    ``authenticated`` is ``(postoffice, mailbox)`` after a successful AUTH; a client
    that authenticated with the fixed relay credential (manual 6.2.3.5, "Authenticate
    against the following username/password") is ``("", username)``.
    ``ptr_names`` is ``None`` when reverse DNS was not looked up, ``()`` when the IP
    has no PTR record; ``ptr_lookup_failed`` marks a temporary DNS failure.
    ``mail_from`` is the sender of the current transaction once MAIL was accepted.
    ``server_ip`` is the local address the client connected to (for domain literals).
    """

    client_ip: IPAddress
    listener: Listener = "mx"
    server_ip: IPAddress | None = None
    ptr_names: tuple[str, ...] | None = None
    ptr_lookup_failed: bool = False
    helo: str | None = None
    tls: bool = False
    authenticated: tuple[str, str] | None = None
    mail_from: Path | None = None
    country: str | None = None
    counters: Counters = field(default_factory=Counters)

    def __post_init__(self) -> None:
        self.client_ip = client_address(self.client_ip)
        if self.server_ip is not None:
            self.server_ip = client_address(self.server_ip)
        if self.listener not in LISTENERS:
            raise ValueError(f"listener: expected one of {', '.join(LISTENERS)}, "
                             f"got {self.listener!r}")

    @property
    def is_authenticated(self) -> bool:
        return self.authenticated is not None

    def new_transaction(self) -> None:
        """After RSET or a finished message: forget the sender and recipient count."""
        self.mail_from = None
        self.counters.recipients = 0


@dataclass(frozen=True)
class Facts:
    """Answers the server looked up for this stage.

    ``sender_domain_resolves``: True/False from an MX/A/AAAA lookup of the sender's
    domain, ``None`` for a temporary DNS failure (or no lookup made; the check then
    answers 451 4.4.3, failing closed and visibly). Ask
    :meth:`InboundPolicy.wants_sender_domain_lookup` whether a lookup is needed.
    ``last_pop_login_at``: time of the last POP3 login from the client IP (the
    store's ``login_record`` table), for POP-before-SMTP.
    """

    sender_domain_resolves: bool | None = None
    last_pop_login_at: float | None = None
