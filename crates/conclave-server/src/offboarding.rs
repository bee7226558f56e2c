//! Closing an account everywhere at once, when its organisation turns it
//! off (an administrator, or the identity provider through SCIM): the
//! account cannot sign in; every session and personal access token ends;
//! its live connections close; every seat it holds in a live meeting
//! leaves; every conversation takes it out (its devices read nothing
//! further, and each encrypted group removes them before it takes another
//! message); invitations it issued stop working. The account itself is
//! kept, for the audit log.

use crate::conversations::ConversationError;
use crate::state::SharedState;
use conclave_proto::AccountStatus;

/// What closing an account ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Closed {
    pub sessions: u64,
    pub invitations: u64,
}

impl Closed {
    /// For the audit log.
    pub fn describe(&self) -> String {
        format!("{} sessions ended, {} invitations cancelled", self.sessions, self.invitations)
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
    let account = user_id.to_owned();
    state
        .conversations
        .account_changed(user_id, || conclave_conversation::Input::AccountDeactivated { account: account.clone() }, now)
        .await?;
    Ok(Closed { sessions, invitations })
}
