-- Schema version 4: account lockout shared by every service (manual 5.8.2, "Lock out
-- user for one hour after N failed attempts"), and the CRLF size of message files.

-- One row per failed login of a known mailbox, from any service in any process.
-- Rows older than an hour no longer count and are removed as new failures arrive.
CREATE TABLE auth_failure (
    mailbox_id INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
    at         REAL NOT NULL,
    service    TEXT NOT NULL,
    client_ip  TEXT NOT NULL
);
CREATE INDEX auth_failure_mailbox ON auth_failure(mailbox_id, at);

-- A mailbox locked out until ``until`` (epoch seconds).
CREATE TABLE auth_lockout (
    mailbox_id INTEGER PRIMARY KEY REFERENCES mailbox(id) ON DELETE CASCADE,
    until      REAL NOT NULL,
    at         REAL NOT NULL
);

-- Message files are kept exactly as received; POP3 (and IMAP RFC822.SIZE) must announce
-- the size with CRLF line ends. Computed once per message file (paths are never reused)
-- and kept here; a row whose file is gone is harmless and removed with its message.
CREATE TABLE message_crlf_size (
    path   TEXT PRIMARY KEY,
    octets INTEGER NOT NULL
) WITHOUT ROWID;
