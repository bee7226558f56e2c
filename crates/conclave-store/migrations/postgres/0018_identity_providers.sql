-- Sign-in through an organisation's OpenID providers: the providers an
-- administrator connected (the client secret sealed with the server's
-- secrets key), which provider subject is which account, and sign-ins
-- under way (state, nonce and PKCE verifier until the provider answers;
-- single use, bound to the browser that started them by a hashed cookie).
CREATE TABLE identity_providers (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    allowed_domains TEXT NOT NULL,
    create_accounts BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (org_id, issuer, client_id)
);

CREATE TABLE external_identities (
    provider_id TEXT NOT NULL REFERENCES identity_providers(id),
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    created_at_ms BIGINT NOT NULL,
    last_used_at_ms BIGINT NOT NULL,
    PRIMARY KEY (provider_id, subject)
);
CREATE INDEX external_identities_user ON external_identities(user_id);

CREATE TABLE provider_sign_ins (
    state_hash TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL,
    browser_hash TEXT NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);

-- Passkeys (WebAuthn credentials), several per account, and the
-- ceremonies under way (the challenge and what the relying party expects,
-- single use, short-lived).
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    credential_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    credential TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    last_used_at_ms BIGINT
);
CREATE INDEX passkeys_user ON passkeys(user_id);

CREATE TABLE passkey_ceremonies (
    id TEXT PRIMARY KEY,
    user_id TEXT,
    purpose TEXT NOT NULL,
    state TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);

-- Groups an OpenID provider's `groups` claim named, kept apart from SCIM's:
-- a provider touches only its own, SCIM never sees them.
ALTER TABLE scim_groups ADD COLUMN provider_id TEXT;
