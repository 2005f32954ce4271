-- Schema version 5: enqueue-once keys. A producer that must not queue the same thing
-- twice after a crash (the drop folder: a file is removed only after its message is
-- committed) names it with a key, recorded in the same transaction as the queue entry.
CREATE TABLE enqueue_once (
    key         TEXT PRIMARY KEY,
    tracking_id TEXT NOT NULL,
    at          REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX enqueue_once_at ON enqueue_once(at);
