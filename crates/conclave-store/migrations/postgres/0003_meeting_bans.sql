-- Each removal from a meeting as a ban its owner and the organisation's
-- admins can read and lift: who it was, who removed them and when, and the
-- identity keys it bans (an account, or a guest's address).
CREATE TABLE meeting_removals (
    id TEXT PRIMARY KEY,
    meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    user_id TEXT,
    removed_by TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX meeting_removals_meeting ON meeting_removals(meeting_id, at_ms);

CREATE TABLE meeting_ban_keys (
    removal_id TEXT NOT NULL REFERENCES meeting_removals(id) ON DELETE CASCADE,
    meeting_id TEXT NOT NULL,
    ban_key TEXT NOT NULL,
    PRIMARY KEY (removal_id, ban_key)
);
CREATE INDEX meeting_ban_keys_meeting ON meeting_ban_keys(meeting_id);

-- Bans kept before: one removal per key, named by the key. Keys of
-- client-chosen device ids no longer mean anything and are dropped.
INSERT INTO meeting_removals (id, meeting_id, display_name, user_id, removed_by, at_ms)
    SELECT meeting_id || ':' || ban_key, meeting_id, ban_key, NULL, '', at_ms
    FROM meeting_bans WHERE ban_key NOT LIKE 'device:%';
INSERT INTO meeting_ban_keys (removal_id, meeting_id, ban_key)
    SELECT meeting_id || ':' || ban_key, meeting_id, ban_key
    FROM meeting_bans WHERE ban_key NOT LIKE 'device:%';
DROP TABLE meeting_bans
