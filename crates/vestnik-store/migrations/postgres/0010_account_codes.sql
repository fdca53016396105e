-- Codes mailed for changes to an existing account (a password reset, a new
-- e-mail address), one pending per account and purpose. Registration codes
-- stay in email_codes: they belong to an address, not yet to an account.
CREATE TABLE account_codes (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    new_email TEXT,
    expires_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    sent_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, purpose)
);
