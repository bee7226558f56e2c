//! Join tickets: what `joinMeeting` hands out and the signaling WebSocket
//! redeems. Short-lived and single-use, kept only as hashes in the database
//! (so any node sharing it redeems them, and a ticket outlives a restart of
//! the node that issued it). A resume token is its seat's: issued when the
//! seat is made, kept hashed beside the meeting it leads to, and forgotten
//! with the meeting's room.

use super::protocol::Entrant;
use conclave_auth::{OpaqueToken, TokenHash};
use conclave_store::{Store, StoreError};

/// What a ticket admits to: a meeting, and who the server found the
/// joiner to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketGrant {
    pub meeting_id: String,
    pub entrant: Entrant,
}

/// Issues a ticket for `grant`, valid until `expires_at_ms`.
pub async fn issue(
    store: &Store,
    grant: &TicketGrant,
    now_ms: i64,
    expires_at_ms: i64,
) -> Result<OpaqueToken, StoreError> {
    let token = OpaqueToken::generate_with_prefix("tk_");
    let entrant = serde_json::to_string(&grant.entrant).expect("an entrant serialises");
    store.add_join_ticket(&token.hash().0, &grant.meeting_id, &entrant, expires_at_ms, now_ms).await?;
    Ok(token)
}

/// The grant, once: a second redemption, an expired or unknown ticket finds nothing.
pub async fn redeem(store: &Store, token: &str, now_ms: i64) -> Result<Option<TicketGrant>, StoreError> {
    let Some(taken) = store.take_join_ticket(&TokenHash::of(token).0, now_ms).await? else { return Ok(None) };
    let entrant = serde_json::from_str(&taken.entrant_json)
        .map_err(|e| StoreError::Corrupt { column: "join_tickets.entrant_json", value: e.to_string() })?;
    Ok(Some(TicketGrant { meeting_id: taken.meeting_id, entrant }))
}

/// A new seat's resume token, kept (hashed) beside its meeting.
pub async fn new_resume_token(store: &Store, meeting_id: &str, now_ms: i64) -> Result<String, StoreError> {
    let token = OpaqueToken::generate_with_prefix("rs_");
    store.add_resume_token(&token.hash().0, meeting_id, now_ms).await?;
    Ok(token.into_string())
}

/// How long a resume token is kept at most. A room forgets its seats'
/// tokens when it closes; this bounds what a node that stopped without
/// closing its rooms leaves behind. A seat older than this that drops
/// joins again instead of resuming.
pub const RESUME_TOKEN_LIFETIME_MS: i64 = 24 * 60 * 60 * 1000;

/// The meeting a resume token leads to, if it is known.
pub async fn resume_meeting(store: &Store, token: &str) -> Result<Option<String>, StoreError> {
    store.resume_token_meeting(&TokenHash::of(token).0).await
}

/// Forgets resume tokens older than [`RESUME_TOKEN_LIFETIME_MS`] and
/// tickets nobody redeemed in time; how many went.
pub async fn forget_stale(store: &Store, now_ms: i64) -> Result<u64, StoreError> {
    store.forget_stale_entry_tokens(now_ms - RESUME_TOKEN_LIFETIME_MS, now_ms).await
}
