"""The SMTP connector (manual section 6.2.3): inbound server and outbound delivery.

This package holds the protocol code shared by both directions: reply codes
(:mod:`.wire`), envelope paths (:mod:`.address`), MAIL/RCPT parameters
(:mod:`.params`), message-data readers (:mod:`.data`) and the sans-I/O server
state machine (:mod:`.protocol`, events in :mod:`.events`).
"""
