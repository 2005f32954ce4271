"""The post office connector "SF" (manual 6.2.4): delivery into mailboxes.

It works the ``SF.outgoing`` queue that the MTA fills (groups already expanded) and
handles everything that happens at a mailbox's door: disabled mailboxes and NDRs,
the Junk E-mail folder, footers, quotas and their notices (5.3.5, 6.2.4.2),
redirection and forward-all (5.5.5, 5.5.7), auto-responders (5.5.6) and delivery
events (5.5.6). One module per concept:

* :mod:`.connector`       ``PostOfficeService`` (``postroom serve``) and its handler
* :mod:`.delivery`        one queue entry, recipient by recipient
* :mod:`.quota`           quota enumeration and usage notices
* :mod:`.redirection`     redirection and forward-all copies, loop detection
* :mod:`.autoresponder`   RFC 3834 auto-replies, once per sender per day
* :mod:`.delivery_event`  the per-mailbox external program
* :mod:`.footers`         disclaimers on mail leaving a post office
* :mod:`.notifications`   system notices (null sender, never looping)
* :mod:`.sent_marks`      what was already done once
* :mod:`.headers`, :mod:`.message_file`, :mod:`.mailbox_address`  message facts
"""
