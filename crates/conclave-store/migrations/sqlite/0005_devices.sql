-- Accounts' E2EE devices: each browser or app key, registered once and
-- vouched for in every meeting and conversation of its account, until the
-- account revokes it. Public keys only.
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    signature_key TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    last_used_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER,
    UNIQUE (user_id, signature_key)
);
CREATE INDEX devices_user ON devices(user_id, created_at_ms)
