-- Blocks are read both ways (whom I blocked, who blocked me): typing, read
-- markers, presence and group adds all check them.
CREATE INDEX blocks_blocked_user ON blocks (blocked_user_id);

-- Who may find the account by its e-mail address: everyone or nobody.
ALTER TABLE users ADD COLUMN find_by_email TEXT NOT NULL DEFAULT 'everyone';
