-- Postroom store, schema version 10: the leases of claimed queue entries, by expiry.
--
-- A claim takes the due ready entries of a queue and the claimed ones whose lease ran
-- out. Through queue_ready alone the second half read every claimed entry of the queue
-- (hundreds while the delivery agent holds its connections' backlogs) at every claim;
-- this partial index holds only claimed entries, ordered by when their lease ends.
CREATE INDEX queue_leases ON queue_entry(queue, claim_expires) WHERE state = 'claimed';
