-- Accounts a meeting was started for (the members of the conversation a
-- call came from): a live meeting lets them in without its waiting room.
ALTER TABLE meetings ADD COLUMN invited_json TEXT NOT NULL DEFAULT '[]';
