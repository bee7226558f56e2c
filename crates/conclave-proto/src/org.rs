//! Organisations, members, invitations, policies and the audit log.

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrgRole {
    Member,
    Admin,
    Owner,
}

impl OrgRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "member" => Some(Self::Member),
            "admin" => Some(Self::Admin),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// Meetings end after 40 minutes.
    Free,
    /// No plan cap on meeting length (set by the server operator).
    Licensed,
}

impl Plan {
    /// The longest meeting this plan allows, in minutes; `None` is unlimited.
    pub fn meeting_cap_minutes(self) -> Option<u32> {
        match self {
            Self::Free => Some(40),
            Self::Licensed => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Licensed => "licensed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "free" => Some(Self::Free),
            "licensed" => Some(Self::Licensed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateOrgRequest {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct Org {
    pub id: String,
    pub name: String,
    pub plan: Plan,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct InviteMemberRequest {
    pub email: String,
    #[serde(default = "default_role")]
    pub role: OrgRole,
}

fn default_role() -> OrgRole {
    OrgRole::Member
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct Invitation {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub role: OrgRole,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub accepted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct InvitationCreated {
    pub invitation: Invitation,
    /// Shown once: the secret the invitee signs up with.
    pub invite_token: String,
    /// The link to send to the invitee.
    pub invite_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct InvitationList {
    pub invitations: Vec<Invitation>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct MemberList {
    pub members: Vec<crate::User>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateMemberRequest {
    pub role: OrgRole,
}

/// One organisation setting and whether it is locked. A locked setting
/// cannot be changed by a meeting's host or a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
// Written out in place in TypeScript (`{ value: boolean; locked: boolean }`),
// without this doc each time: JSON Schema has no generics, and a name per
// instance (`Setting_for_boolean`) would say less.
#[cfg_attr(feature = "ts", schemars(inline, description = ""))]
#[serde(deny_unknown_fields)]
pub struct Setting<T> {
    pub value: T,
    pub locked: bool,
}

impl<T> Setting<T> {
    pub fn unlocked(value: T) -> Self {
        Self { value, locked: false }
    }
    pub fn locked(value: T) -> Self {
        Self { value, locked: true }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum E2eeMode {
    /// Hosts may turn E2EE on per meeting.
    Optional,
    /// New meetings are end-to-end encrypted unless the host turns it off.
    Default,
    /// Every meeting is end-to-end encrypted.
    Enforced,
}

/// The organisation's policies. Secure defaults: waiting room on and
/// locked, E2EE by default, 2FA optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct OrgPolicy {
    pub waiting_room: Setting<bool>,
    pub passcode_required: Setting<bool>,
    pub chat_allowed: Setting<bool>,
    pub cloud_recording_allowed: Setting<bool>,
    pub e2ee: Setting<E2eeMode>,
    /// Regions meetings and data may use; a subset of the server's regions.
    pub allowed_regions: Setting<Vec<String>>,
    /// Meeting length limit in minutes, never above the plan's cap; `null` is
    /// no limit (only on a plan without a cap).
    pub meeting_time_limit_minutes: Setting<Option<u32>>,
    pub require_2fa: Setting<bool>,
    /// Accounts unused this many days are disabled; `null` turns it off.
    pub dormant_account_days: Setting<Option<u32>>,
    /// How many people a meeting's waiting room holds at once (1–5,000);
    /// more are refused until some are admitted or leave.
    #[serde(default = "default_waiting_room_capacity")]
    pub waiting_room_capacity: Setting<u32>,
    /// Whether channels may be created without end-to-end encryption (for
    /// announcement channels too large for a group). Off by default: every
    /// conversation is end-to-end encrypted.
    #[serde(default = "off")]
    pub unencrypted_channels: Setting<bool>,
    /// Whether members may share conversations with people of other
    /// organisations on this server (both organisations must allow it;
    /// those people are marked external wherever they appear).
    #[serde(default = "off")]
    pub external_conversations: Setting<bool>,
    /// Whether people who join a group or channel see what was said before
    /// they came (a person's new device always sees what they could).
    #[serde(default = "on")]
    pub history_for_newcomers: Setting<bool>,
    /// The largest file members may share, in MiB (1–65,536).
    #[serde(default = "default_max_file_mib")]
    pub max_file_mib: Setting<u32>,
    /// Whether members may invite people from outside into a group or
    /// channel by a link and a one-time code (they get an account that
    /// sees only what they were invited to). Off by default.
    #[serde(default = "off")]
    pub guest_access: Setting<bool>,
    /// How long after sending people may edit a message, in minutes
    /// (`null`: no limit).
    #[serde(default = "default_message_window")]
    pub message_edit_minutes: Setting<Option<u32>>,
    /// How long after sending people may delete their message for everyone,
    /// in minutes (`null`: no limit); admins delete any message at any time.
    #[serde(default = "default_message_window")]
    pub message_delete_minutes: Setting<Option<u32>>,
    /// Whether members and admins sign in only through the organisation's
    /// identity provider: their passwords, and resetting them, are off
    /// (owners keep theirs, to repair the connection when the provider fails).
    #[serde(default = "off")]
    pub provider_only_sign_in: Setting<bool>,
    /// Whether a password sign-in must be completed with a passkey (a
    /// phishing-resistant factor) rather than an authenticator app's code;
    /// passwordless passkeys and the identity provider satisfy it, and
    /// recovery codes still work.
    #[serde(default = "off")]
    pub require_phishing_resistant: Setting<bool>,
}

/// The waiting room's size when an organisation sets none.
pub const DEFAULT_WAITING_ROOM_CAPACITY: u32 = 250;

fn on() -> Setting<bool> {
    Setting::unlocked(true)
}

fn off() -> Setting<bool> {
    Setting::unlocked(false)
}

/// A day: Slack's and Teams' defaults are unlimited, WhatsApp's two days;
/// a day keeps a record trustworthy without punishing a typo found late.
fn default_message_window() -> Setting<Option<u32>> {
    Setting::unlocked(Some(24 * 60))
}

fn default_max_file_mib() -> Setting<u32> {
    Setting::unlocked(crate::file::DEFAULT_MAX_FILE_MIB)
}

fn default_waiting_room_capacity() -> Setting<u32> {
    Setting::unlocked(DEFAULT_WAITING_ROOM_CAPACITY)
}

impl OrgPolicy {
    pub fn defaults(plan: Plan, regions: &[String]) -> Self {
        Self {
            waiting_room: Setting::locked(true),
            passcode_required: Setting::unlocked(false),
            chat_allowed: Setting::unlocked(true),
            cloud_recording_allowed: Setting::unlocked(false),
            e2ee: Setting::unlocked(E2eeMode::Default),
            allowed_regions: Setting::unlocked(regions.to_vec()),
            meeting_time_limit_minutes: Setting::locked(plan.meeting_cap_minutes()),
            require_2fa: Setting::unlocked(false),
            dormant_account_days: Setting::unlocked(Some(180)),
            waiting_room_capacity: default_waiting_room_capacity(),
            unencrypted_channels: off(),
            external_conversations: off(),
            history_for_newcomers: on(),
            max_file_mib: default_max_file_mib(),
            guest_access: off(),
            message_edit_minutes: default_message_window(),
            message_delete_minutes: default_message_window(),
            provider_only_sign_in: off(),
            require_phishing_resistant: off(),
        }
    }
}

/// A partial update: only the settings present change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct OrgPolicyUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_room: Option<Setting<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passcode_required: Option<Setting<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_allowed: Option<Setting<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_recording_allowed: Option<Setting<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2ee: Option<Setting<E2eeMode>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_regions: Option<Setting<Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_time_limit_minutes: Option<Setting<Option<u32>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_2fa: Option<Setting<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dormant_account_days: Option<Setting<Option<u32>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_room_capacity: Option<Setting<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unencrypted_channels: Option<Setting<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_conversations: Option<Setting<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_for_newcomers: Option<Setting<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_mib: Option<Setting<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_access: Option<Setting<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_edit_minutes: Option<Setting<Option<u32>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_delete_minutes: Option<Setting<Option<u32>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_only_sign_in: Option<Setting<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_phishing_resistant: Option<Setting<bool>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct AuditEvent {
    pub seq: i64,
    pub at_ms: i64,
    pub org_id: Option<String>,
    pub actor_id: Option<String>,
    /// What was done: an `AuditAction`'s text.
    #[cfg_attr(feature = "ts", schemars(with = "crate::audit::AuditAction"))]
    pub action: String,
    pub target: Option<String>,
    pub source_ip: Option<String>,
    /// How it went: an `AuditOutcome`'s text.
    #[cfg_attr(feature = "ts", schemars(with = "crate::audit::AuditOutcome"))]
    pub outcome: String,
    pub detail: String,
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct AuditEventPage {
    pub events: Vec<AuditEvent>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

/// Whether the organisation's identity provider may provision through
/// SCIM, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct ScimStatus {
    /// The SCIM base URL to give the identity provider.
    pub base_url: String,
    /// When the current token was made; absent while there is none.
    pub token_created_at_ms: Option<i64>,
}

/// A new SCIM token, shown once: the identity provider sends it as
/// `Authorization: Bearer`. It replaces any earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct ScimTokenCreated {
    pub base_url: String,
    pub token: String,
}

/// What one of the identity provider's groups means in the organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct ScimGroupMapping {
    pub id: String,
    /// The group's name at the provider.
    pub display_name: String,
    pub member_count: u32,
    /// The role its members get (`admin` or `member`); absent: roles are
    /// not the group's business.
    pub role: Option<OrgRole>,
    /// The team channel its members are put in and taken out of.
    pub channel_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct ScimGroupList {
    pub groups: Vec<ScimGroupMapping>,
}

/// `PUT /api/v1/orgs/{id}/scim/groups/{group_id}`: what the group means.
/// Owners are never made or unmade by a group.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MapScimGroupRequest {
    #[serde(default)]
    pub role: Option<OrgRole>,
    #[serde(default)]
    pub channel_id: Option<String>,
}

/// A public source the organisation watches for its meetings' links (an
/// RSS, Atom or JSON feed, or a Mastodon timeline's API URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct WatchSource {
    pub id: String,
    pub url: String,
    pub last_polled_at_ms: Option<i64>,
    /// Why the last look failed, if it did (it is tried again later).
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct WatchSourceList {
    pub sources: Vec<WatchSource>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AddWatchSourceRequest {
    pub url: String,
}
