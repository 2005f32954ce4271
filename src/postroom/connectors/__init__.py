"""Connectors: the components that move messages in and out of Postroom's queues.

Manual chapter 3 (architecture): each connector puts messages into its inbound
queue and works only its own outgoing queue; the MTA moves messages between them.
"""
