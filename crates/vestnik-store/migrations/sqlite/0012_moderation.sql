-- Who is kept out of a group or channel: no add or invite lets them back in
-- until a manager lifts the ban.
CREATE TABLE bans (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- NULL once the banning account is deleted.
    banned_by TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX bans_user ON bans (user_id);

-- A member's invites go when they leave, are removed or lose the right to
-- invite.
CREATE INDEX invites_creator ON invites (conversation_id, created_by);
