-- A Welcome into a conversation's group is one message for every device a
-- commit adds, and in a large channel it runs to megabytes: it is kept once,
-- and each added device's inbox message points at it until the last of
-- them has taken theirs.
CREATE TABLE group_welcomes (
    id BIGSERIAL PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    welcome TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
ALTER TABLE device_inbox ADD COLUMN welcome_id BIGINT REFERENCES group_welcomes(id) ON DELETE CASCADE;
CREATE INDEX device_inbox_welcome ON device_inbox(welcome_id);
