-- What an identity provider's group means in the organisation: a role its
-- members get (admin or member), and a team channel they are put in.
ALTER TABLE scim_groups ADD COLUMN org_role TEXT;
ALTER TABLE scim_groups ADD COLUMN channel_id TEXT;
