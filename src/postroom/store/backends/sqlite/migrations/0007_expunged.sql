-- Schema version 7: what was expunged, for IMAP QRESYNC (RFC 7162 3.2: the mod-sequence
-- of an expunge is associated with the UIDs it removed, so VANISHED can be answered).

-- One row per message removed from a folder (expunge, move out, age-based deletion),
-- written in the same transaction as the removal. Rows go with their folder.
CREATE TABLE expunged (
    folder_id INTEGER NOT NULL REFERENCES folder(id) ON DELETE CASCADE,
    uid       INTEGER NOT NULL,
    modseq    INTEGER NOT NULL,
    PRIMARY KEY (folder_id, uid)
) WITHOUT ROWID;
CREATE INDEX expunged_modseq ON expunged(folder_id, modseq);

-- Removals at or below this mod-sequence happened before expunged rows were kept (data
-- directories older than version 7): for them the store can only say "every UID below
-- UIDNEXT that is absent now". Folders created from now on have it 0: nothing unknown.
ALTER TABLE folder ADD COLUMN expunged_floor INTEGER NOT NULL DEFAULT 0;
UPDATE folder SET expunged_floor = highestmodseq;
