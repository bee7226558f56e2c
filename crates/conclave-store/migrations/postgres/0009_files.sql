-- Where an organisation's files go, when not on the server's disk: one row
-- per setting it has had, never changed in place. A file keeps the row it
-- was stored under, so choosing another bucket never strands older files.
CREATE TABLE org_storage (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    endpoint TEXT,
    region TEXT NOT NULL,
    bucket TEXT NOT NULL,
    access_key_id TEXT NOT NULL,
    secret_access_key TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
-- The setting new files use; NULL: the server's data directory.
ALTER TABLE orgs ADD COLUMN storage_id TEXT;
ALTER TABLE orgs ADD COLUMN storage_since_ms BIGINT;

-- Files shared in conversations: the server knows their size and where
-- their sealed parts are, never their key, name or type.
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    -- Whose storage holds it: the conversation's organisation's.
    org_id TEXT NOT NULL,
    storage_id TEXT REFERENCES org_storage(id),
    uploaded_by TEXT NOT NULL,
    device_id TEXT NOT NULL,
    size BIGINT NOT NULL,
    parts BIGINT NOT NULL,
    complete BIGINT NOT NULL DEFAULT 0,
    -- The message that shares it, set in the same transaction as the
    -- message is appended.
    message_seq BIGINT,
    -- Its message was deleted (or it was never shared): its objects are
    -- to be deleted, then this row.
    erasing BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX files_message ON files(conversation_id, message_seq);
CREATE INDEX files_erasing ON files(erasing, created_at_ms);

-- The parts the server holds of each file, for resuming uploads.
CREATE TABLE file_parts (
    file_id TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    part BIGINT NOT NULL,
    PRIMARY KEY (file_id, part)
);
