//! Meetings as things people schedule and join: their secrets, and the
//! way in (`joining.rs`). While people are in a meeting it lives in the
//! runtime of `crate::live`.

pub mod invitations;
pub mod joining;
pub mod secrets;

use crate::calendar::Method;
use crate::state::SharedState;
use conclave_store::{MeetingRow, StoreError};

/// Replaces the invite link's secret, the code, the passcode (if it has
/// one) and the host key: the old ones and unused tickets stop working at
/// once, the live meeting forgets the old host key, warnings about it being
/// posted in public are dealt with (their links spent), and invitations by
/// email are updated with the new link.
pub async fn rotate_secrets(state: &SharedState, row: &mut MeetingRow) -> Result<(), StoreError> {
    loop {
        let fresh = secrets::fresh(row.secrets.passcode.as_ref().map(|_| secrets::passcode()));
        match state.store.rotate_meeting_secrets(&row.id, &fresh).await {
            Err(StoreError::Conflict(_)) => continue,
            other => {
                other?;
                row.secrets = fresh;
                break;
            }
        }
    }
    state.store.revoke_join_tickets(&row.id).await?;
    state.store.resolve_risk_warnings(&row.id, state.now_ms()).await?;
    state.live.host_key_changed(&row.id, &row.secrets.host_key);
    if !row.invitees.is_empty() {
        row.calendar_sequence += 1;
        state.store.update_meeting(row).await?;
        invitations::send(state, row, &row.invitees, Method::Request).await;
    }
    Ok(())
}
