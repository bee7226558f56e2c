-- People from outside invited into one conversation by a link and a
-- one-time code given to them another way (read out on a call, sent by
-- text): they get an account of their own that sees only what they were
-- invited to. The link's token and the code are stored hashed.
CREATE TABLE guest_invitations (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    email TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    code_hash TEXT NOT NULL,
    invited_by TEXT NOT NULL REFERENCES users(id),
    -- Wrong codes so far; the invitation is spent at the limit.
    failed_codes BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    accepted_at_ms BIGINT,
    -- The guest's account, once the invitation is taken.
    accepted_by TEXT REFERENCES users(id)
);
CREATE INDEX guest_invitations_guest ON guest_invitations(accepted_by);
