-- Schema version 2: successful logins per client address, kept for POP-before-SMTP
-- (SMTP relay within a time window after a POP3 login, manual 6.2.3.5) and for the
-- administrator's "last login" column.
CREATE TABLE login_record (
    mailbox_id INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
    service    TEXT NOT NULL,
    client_ip  TEXT NOT NULL,
    at         REAL NOT NULL,
    PRIMARY KEY (mailbox_id, service, client_ip)
);
CREATE INDEX login_record_ip ON login_record(client_ip, at);
ALTER TABLE mailbox ADD COLUMN last_login_at REAL;
