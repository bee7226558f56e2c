-- Where to wake a device that is not connected (Web Push): its push
-- service's endpoint. Pushes carry no content; a woken device syncs.
CREATE TABLE push_subscriptions (
    device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    endpoint TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
