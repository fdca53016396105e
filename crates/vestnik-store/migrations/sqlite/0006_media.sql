-- Encrypted media: the object lives in the blob store under object_key, and
-- this row is its metadata. A row exists from the upload grant (state 'pending')
-- until the reaper or its owner deletes it, so an object never outlives the
-- row that accounts for it.
CREATE TABLE media (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    object_key TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    class TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    upload_expires_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- A server-made preview (public-channel images only).
    thumbnail_key TEXT
);
CREATE INDEX media_expires ON media (expires_at);
CREATE INDEX media_pending ON media (state, upload_expires_at);
CREATE INDEX media_conversation ON media (conversation_id);
-- Bytes held per user (pending and ready media), kept by the same
-- transactions that add and remove media rows.
CREATE TABLE media_usage (
    user_id TEXT PRIMARY KEY,
    bytes BIGINT NOT NULL
);
