"""Inbound SMTP policy: pure decisions per stage (manual 6.2.3.3, 6.2.3.5-6.2.3.7,
6.2.3.11, 6.2.3.12, 6.2.3.16). See ``docs/smtp-policy.md`` and :mod:`.chain`."""

from postroom.connectors.smtp.policy.chain import InboundPolicy
from postroom.connectors.smtp.policy.locality import Recipient
from postroom.connectors.smtp.policy.relay import PopLogins, pop_before_smtp_allowed
from postroom.connectors.smtp.policy.session import Counters, Facts, SessionFacts
from postroom.connectors.smtp.policy.verdict import Action, Verdict

__all__ = [
    "Action",
    "Counters",
    "Facts",
    "InboundPolicy",
    "PopLogins",
    "Recipient",
    "SessionFacts",
    "Verdict",
    "pop_before_smtp_allowed",
]
