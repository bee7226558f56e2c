-- A provider looks people up by its names for them before creating them:
-- one indexed read each, not the whole organisation.
CREATE INDEX users_scim_user_name ON users(org_id, LOWER(scim_user_name));
CREATE INDEX users_scim_external_id ON users(org_id, scim_external_id);
