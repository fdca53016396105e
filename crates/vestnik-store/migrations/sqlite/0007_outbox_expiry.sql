-- Every outbox row is inserted and soon deleted again (on ack), so each
-- index on it costs two writes per envelope on the hot path. The expiry
-- index only served the retention reaper, which runs once a minute over
-- what is still pending and can afford to scan it.
DROP INDEX outbox_expiry;
