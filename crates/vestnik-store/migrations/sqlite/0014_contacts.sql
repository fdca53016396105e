-- A user's contacts: whom they opened a direct conversation with, or added
-- by hand. Presence set to `contacts` and group adds set to `contacts` are
-- decided by the owner's list.
CREATE TABLE contacts (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    contact_user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, contact_user_id)
);
CREATE INDEX contacts_contact ON contacts (contact_user_id);

-- Who may add the account to groups and channels: everyone, contacts or
-- nobody. Anyone else's add becomes an invitation it accepts or declines.
ALTER TABLE users ADD COLUMN group_adds TEXT NOT NULL DEFAULT 'everyone';

CREATE TABLE group_invitations (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- NULL once the inviting account is deleted.
    invited_by TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX group_invitations_user ON group_invitations (user_id);
