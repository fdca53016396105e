-- A client whose refresh answer was lost retries with the token it sent.
-- Until the session's next rotation, that token's row keeps its successor
-- sealed under a key derived from the token itself and the server key (so
-- neither a copy of the database nor the old token alone opens it), and a
-- retry within 30 s gets the same pair again instead of revoking the device.
ALTER TABLE used_refresh_tokens ADD COLUMN successor_hash TEXT;
ALTER TABLE used_refresh_tokens ADD COLUMN successor BLOB;
-- Each rotation clears the session's older sealed successors.
CREATE INDEX used_refresh_tokens_session ON used_refresh_tokens (session_id);
-- Used tokens are pruned once they have expired.
CREATE INDEX used_refresh_tokens_used_at ON used_refresh_tokens (used_at)
