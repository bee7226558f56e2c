-- An organisation that keeps its files in its own bucket keeps its
-- messages' ciphertext there too: past a while, a conversation's entries
-- move to the bucket in segments (one object of up to a few hundred
-- entries each), and their rows keep the order, the references and the
-- segment's id, with an empty body. A segment holding an entry erased
-- since is stale: it is written again without it, and the old object
-- deleted (erasing, until it is).
CREATE TABLE message_segments (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL,
    storage_id TEXT NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    stale BIGINT NOT NULL DEFAULT 0,
    erasing BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX message_segments_tidy ON message_segments(stale, erasing);
-- Segments cover consecutive ranges of a conversation's log, the next
-- after `segmented_through`: no index over entries is needed.
ALTER TABLE conversation_entries ADD COLUMN segment_id TEXT;
ALTER TABLE conversations ADD COLUMN segmented_through BIGINT NOT NULL DEFAULT 0;
