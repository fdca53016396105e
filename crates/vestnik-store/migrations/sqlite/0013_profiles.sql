-- The name an account shows to those it shares a conversation with,
-- instead of its id. NULL: none set (clients show the id).
ALTER TABLE users ADD COLUMN display_name TEXT;
