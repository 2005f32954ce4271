-- Postroom store, schema version 1.
-- Directory (chapter 5 of the manual), settings, mailbox folders and messages, queues.
-- Per-object options are JSON documents validated by postroom.settings option sets;
-- columns exist only for what is queried, joined or updated under concurrency.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE setting (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,              -- JSON
    changed_at REAL NOT NULL
);

CREATE TABLE postoffice (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    options    TEXT NOT NULL DEFAULT '{}', -- JSON
    created_at REAL NOT NULL
);

CREATE TABLE domain (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE COLLATE NOCASE,   -- ASCII (punycode) form
    postoffice_id INTEGER NOT NULL REFERENCES postoffice(id) ON DELETE CASCADE,
    options       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX domain_postoffice ON domain(postoffice_id);

CREATE TABLE mailbox (
    id              INTEGER PRIMARY KEY,
    postoffice_id   INTEGER NOT NULL REFERENCES postoffice(id) ON DELETE CASCADE,
    name            TEXT NOT NULL COLLATE NOCASE,
    type            TEXT NOT NULL DEFAULT 'USER',  -- USER | ADMIN | SYSADMIN (manual 5.5.3)
    password_hash   TEXT,                  -- argon2id
    password_secret BLOB,                  -- AES-GCM under the server key, for CRAM-MD5/APOP
    quota_bytes     INTEGER,               -- NULL: unlimited
    used_bytes      INTEGER NOT NULL DEFAULT 0,
    message_count   INTEGER NOT NULL DEFAULT 0,
    options         TEXT NOT NULL DEFAULT '{}',
    created_at      REAL NOT NULL,
    UNIQUE (postoffice_id, name)
);

-- The address map: [SMTP:local@domain] -> target such as [SF:po/mailbox] or [LS:po/list].
CREATE TABLE address (
    id            INTEGER PRIMARY KEY,
    address       TEXT NOT NULL UNIQUE COLLATE NOCASE,   -- e.g. [SMTP:bob@example.com]
    target        TEXT NOT NULL,
    postoffice_id INTEGER NOT NULL REFERENCES postoffice(id) ON DELETE CASCADE
);
CREATE INDEX address_target ON address(target);
CREATE INDEX address_postoffice ON address(postoffice_id);

CREATE TABLE mail_group (
    id            INTEGER PRIMARY KEY,
    postoffice_id INTEGER NOT NULL REFERENCES postoffice(id) ON DELETE CASCADE,
    name          TEXT NOT NULL COLLATE NOCASE,
    options       TEXT NOT NULL DEFAULT '{}',
    UNIQUE (postoffice_id, name)
);

CREATE TABLE group_member (
    group_id INTEGER NOT NULL REFERENCES mail_group(id) ON DELETE CASCADE,
    member   TEXT NOT NULL COLLATE NOCASE,               -- connector address
    PRIMARY KEY (group_id, member)
);

CREATE TABLE mail_list (
    id            INTEGER PRIMARY KEY,
    postoffice_id INTEGER NOT NULL REFERENCES postoffice(id) ON DELETE CASCADE,
    name          TEXT NOT NULL COLLATE NOCASE,
    options       TEXT NOT NULL DEFAULT '{}',
    UNIQUE (postoffice_id, name)
);

CREATE TABLE list_member (
    list_id INTEGER NOT NULL REFERENCES mail_list(id) ON DELETE CASCADE,
    address TEXT NOT NULL COLLATE NOCASE,
    options TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (list_id, address)
);

CREATE TABLE pop_retrieval (
    id              INTEGER PRIMARY KEY,
    mailbox_id      INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
    options         TEXT NOT NULL DEFAULT '{}',          -- host, port, user, ssl, leave copy ...
    password_secret BLOB
);
CREATE INDEX pop_retrieval_mailbox ON pop_retrieval(mailbox_id);

-- Mailbox folders and messages (message bodies are .eml files under DIR/messages).
CREATE TABLE folder (
    id            INTEGER PRIMARY KEY,
    mailbox_id    INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    uidvalidity   INTEGER NOT NULL,
    uidnext       INTEGER NOT NULL DEFAULT 1,
    highestmodseq INTEGER NOT NULL DEFAULT 1,
    subscribed    INTEGER NOT NULL DEFAULT 1,
    special_use   TEXT,
    UNIQUE (mailbox_id, name)
);

CREATE TABLE message (
    id            INTEGER PRIMARY KEY,
    folder_id     INTEGER NOT NULL REFERENCES folder(id) ON DELETE CASCADE,
    uid           INTEGER NOT NULL,
    path          TEXT NOT NULL,                          -- relative to DIR/messages
    size          INTEGER NOT NULL,
    internal_date REAL NOT NULL,
    flags         TEXT NOT NULL DEFAULT '',               -- space-separated, sorted
    modseq        INTEGER NOT NULL,
    UNIQUE (folder_id, uid)
);
CREATE INDEX message_modseq ON message(folder_id, modseq);
CREATE INDEX message_date ON message(internal_date);

-- Connector queues. Bodies live in append-only segment files under DIR/queue.
CREATE TABLE queue_entry (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,    -- never reused: a stale ack
                                                          -- must not hit a newer entry
    queue           TEXT NOT NULL,                        -- e.g. SMTP.inbound, SF.outgoing
    state           TEXT NOT NULL DEFAULT 'ready',        -- ready|claimed|failed|bad|quarantine
                                                          -- (acked entries are deleted)
    tracking_id     TEXT NOT NULL UNIQUE,
    sender          TEXT NOT NULL,
    recipients      TEXT NOT NULL,                        -- JSON list of connector addresses
    client_ip       TEXT,
    auth_user       TEXT,
    envelope        TEXT NOT NULL DEFAULT '{}',           -- JSON: helo, DSN parameters, ...
    segment         TEXT NOT NULL,                        -- body file, relative to DIR
    body_offset     INTEGER NOT NULL,
    body_length     INTEGER NOT NULL,
    created_at      REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    claimed_by      TEXT,
    claim_expires   REAL,
    last_error      TEXT
);
CREATE INDEX queue_ready ON queue_entry(queue, state, next_attempt_at);
CREATE INDEX queue_segment ON queue_entry(segment);
