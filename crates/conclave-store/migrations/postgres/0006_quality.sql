-- Call-quality samples: each participant's report every few seconds, with
-- the SFU's view, kept for the organisation's administrators until the
-- retention period ends. Figures only: no content of the meeting.
CREATE TABLE quality_samples (
    meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    participant_id BIGINT NOT NULL,
    display_name TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    level TEXT NOT NULL,
    sample_json TEXT NOT NULL
);
CREATE INDEX quality_samples_meeting ON quality_samples(meeting_id, participant_id, at_ms);
CREATE INDEX quality_samples_age ON quality_samples(at_ms);
