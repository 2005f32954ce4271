"""The Mail Transfer Agent (manual 3.4, 6.1): moves every message of ``MTA.inbound``
to the outgoing queues of the connectors (``SF``, ``LS``, ``SMTP``).

:mod:`.expand` (recipient expansion over the address map), :mod:`.pickup_event`,
:mod:`.archive`, :mod:`.agent` (the per-message handler), :mod:`.service` (the ``mta``
service of ``postroom serve``) and :mod:`.ndr` (non-delivery reports).
"""
