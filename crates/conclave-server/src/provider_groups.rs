//! What the identity provider's groups mean in the organisation (C2): an
//! administrator maps a group to a role (its members are admins, or
//! members) and to a team channel (its members are put in it and taken
//! out of it). Whenever a group's members or its meaning change, the
//! people concerned are brought in line; owners are never made or unmade
//! by a group.

use crate::conversations::ConversationError;
use crate::state::{Audit, SharedState};
use conclave_conversation::Input;
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::{AccountStatus, OrgRole};
use conclave_store::ScimGroupRow;
use std::collections::BTreeSet;

/// Brings people in line after a group went from `before` to `after`
/// (`None`: it did not exist, or no longer does).
pub async fn group_changed(
    state: &SharedState,
    org_id: &str,
    before: Option<&ScimGroupRow>,
    after: Option<&ScimGroupRow>,
) -> Result<(), ConversationError> {
    let members = |g: Option<&ScimGroupRow>| -> BTreeSet<String> {
        g.map(|g| g.members.iter().cloned().collect()).unwrap_or_default()
    };
    let (was, is) = (members(before), members(after));
    let role = |g: Option<&ScimGroupRow>| g.and_then(|g| g.role);
    let channel = |g: Option<&ScimGroupRow>| g.and_then(|g| g.channel_id.clone());
    let name = after.or(before).map(|g| g.display_name.clone()).unwrap_or_default();

    // Roles: everyone whose groups' meaning for them may have changed.
    let affected: BTreeSet<&String> = if role(before) != role(after) {
        was.union(&is).collect()
    } else if role(after).is_some() {
        was.symmetric_difference(&is).collect()
    } else {
        BTreeSet::new()
    };
    if !affected.is_empty() {
        let groups = state.store.scim_groups(org_id).await?;
        for user_id in affected {
            settle_role(state, org_id, user_id, &groups).await?;
        }
    }

    // Channels: in with the group, out with it.
    let now = state.now_ms();
    if channel(before) == channel(after) {
        if let Some(channel_id) = channel(after) {
            for user_id in is.difference(&was) {
                assign(state, &channel_id, user_id, &name, now).await?;
            }
            for user_id in was.difference(&is) {
                unassign(state, &channel_id, user_id, &name, now).await?;
            }
        }
    } else {
        if let Some(old) = channel(before) {
            for user_id in &was {
                unassign(state, &old, user_id, &name, now).await?;
            }
        }
        if let Some(new) = channel(after) {
            for user_id in &is {
                assign(state, &new, user_id, &name, now).await?;
            }
        }
    }
    Ok(())
}

/// The groups an identity provider named for someone at sign-in (OpenID
/// Connect's `groups` claim): they are put in that provider's groups of
/// those names (made when new, for an administrator to give a meaning) and
/// taken out of its others, and their roles and channels follow.
pub async fn claimed_by_provider(
    state: &SharedState,
    org_id: &str,
    provider_id: &str,
    user_id: &str,
    names: &[String],
) -> Result<(), ConversationError> {
    let now = state.now_ms();
    // Only the groups this provider named: another provider's, or SCIM's,
    // are not its to fill or empty.
    let mut groups = state.store.scim_groups(org_id).await?;
    groups.retain(|g| g.provider_id.as_deref() == Some(provider_id));
    let claimed: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    for group in &groups {
        let named = claimed.contains(group.display_name.as_str());
        let member = group.members.iter().any(|m| m == user_id);
        if named == member {
            continue;
        }
        let mut members = group.members.clone();
        if named {
            members.push(user_id.to_owned());
            members.sort();
        } else {
            members.retain(|m| m != user_id);
        }
        state
            .store
            .replace_scim_group(org_id, &group.id, &group.display_name, group.external_id.as_deref(), &members, now)
            .await?;
        let after = conclave_store::ScimGroupRow { members, ..group.clone() };
        group_changed(state, org_id, Some(group), Some(&after)).await?;
    }
    let known: BTreeSet<&str> = groups.iter().map(|g| g.display_name.as_str()).collect();
    for name in claimed.difference(&known) {
        let members = vec![user_id.to_owned()];
        let created = state.store.create_claimed_group(org_id, provider_id, name, &members, now).await?;
        group_changed(state, org_id, None, Some(&created)).await?;
    }
    Ok(())
}

/// An account opened again (reactivated, or provisioned anew) goes back to
/// the channels its groups mean and gets the role they give.
pub async fn account_returned(state: &SharedState, org_id: &str, user_id: &str) -> Result<(), ConversationError> {
    let now = state.now_ms();
    let groups = state.store.scim_groups(org_id).await?;
    for group in &groups {
        if !group.members.iter().any(|m| m == user_id) {
            continue;
        }
        if let Some(channel_id) = &group.channel_id {
            assign(state, channel_id, user_id, &group.display_name, now).await?;
        }
    }
    settle_role(state, org_id, user_id, &groups).await
}

/// Gives `user_id` the role its groups mean: admin when any of them says
/// admin, else member — when any of its groups speaks of roles at all.
async fn settle_role(
    state: &SharedState,
    org_id: &str,
    user_id: &str,
    groups: &[ScimGroupRow],
) -> Result<(), ConversationError> {
    let Some(user) = state.store.user_by_id(user_id).await? else { return Ok(()) };
    if user.org_id.as_deref() != Some(org_id) || user.role == Some(OrgRole::Owner) {
        return Ok(());
    }
    let roles: Vec<OrgRole> =
        groups.iter().filter(|g| g.members.iter().any(|m| m == user_id)).filter_map(|g| g.role).collect();
    let was_governed = user.role == Some(OrgRole::Admin) || !roles.is_empty();
    if !was_governed {
        return Ok(());
    }
    let target = if roles.contains(&OrgRole::Admin) { OrgRole::Admin } else { OrgRole::Member };
    if user.role != Some(target) {
        state.store.set_user_role(user_id, target).await?;
        let detail = format!("{} by the identity provider's groups", target.as_str());
        let event = Audit::new(AuditAction::OrgMemberRole, AuditOutcome::Success).org(org_id).target(user_id);
        state.audit(event.detail(&detail)).await?;
    }
    Ok(())
}

async fn assign(
    state: &SharedState,
    channel_id: &str,
    user_id: &str,
    group: &str,
    now: i64,
) -> Result<(), ConversationError> {
    let Some(user) = state.store.user_by_id(user_id).await? else { return Ok(()) };
    if user.status != AccountStatus::Active {
        return Ok(());
    }
    let newcomer = state.conversations.newcomer(user_id, false).await?;
    let group = group.to_owned();
    let input = move |_: &conclave_conversation::Conversation| {
        Ok(Input::Assign { newcomer: newcomer.clone(), group: group.clone() })
    };
    tolerate(channel_id, state.conversations.change(channel_id, now, input).await.map(|_| ()))
}

async fn unassign(
    state: &SharedState,
    channel_id: &str,
    user_id: &str,
    group: &str,
    now: i64,
) -> Result<(), ConversationError> {
    let (account, group) = (user_id.to_owned(), group.to_owned());
    let input = move |_: &conclave_conversation::Conversation| {
        Ok(Input::Unassign { account: account.clone(), group: group.clone() })
    };
    tolerate(channel_id, state.conversations.change(channel_id, now, input).await.map(|_| ()))
}

/// A channel that is gone or archived does not stop the provider's
/// request: the rest of what it asked still happens, and the refusal is
/// logged for the administrators.
fn tolerate(channel_id: &str, result: Result<(), ConversationError>) -> Result<(), ConversationError> {
    match result {
        Err(err @ (ConversationError::NotFound | ConversationError::Refused(_))) => {
            tracing::warn!(channel = channel_id, error = %err, "a group's channel did not take a change");
            Ok(())
        }
        other => other,
    }
}
