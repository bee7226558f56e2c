-- People invited to a scheduled meeting by email (their addresses), and
-- the calendar sequence of its invitation: each change sent to calendars
-- carries a higher one, so they replace the earlier event.
ALTER TABLE meetings ADD COLUMN invitees_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE meetings ADD COLUMN calendar_sequence BIGINT NOT NULL DEFAULT 0;
