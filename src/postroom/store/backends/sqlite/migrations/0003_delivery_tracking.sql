-- Schema version 3: exactly-once mailbox delivery, message tracking, and a directory
-- generation counter for caches.

-- A delivery id (tracking id / recipient) recorded in the same transaction as the
-- message row: a queue entry handled twice (crash before its ack) stores nothing the
-- second time. Rows older than 14 days are removed by the store.
CREATE TABLE delivery (
    delivery_id TEXT PRIMARY KEY,
    folder_id   INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    uidvalidity INTEGER NOT NULL,
    modseq      INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    at          REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX delivery_at ON delivery(at);

-- Message tracking (manual 10.5): one row per step of a message.
CREATE TABLE tracking_event (
    id          INTEGER PRIMARY KEY,
    tracking_id TEXT NOT NULL,
    at          REAL NOT NULL,
    service     TEXT NOT NULL,
    event       TEXT NOT NULL,
    sender      TEXT NOT NULL DEFAULT '',
    recipient   TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX tracking_event_id ON tracking_event(tracking_id, at);
CREATE INDEX tracking_event_at ON tracking_event(at);

-- Every change to the directory bumps meta 'directory_generation', so that services
-- may cache lookups (address map, domains) and drop the cache when it moves.
INSERT OR IGNORE INTO meta(key, value) VALUES ('directory_generation', '0');
-- Mailbox usage columns (used_bytes, message_count) change on every delivery and are
-- not part of it.
CREATE TRIGGER postoffice_insert_generation AFTER INSERT ON postoffice BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER postoffice_update_generation AFTER UPDATE ON postoffice BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER postoffice_delete_generation AFTER DELETE ON postoffice BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER domain_insert_generation AFTER INSERT ON domain BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER domain_update_generation AFTER UPDATE ON domain BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER domain_delete_generation AFTER DELETE ON domain BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER mailbox_insert_generation AFTER INSERT ON mailbox BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER mailbox_update_generation AFTER UPDATE OF postoffice_id, name, type, quota_bytes, options ON mailbox BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER mailbox_delete_generation AFTER DELETE ON mailbox BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER address_insert_generation AFTER INSERT ON address BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER address_update_generation AFTER UPDATE ON address BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER address_delete_generation AFTER DELETE ON address BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER mail_group_insert_generation AFTER INSERT ON mail_group BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER mail_group_update_generation AFTER UPDATE ON mail_group BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER mail_group_delete_generation AFTER DELETE ON mail_group BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER group_member_insert_generation AFTER INSERT ON group_member BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER group_member_update_generation AFTER UPDATE ON group_member BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER group_member_delete_generation AFTER DELETE ON group_member BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER mail_list_insert_generation AFTER INSERT ON mail_list BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER mail_list_update_generation AFTER UPDATE ON mail_list BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER mail_list_delete_generation AFTER DELETE ON mail_list BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER list_member_insert_generation AFTER INSERT ON list_member BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER list_member_update_generation AFTER UPDATE ON list_member BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
CREATE TRIGGER list_member_delete_generation AFTER DELETE ON list_member BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'directory_generation';
END;
