//! Meetings over REST: scheduling, invitations and joining.

use crate::signal::{ChatMode, ScreenShareMode};
use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Settings a host chooses for a meeting; the organisation's locked
/// policies win over them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MeetingSettings {
    #[serde(default = "yes")]
    pub waiting_room: bool,
    #[serde(default = "yes")]
    pub mute_on_entry: bool,
    #[serde(default = "yes")]
    pub allow_self_unmute: bool,
    #[serde(default = "one_at_a_time")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "one_at_a_time"))]
    pub screen_share: ScreenShareMode,
    #[serde(default = "everyone")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "everyone"))]
    pub chat: ChatMode,
    #[serde(default = "yes")]
    pub private_chat: bool,
    /// End-to-end encrypted: media and chat keyed by the participants'
    /// devices (MLS + SFrame); fixed for the meeting's life.
    #[serde(default)]
    pub e2ee: bool,
}

fn yes() -> bool {
    true
}
fn one_at_a_time() -> ScreenShareMode {
    ScreenShareMode::OneAtATime
}
fn everyone() -> ChatMode {
    ChatMode::Everyone
}

impl Default for MeetingSettings {
    fn default() -> Self {
        Self {
            waiting_room: true,
            mute_on_entry: true,
            allow_self_unmute: true,
            screen_share: ScreenShareMode::OneAtATime,
            chat: ChatMode::Everyone,
            private_chat: true,
            e2ee: false,
        }
    }
}

/// Settings asked for in a create or update; absent ones keep their current
/// value (or, for a new meeting, the organisation's default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MeetingSettingsRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_room: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mute_on_entry: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_self_unmute: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "host_only"))]
    pub screen_share: Option<ScreenShareMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "everyone"))]
    pub chat: Option<ChatMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_chat: Option<bool>,
    /// Absent: the organisation's default. `false` is refused where E2EE is enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2ee: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateMeetingRequest {
    pub title: String,
    /// Unix ms; absent for an instant meeting.
    #[serde(default)]
    pub scheduled_start_ms: Option<i64>,
    #[serde(default)]
    pub duration_minutes: Option<u32>,
    /// A passcode of 6–32 characters; required when the organisation says so.
    #[serde(default)]
    pub passcode: Option<String>,
    #[serde(default)]
    pub settings: MeetingSettingsRequest,
    /// Email addresses to send a calendar invitation (`.ics`) to; needs a
    /// scheduled start.
    #[serde(default)]
    pub invitees: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateMeetingRequest {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub scheduled_start_ms: Option<i64>,
    #[serde(default)]
    pub duration_minutes: Option<u32>,
    /// `""` removes the passcode (where policy allows).
    #[serde(default)]
    pub passcode: Option<String>,
    #[serde(default)]
    pub settings: Option<MeetingSettingsRequest>,
    /// The whole new list of invited addresses: newcomers get the
    /// invitation, those dropped a cancellation.
    #[serde(default)]
    pub invitees: Option<Vec<String>>,
}

/// A meeting as its host sees it, secrets included.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct Meeting {
    pub id: String,
    pub org_id: String,
    pub host_user_id: String,
    pub title: String,
    pub scheduled_start_ms: Option<i64>,
    pub duration_minutes: Option<u32>,
    pub settings: MeetingSettings,
    /// The invite link; its secret carries 160 bits.
    pub invite_url: String,
    pub link_secret: String,
    /// Typeable code for phones (`123 456 7890`): never enough alone
    /// (a passcode or the waiting room always stands behind it).
    pub code: String,
    pub passcode: Option<String>,
    /// Lets its holder claim host in the meeting.
    pub host_key: String,
    pub created_at_ms: i64,
    /// Whether someone is in the meeting now.
    pub live: bool,
    /// Addresses invited by email.
    pub invitees: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct MeetingList {
    pub meetings: Vec<Meeting>,
}

/// Which meeting an invite link opens, asked before joining it. The secret
/// goes in the body, never in a URL (where logs would keep it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MeetingPreviewRequest {
    pub link_secret: String,
}

/// What the join page shows of a meeting before anyone joins it: enough
/// to know it is the right one and what to expect, nothing of who is in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct MeetingPreview {
    pub title: String,
    /// The display name of the person who made the meeting.
    pub host_name: String,
    pub scheduled_start_ms: Option<i64>,
    /// Someone is in the meeting now.
    pub live: bool,
    /// People wait until a host lets them in.
    pub waiting_room: bool,
    pub e2ee: bool,
}

/// Join by the invite link's secret, or by code and passcode.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct JoinMeetingRequest {
    #[serde(default)]
    pub link_secret: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub passcode: Option<String>,
    pub display_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct JoinTicket {
    /// The meeting joined (for reports, which name it).
    #[serde(default)]
    pub meeting_id: String,
    /// Single use, valid for `expires_in_seconds`.
    pub ticket: String,
    /// Open a WebSocket here (the ticket is already in the URL).
    pub signaling_url: String,
    pub expires_in_seconds: u64,
    /// TURN servers for the media connection, with credentials valid for a while.
    #[serde(default)]
    pub ice_servers: Vec<crate::media::IceServer>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ReportParticipantRequest {
    /// The reporter's own resume token, proving they are in the meeting.
    pub participant_token: String,
    pub participant_id: u64,
    pub reason: String,
}

/// What the reporter gets back: that the report was filed, and nothing of
/// the people in it (a report must not tell anyone more than they saw).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct ReportReceipt {
    pub id: String,
    pub meeting_id: String,
    pub at_ms: i64,
}

/// A report as the organisation's owners and admins read it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct Report {
    pub id: String,
    pub meeting_id: String,
    pub reporter_name: String,
    pub reported_name: String,
    pub reported_user_id: Option<String>,
    pub reason: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct ReportList {
    pub reports: Vec<Report>,
}

/// Someone removed from a meeting, who cannot come back until the meeting's
/// owner or an organisation admin lifts the ban.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct MeetingBan {
    pub id: String,
    /// The name they had in the meeting when removed.
    pub display_name: String,
    /// Their account, if they were signed in (guests are banned by address).
    pub user_id: Option<String>,
    /// Who removed them (their name in the meeting).
    pub removed_by: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct MeetingBanList {
    pub bans: Vec<MeetingBan>,
}

/// A meeting of the caller's found in a public post (S4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct RiskWarning {
    pub id: String,
    pub meeting_id: String,
    /// Where it was posted.
    pub post_url: String,
    /// Higher is riskier: live or soon, no waiting room, no passcode, in
    /// public.
    pub score: u32,
    pub reasons: Vec<String>,
    pub created_at_ms: i64,
    /// Whether the warning's link was used to rotate the meeting's secrets.
    pub resolved: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct RiskWarningList {
    pub warnings: Vec<RiskWarning>,
}

/// The single-use token of a warning's link: rotates the meeting's secrets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RotateFromWarningRequest {
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct RotatedFromWarning {
    pub meeting_id: String,
    pub title: String,
}
