ALTER TABLE conversations ADD COLUMN title TEXT;
ALTER TABLE conversations ADD COLUMN topic TEXT;
ALTER TABLE conversations ADD COLUMN avatar_ref TEXT;
ALTER TABLE conversations ADD COLUMN created_by TEXT;
ALTER TABLE conversations ADD COLUMN visibility TEXT;
ALTER TABLE messages ADD COLUMN msg_type BIGINT;
ALTER TABLE messages ADD COLUMN body TEXT;
CREATE TABLE invites (
    token_hash TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    created_by TEXT NOT NULL,
    uses BIGINT NOT NULL DEFAULT 0,
    max_uses BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX invites_conversation ON invites (conversation_id);
CREATE INDEX messages_conversation_seq ON messages (conversation_id, seq);
CREATE INDEX members_role ON members (conversation_id, role)
