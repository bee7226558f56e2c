//! What someone may find in their organisation to start talking: its
//! people (for a direct message or to add to a group) and its channels (the
//! channel browser). A guest, in no organisation, finds nothing.

use axum::extract::{Query, State};
use conclave_conversation::Encryption;
use conclave_proto::conversation::{ChannelList, ChannelListing, PeopleList, Person, MAX_PEOPLE_FOUND};
use conclave_store::StoreError;
use serde::Deserialize;

use super::conversations::org_of;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Authed};
use crate::state::SharedState;

/// Longest query, in characters.
const MAX_QUERY_CHARS: usize = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PeopleQuery {
    /// Part of a name or an address; empty lists the first people by name.
    #[serde(default)]
    q: String,
}

/// People of the caller's organisation, by name.
#[utoipa::path(get, path = "/api/v1/people", operation_id = "findPeople", tag = "conversations",
    params(PeopleQuery),
    responses((status = 200, description = "Active people whose name or address contains the query", body = PeopleList),
        (status = 403, description = "Not in an organisation", body = conclave_proto::Problem),
        (status = 422, description = "A query too long", body = conclave_proto::Problem)))]
pub async fn people(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Query(query): Query<PeopleQuery>,
) -> ApiResult<ApiJson<PeopleList>> {
    let org_id = org_of(&current)?;
    let q = query.q.trim();
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::field("q", format!("at most {MAX_QUERY_CHARS} characters")));
    }
    let found = state.store.search_org_members(org_id, q, MAX_PEOPLE_FOUND as i64 + 1).await?;
    let people = found
        .into_iter()
        .filter(|u| u.id != current.user.id)
        .take(MAX_PEOPLE_FOUND)
        .map(|u| Person { user_id: u.id, display_name: u.display_name, email: u.email })
        .collect();
    Ok(ApiJson(PeopleList { people }))
}

/// The channels of the caller's organisation, joined or not.
#[utoipa::path(get, path = "/api/v1/channels", operation_id = "listChannels", tag = "conversations",
    responses((status = 200, description = "The organisation's channels, by name", body = ChannelList),
        (status = 403, description = "Not in an organisation", body = conclave_proto::Problem)))]
pub async fn channels(State(state): State<SharedState>, Authed(current): Authed) -> ApiResult<ApiJson<ChannelList>> {
    let org_id = org_of(&current)?;
    let mut channels = Vec::new();
    for row in state.store.org_channels(org_id).await? {
        let conversation: conclave_conversation::Conversation = serde_json::from_str(&row.state_json)
            .map_err(|_| StoreError::Corrupt { column: "conversations.state_json", value: row.id.clone() })?;
        channels.push(ChannelListing {
            id: row.id,
            name: row.name,
            encrypted: conversation.encryption() == Encryption::Mls,
            locked: conversation.is_locked(),
            archived: conversation.is_archived(),
            member_count: conversation.members().len() as u64,
            joined: conversation.member(&current.user.id).is_some(),
        });
    }
    Ok(ApiJson(ChannelList { channels }))
}
