"""The IMAP4rev1/IMAP4rev2 service (manual 6.3.3; RFC 3501, RFC 9051 and extensions)."""
