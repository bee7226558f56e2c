//! Conversations as the API shows them.

use crate::live::LiveMeetings;
use crate::state::AppState;
use conclave_conversation::{Conversation, Encryption, Kind, Role};
use conclave_proto::conversation::{self as wire, ConversationMember, ConversationSummary, EntryBody};
use conclave_store::{ConversationRow, EntryRow, MembershipRow, StoreError};

pub fn kind_text(kind: Kind) -> &'static str {
    match kind {
        Kind::Direct => "direct",
        Kind::Group => "group",
        Kind::Channel => "channel",
    }
}

pub fn role_text(role: Role) -> &'static str {
    match role {
        Role::Member => "member",
        Role::Admin => "admin",
        Role::Owner => "owner",
    }
}

fn role_from_text(text: &str) -> Role {
    match text {
        "owner" => Role::Owner,
        "admin" => Role::Admin,
        _ => Role::Member,
    }
}

/// The whole conversation for one of its members (or, for a channel, one
/// of its organisation's people deciding whether to join).
pub async fn conversation_view(
    app: &AppState,
    row: &ConversationRow,
    state: &Conversation,
    viewer: &str,
) -> Result<wire::Conversation, StoreError> {
    let store = &app.store;
    let reads: std::collections::HashMap<String, i64> = store.read_positions(&row.id).await?.into_iter().collect();
    let ids: Vec<String> = state.members().keys().cloned().collect();
    let names: std::collections::HashMap<String, String> =
        store.users_by_ids(&ids).await?.into_iter().map(|u| (u.id, u.display_name)).collect();
    let mut members = Vec::with_capacity(state.members().len());
    for (account, member) in state.members() {
        let display_name = names.get(account).cloned().unwrap_or_default();
        members.push(ConversationMember {
            user_id: account.clone(),
            display_name,
            role: member.role,
            external: member.external,
            devices: member.devices.iter().cloned().collect(),
            read_seq: reads.get(account).copied().unwrap_or(0) as u64,
        });
    }
    Ok(wire::Conversation {
        id: row.id.clone(),
        org_id: row.org_id.clone(),
        kind: state.kind(),
        name: row.name.clone(),
        encrypted: state.encryption() == Encryption::Mls,
        locked: state.is_locked(),
        archived: state.is_archived(),
        last_seq: state.last_seq(),
        epoch: state.epoch(),
        role: state.member(viewer).map_or(Role::Member, |m| m.role),
        members,
        call: call_view(&app.live, state).await,
    })
}

/// The conversation's latest call while its meeting is live, with who is in it.
async fn call_view(live: &LiveMeetings, state: &Conversation) -> Option<wire::ConversationCall> {
    let call = state.latest_call()?;
    let present = live.attendance(&call.meeting_id).await?;
    Some(wire::ConversationCall {
        meeting_id: call.meeting_id.clone(),
        started_by: call.by.clone(),
        started_at_ms: call.at_ms,
        in_call: present
            .into_iter()
            .map(|a| wire::CallAttendee { user_id: a.user_id, display_name: a.display_name })
            .collect(),
    })
}

/// A line of the caller's list of conversations.
pub fn summary_view(membership: &MembershipRow, unread: i64) -> Result<ConversationSummary, StoreError> {
    let row = &membership.conversation;
    let state: Conversation = serde_json::from_str(&row.state_json)
        .map_err(|_| StoreError::Corrupt { column: "conversations.state_json", value: row.id.clone() })?;
    Ok(ConversationSummary {
        id: row.id.clone(),
        kind: state.kind(),
        name: row.name.clone(),
        encrypted: state.encryption() == Encryption::Mls,
        archived: state.is_archived(),
        last_seq: row.last_seq as u64,
        role: role_from_text(&membership.role),
        read_seq: membership.read_seq as u64,
        unread: unread as u64,
        muted: membership.muted,
    })
}

pub fn entry_from_row(row: &EntryRow) -> Result<wire::Entry, StoreError> {
    let body: EntryBody = serde_json::from_str(&row.body_json)
        .map_err(|_| StoreError::Corrupt { column: "conversation_entries.body_json", value: row.seq.to_string() })?;
    Ok(wire::Entry { seq: row.seq as u64, at_ms: row.at_ms, body })
}
