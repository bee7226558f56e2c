//! Closing an account everywhere at once, when its organisation turns it
//! off (an administrator, or the identity provider through SCIM): the
//! account cannot sign in; every session and personal access token ends;
//! its live connections close; every seat it holds in a live meeting
//! leaves; every conversation takes it out (its devices read nothing
//! further, and each encrypted group removes them before it takes another
//! message); invitations it issued stop working; the SCIM tokens it made
//! are revoked; the meetings it hosts get new secrets (its host keys and
//! links stop working for it). The account itself is kept, for the audit
//! log.

use crate::conversations::ConversationError;
use crate::state::SharedState;
use conclave_proto::AccountStatus;

/// What closing an account ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Closed {
    pub sessions: u64,
    pub invitations: u64,
    pub scim_tokens: u64,
    pub meetings_rotated: u64,
}

impl Closed {
    /// For the audit log.
    pub fn describe(&self) -> String {
        format!(
            "{} sessions ended, {} invitations cancelled, {} SCIM tokens revoked, {} hosted meetings given new secrets",
            self.sessions, self.invitations, self.scim_tokens, self.meetings_rotated
        )
    }
}

pub async fn close_account(state: &SharedState, user_id: &str) -> Result<Closed, ConversationError> {
    let now = state.now_ms();
    state.store.set_user_status(user_id, AccountStatus::Deactivated).await?;
    let sessions = state.store.revoke_sessions_except(user_id, None, now).await?;
    // Connections first: nothing more reaches the account's devices while
    // the conversations catch up.
    state.conversations.live.recheck(user_id, None);
    state.live.account_closed(user_id);
    let invitations = state.store.cancel_invitations_by(user_id, now).await?;
    let scim_tokens = state.store.revoke_scim_tokens_made_by(user_id).await?;
    // The host key and links of its meetings are in the leaver's hands.
    let mut meetings_rotated = 0;
    if let Some(org_id) = state.store.user_by_id(user_id).await?.and_then(|u| u.org_id) {
        for mut meeting in state.store.list_meetings(&org_id, Some(user_id)).await? {
            crate::meetings::rotate_secrets(state, &mut meeting).await?;
            meetings_rotated += 1;
        }
    }
    let account = user_id.to_owned();
    state
        .conversations
        .account_changed(user_id, || conclave_conversation::Input::AccountDeactivated { account: account.clone() }, now)
        .await?;
    Ok(Closed { sessions, invitations, scim_tokens, meetings_rotated })
}
