"""The POP3 service (manual 6.3.4; RFC 1939, 2449, 2595, 3206, 5034)."""
