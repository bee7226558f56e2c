//! Integration tests through the real HTTP API, each on SQLite and on
//! PostgreSQL.

mod support;

mod accounts;
mod at_risk;
mod attacks;
mod conversations;
mod credential_stuffing;
mod device_credentials;
mod directory;
mod dormant;
mod email;
mod files;
mod guests;
mod hardening;
mod key_material;
mod media;
mod meetings;
mod orgs;
mod passkeys;
mod push;
mod quality;
mod scim;
mod sso;
mod two_factor;
