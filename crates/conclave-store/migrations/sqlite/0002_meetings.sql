-- Meetings and abuse reports. Invite secrets are kept as issued: the host
-- must be able to show them again; they are compared in constant time.
CREATE TABLE meetings (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    host_user_id TEXT NOT NULL REFERENCES users(id),
    title TEXT NOT NULL,
    scheduled_start_ms INTEGER,
    duration_minutes INTEGER,
    settings_json TEXT NOT NULL,
    link_secret TEXT NOT NULL UNIQUE,
    code TEXT NOT NULL UNIQUE,
    passcode TEXT,
    host_key TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX meetings_org ON meetings(org_id, created_at_ms);

CREATE TABLE reports (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    meeting_id TEXT NOT NULL,
    reporter_name TEXT NOT NULL,
    reporter_user_id TEXT,
    reported_name TEXT NOT NULL,
    reported_user_id TEXT,
    reason TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX reports_org ON reports(org_id, at_ms);

-- Who was removed from a meeting, by identity key, so that a removal
-- outlives the meeting's live room.
CREATE TABLE meeting_bans (
    meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    ban_key TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (meeting_id, ban_key)
)
