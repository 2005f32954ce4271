-- Schema version 6: tables two modules first created on their own.

-- DKIM keys kept after a rotation (manual 5.4.4), until the administrator deletes them,
-- so the DNS record can be switched at leisure. The private key is sealed under the
-- server key.
CREATE TABLE IF NOT EXISTS dkim_retired_selector (
    domain      TEXT NOT NULL,
    selector    TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    key_size    INTEGER NOT NULL,
    public_key  TEXT NOT NULL,
    private_key BLOB NOT NULL,
    test_mode   INTEGER NOT NULL,
    notes       TEXT NOT NULL,
    retired_at  REAL NOT NULL,
    PRIMARY KEY (domain, selector)
);

-- The post office connector's "send once" marks (auto-replies per sender and day,
-- quota notices per threshold crossing, NDRs and redirected copies per recipient).
CREATE TABLE IF NOT EXISTS postoffice_sent_mark (
    key TEXT PRIMARY KEY,
    at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS postoffice_sent_mark_at ON postoffice_sent_mark (at);
