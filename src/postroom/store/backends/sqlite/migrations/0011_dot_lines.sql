-- Postroom store, schema version 11: whether a message file has a line starting with ".".
--
-- POP3 byte-stuffs such lines in RETR and TOP (RFC 1939 §3). Finding them costs a scan
-- of the whole message (5 µs for 5 KB, as much as the rest of the RETR's own work), so
-- it is learnt with the CRLF size, in the same read, and kept with it: 1 yes, 0 no,
-- NULL not known (rows recorded before this version), which scans as before.
ALTER TABLE message_crlf_size ADD COLUMN dot_lines INTEGER;
