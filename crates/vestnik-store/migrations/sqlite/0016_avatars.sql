-- The media row holding the account's profile picture (class 'avatar', in
-- no conversation). NULL: none. Replaced and cleared with the row, in one
-- transaction, so quota and pointer never disagree.
ALTER TABLE users ADD COLUMN avatar_media_id TEXT;
