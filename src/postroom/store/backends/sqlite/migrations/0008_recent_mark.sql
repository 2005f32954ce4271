-- Schema version 8: the shared IMAP \Recent flag (RFC 3501 §2.3.2).

-- The highest UID of the folder already claimed as \Recent by an IMAP session: the
-- first session to SELECT the folder (or to be told of a new message while it has the
-- folder selected) raises it and sees the messages above the old value as \Recent;
-- every later session sees them without. Messages already in a folder when this
-- migration runs are not recent to anyone.
ALTER TABLE folder ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 0;
UPDATE folder SET recent_uid = uidnext - 1;
