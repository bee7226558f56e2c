-- The at-risk meeting notifier: public sources each organisation watches
-- (polled politely: their validators, and a backoff after failures), and
-- the warnings sent to meetings' owners, each with a single-use link
-- (hashed) that rotates the meeting's secrets.
CREATE TABLE watch_sources (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    url TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    failures BIGINT NOT NULL DEFAULT 0,
    next_poll_at_ms BIGINT NOT NULL DEFAULT 0,
    last_polled_at_ms BIGINT,
    last_error TEXT,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (org_id, url)
);

CREATE TABLE risk_warnings (
    id TEXT PRIMARY KEY,
    meeting_id TEXT NOT NULL,
    owner_id TEXT NOT NULL REFERENCES users(id),
    org_id TEXT NOT NULL,
    source_url TEXT NOT NULL,
    post_url TEXT NOT NULL,
    score BIGINT NOT NULL,
    reasons TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL,
    used_at_ms BIGINT,
    UNIQUE (meeting_id, post_url)
);
CREATE INDEX risk_warnings_owner ON risk_warnings(owner_id);
