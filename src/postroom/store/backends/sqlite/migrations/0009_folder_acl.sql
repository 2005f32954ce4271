-- Postroom store, schema version 9: access control lists of folders (RFC 4314) and
-- per-mailbox subscriptions of folders shared with it (public folders, manual 6.3.6.4).

-- One row per identifier with rights on a folder. No rows: the folder has its default
-- ACL (postroom.store.acl); a row with empty rights says "explicitly nothing", so a
-- folder whose entries were all removed does not fall back to the defaults.
CREATE TABLE folder_acl (
    folder_id  INTEGER NOT NULL REFERENCES folder(id) ON DELETE CASCADE,
    identifier TEXT NOT NULL COLLATE NOCASE,   -- a mailbox name of the post office, or "anyone"
    rights     TEXT NOT NULL,                  -- RFC 4314 letters out of "lrswipkxtea"
    PRIMARY KEY (folder_id, identifier)
);

-- Folders of another mailbox (the post office's public folders) are subscribed by
-- default; a row records that one mailbox unsubscribed from one of them.
CREATE TABLE folder_unsubscribed (
    folder_id  INTEGER NOT NULL REFERENCES folder(id) ON DELETE CASCADE,
    mailbox_id INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
    PRIMARY KEY (folder_id, mailbox_id)
);
CREATE INDEX folder_unsubscribed_mailbox ON folder_unsubscribed(mailbox_id);
