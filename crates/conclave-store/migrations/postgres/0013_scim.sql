-- Provisioning by an organisation's identity provider (SCIM 2.0): one
-- bearer token per organisation, hashed; the provider's names for its
-- users; and its groups with their members.
CREATE TABLE scim_tokens (
    org_id TEXT PRIMARY KEY REFERENCES orgs(id),
    token_hash TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

ALTER TABLE users ADD COLUMN scim_user_name TEXT;
ALTER TABLE users ADD COLUMN scim_external_id TEXT;
-- The user as the provider last described it (JSON, without id, meta or
-- password), so what it reads back is what it wrote.
ALTER TABLE users ADD COLUMN scim_resource TEXT;
-- Set when the provider deleted the account: it is kept (closed) for the
-- audit log and no longer shown to the provider.
ALTER TABLE users ADD COLUMN scim_deleted_at_ms BIGINT;

CREATE TABLE scim_groups (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    display_name TEXT NOT NULL,
    external_id TEXT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX scim_groups_org ON scim_groups(org_id);

CREATE TABLE scim_group_members (
    group_id TEXT NOT NULL REFERENCES scim_groups(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX scim_group_members_user ON scim_group_members(user_id);
