"""What a policy check answers: a :class:`Verdict` (accept, or a reply and what to do).

STYLE.md "Policy as data, evaluated at stages": a check never writes to the socket. It
returns ``None`` (no objection) or a :class:`Verdict`; the server sends the reply,
logs the short ``reason`` tag (``"relay-denied"``, ``"blocked-sender"``, ``"spoofing"``
...) and performs the action. Accepting verdicts may carry ``flags`` for later stages
(``"no-ptr"`` for the spam filter, ``"add-ip-to-deny-list"`` for the server, which
owns the settings write) and, at RCPT, the address map ``target`` of the recipient.

Reply codes follow RFC 5321 §4.2.2/§4.2.3 and the enhanced codes of RFC 3463, RFC
7372 (``5.7.25`` reverse DNS) and RFC 4954 (``5.7.0``/``5.7.11``). The replies shared
with the protocol core live in :mod:`postroom.connectors.smtp.wire`; the ones only
the policy gives are named here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache

from postroom.connectors.smtp import wire
from postroom.connectors.smtp.wire import Reply


class Action(Enum):
    """What the server does with a verdict."""

    ACCEPT = "accept"
    REPLY = "reply"                    # send the (5xx) reply, the session goes on
    TEMPORARY = "temporary"            # send the (4xx) reply, the session goes on
    REPLY_AND_DROP = "reply_and_drop"  # send the reply, then close the connection


# Flags an accepting verdict may carry.
FLAG_NO_PTR = "no-ptr"                      # client IP has no PTR: tell the spam filter
FLAG_CATCHALL = "catchall"                  # recipient reached through a domain catch-all
FLAG_RELAY = "relay"                        # recipient is remote and may be relayed
FLAG_DENY_IP = "add-ip-to-deny-list"        # server adds the client IP to the access list
FLAG_ADD_MESSAGE_ID = "add-message-id"      # authenticated sender, header missing (6.2.3.7)
FLAG_ADD_DATE = "add-date"


@dataclass(frozen=True)
class Verdict:
    """Accept, or refuse with ``reply``; ``reason`` is a short tag for logs.

    ``detail`` says more for the log line (which relay trick, which list entry);
    it is never sent to the client.
    """

    action: Action
    reply: Reply | None = None
    reason: str = ""
    detail: str = ""
    flags: frozenset[str] = field(default_factory=frozenset)
    target: str | None = None

    @classmethod
    def accept(cls, *, flags: Iterable[str] = (), target: str | None = None,
               reason: str = "") -> Verdict:
        return _accepting(cls, frozenset(flags), target, reason)

    @classmethod
    def refuse(cls, reply: Reply, reason: str, *, detail: str = "", drop: bool = False,
               flags: Iterable[str] = ()) -> Verdict:
        """A refusal; 4xx replies become :attr:`Action.TEMPORARY` unless ``drop``."""
        if reply.is_positive or reply.is_intermediate:
            raise ValueError(f"a refusal needs a 4xx or 5xx reply, got {reply.code}")
        if drop:
            action = Action.REPLY_AND_DROP
        elif reply.is_transient:
            action = Action.TEMPORARY
        else:
            action = Action.REPLY
        return cls(action, reply, reason, detail, frozenset(flags))

    @property
    def accepted(self) -> bool:
        return self.action is Action.ACCEPT

    @property
    def drop(self) -> bool:
        return self.action is Action.REPLY_AND_DROP

    def with_flags(self, flags: Iterable[str]) -> Verdict:
        return Verdict(self.action, self.reply, self.reason, self.detail,
                       self.flags | frozenset(flags), self.target)


@lru_cache(maxsize=1024)
def _accepting(cls: type[Verdict], flags: frozenset[str], target: str | None,
               reason: str) -> Verdict:
    """One shared accept per combination: every recipient of every message is accepted
    with one of a few flag sets and address map targets, and making a frozen verdict
    cost more than finding it (verdicts never change, so sharing them is safe)."""
    return cls(Action.ACCEPT, None, reason, "", flags, target)


ACCEPT = Verdict.accept()

# Connection stage
IP_DENIED = Reply(554, "5.7.1", "Access denied")
TOO_MANY_CONNECTIONS = Reply(421, "4.7.0", "Too many connections; try again later")
# HELO stage
HELO_BLOCKED = Reply(554, "5.7.1", "Access denied")
HELO_SYNTAX = Reply(501, "5.5.4", "Invalid address literal in HELO/EHLO")
HELO_IMPERSONATION = Reply(550, "5.7.1", "You are not me")
# MAIL stage
SENDER_BLOCKED = Reply(553, "5.7.1", "Sender address not allowed")
SPOOFING = Reply(553, "5.7.1", "Sender address not allowed for this connection")
SENDER_DOMAIN_UNRESOLVABLE = Reply(550, "5.1.8", "Sender address domain does not resolve")
DNS_TEMPORARY = Reply(451, "4.4.3", "Temporary DNS failure; try again later")
NO_PTR = Reply(550, "5.7.25", "Client IP address has no reverse DNS (PTR) record")
# RCPT stage
UNKNOWN_USER = Reply(550, "5.1.1", "User unknown")
RELAY_DENIED = wire.RELAY_DENIED
BAD_RECIPIENT = Reply(553, "5.1.3", "Recipient address not allowed")
BAD_DESTINATION = Reply(550, "5.1.2", "Destination address not accepted")
DOMAIN_BLACKLISTED = Reply(550, "5.7.1", "Sender domain refused by the recipient's domain")
REPORTED_IP = Reply(550, "5.7.1", "Client IP address reported as a spam source")
TOO_MANY_RECIPIENTS = wire.TOO_MANY_RECIPIENTS
HOURLY_LIMIT = Reply(450, "4.7.1", "Hourly recipient limit reached; try again later")
AUTH_REQUIRED = wire.AUTH_REQUIRED
# AUTH
ENCRYPTION_REQUIRED = wire.ENCRYPTION_REQUIRED
MECHANISM_DISABLED = wire.AUTH_MECHANISM_UNKNOWN
# Any stage
TOO_MANY_ERRORS = wire.TOO_MANY_ERRORS
SIZE_EXCEEDED = wire.SIZE_EXCEEDED
