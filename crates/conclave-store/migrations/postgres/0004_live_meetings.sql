-- What lets a connection into a live meeting, kept where every node sharing
-- the database can check it: join tickets (single use, short-lived) and the
-- resume tokens of seats, both as SHA-256 hashes only.
CREATE TABLE join_tickets (
    token_hash TEXT PRIMARY KEY,
    meeting_id TEXT NOT NULL,
    -- Who the ticket admits, as the server established it (JSON).
    entrant_json TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX join_tickets_meeting ON join_tickets(meeting_id);
CREATE INDEX join_tickets_expiry ON join_tickets(expires_at_ms);

CREATE TABLE resume_tokens (
    token_hash TEXT PRIMARY KEY,
    meeting_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX resume_tokens_meeting ON resume_tokens(meeting_id)
