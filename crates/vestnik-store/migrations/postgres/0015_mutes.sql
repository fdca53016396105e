-- A member muted by a manager: their sends are refused until then.
ALTER TABLE members ADD COLUMN muted_until BIGINT;
