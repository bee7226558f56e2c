//! The signaling protocol: JSON messages over one WebSocket per participant,
//! each an object with a `"type"`. Documented with examples in
//! `docs/protocol.md`. Version 1; the version is in the connection URL
//! (`v=1`) and echoed in `waiting`/`admitted`.

use serde::{Deserialize, Serialize};

use crate::media::{ForwardedTrack, PublishedTrack, Tile, VideoCodec};
use crate::string_enum::string_enum;

pub const PROTOCOL_VERSION: u32 = 1;
/// Largest client message accepted, in bytes, but for SDP.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// Largest `media_offer` or `media_answer` (an SDP for a large meeting).
pub const MAX_SDP_MESSAGE_BYTES: usize = 64 * 1024;
pub const MAX_CHAT_CHARS: usize = 4000;
/// The reactions a participant may send (`react`'s `emoji`); the room
/// refuses any other, and the web app offers exactly these.
pub const REACTIONS: &[&str] = &["👏", "👍", "❤️", "😂", "😮", "🎉"];

pub type ParticipantId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Participant,
    CoHost,
    Host,
}

impl Role {
    pub fn moderates(self) -> bool {
        self >= Role::CoHost
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ScreenShareMode {
    HostOnly,
    OneAtATime,
    Several,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChatMode {
    /// Anyone may write to everyone.
    Everyone,
    /// Participants may write only to hosts and co-hosts.
    HostsOnly,
    /// Only hosts and co-hosts may write.
    Off,
}

/// What an admitted participant sees of another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct ParticipantView {
    pub id: ParticipantId,
    pub display_name: String,
    pub role: Role,
    pub signed_in: bool,
    /// The organisation of a signed-in participant's account, by name
    /// (`None` for guests): a guest cannot pass as a member.
    #[serde(default)]
    pub organisation: Option<String>,
    /// Signed in with an account of another organisation than the
    /// meeting's (a name alone does not say which "Acme" it is).
    #[serde(default)]
    pub external: bool,
    pub audio_muted: bool,
    pub video_muted: bool,
    pub hand_raised: bool,
    pub sharing_screen: bool,
    /// Connection lost; the seat is kept for the grace period.
    pub reconnecting: bool,
}

/// What hosts see of someone in the waiting room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct WaitingView {
    pub id: ParticipantId,
    pub display_name: String,
    pub signed_in: bool,
    pub email: Option<String>,
    #[serde(default)]
    pub organisation: Option<String>,
    #[serde(default)]
    pub external: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct RoomSettings {
    pub locked: bool,
    pub waiting_room: bool,
    pub allow_self_unmute: bool,
    pub allow_rename: bool,
    /// Participants may turn their camera on.
    pub allow_video: bool,
    pub screen_share: ScreenShareMode,
    pub chat: ChatMode,
    pub private_chat: bool,
    /// Media and chat are end-to-end encrypted: every device joins the
    /// meeting's MLS group and seals its frames with SFrame.
    #[serde(default)]
    pub e2ee: bool,
    /// Settings the organisation locked, which no one in the meeting can change.
    pub locked_by_policy: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct ChatMessage {
    /// Position in the meeting's chat; strictly increasing.
    pub seq: u64,
    pub from: ParticipantId,
    pub from_name: String,
    /// `None` for everyone; a participant for a private message.
    pub to: Option<ParticipantId>,
    pub text: String,
    pub at_ms: i64,
}

/// Partial settings change requested by a host or co-host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_room: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_self_unmute: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_rename: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_video: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen_share: Option<ScreenShareMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<ChatMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_chat: Option<bool>,
}

/// Messages a participant sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    Ping,
    /// What the app measured over its last period (every
    /// [`QUALITY_REPORT_EVERY_MS`](crate::quality::QUALITY_REPORT_EVERY_MS)):
    /// kept for the organisation's administrators, and a level for hosts.
    QualityReport {
        report: crate::quality::QualityReport,
    },
    /// Mute or unmute one's own microphone or camera. Unmuting can be
    /// refused (host forbade it, or activities are suspended).
    SetMedia {
        #[serde(default)]
        audio_muted: Option<bool>,
        #[serde(default)]
        video_muted: Option<bool>,
    },
    RaiseHand,
    LowerHand,
    React {
        emoji: String,
    },
    /// `client_msg_id` makes sending idempotent: a repeat is acknowledged, not re-sent.
    Chat {
        client_msg_id: String,
        text: String,
        #[serde(default)]
        to: Option<ParticipantId>,
    },
    StartScreenShare,
    /// Stop one's own share, or (hosts) someone else's.
    StopScreenShare {
        #[serde(default)]
        participant_id: Option<ParticipantId>,
    },
    Rename {
        participant_id: ParticipantId,
        display_name: String,
    },
    Leave,
    // Hosts and co-hosts.
    Admit {
        participant_id: ParticipantId,
    },
    AdmitAll,
    Deny {
        participant_id: ParticipantId,
    },
    Remove {
        participant_id: ParticipantId,
    },
    Mute {
        participant_id: ParticipantId,
    },
    MuteAll,
    AskToUnmute {
        participant_id: ParticipantId,
    },
    StopVideo {
        participant_id: ParticipantId,
    },
    Lock,
    Unlock,
    UpdateSettings {
        settings: SettingsChange,
    },
    // Hosts only.
    TransferHost {
        participant_id: ParticipantId,
    },
    SetCoHost {
        participant_id: ParticipantId,
        co_host: bool,
    },
    SuspendAll,
    EndForAll,
    /// Become host with the meeting's host key.
    ClaimHost {
        host_key: String,
    },
    // Media (admitted participants only).
    /// An SDP offer for the participant's media session, naming what each
    /// sending track carries.
    MediaOffer {
        sdp: String,
        #[serde(default)]
        tracks: Vec<PublishedTrack>,
    },
    /// The answer to the server's latest `media_offer`.
    MediaAnswer {
        sdp: String,
    },
    /// The videos this participant has on screen; only those are sent.
    Subscribe {
        tiles: Vec<Tile>,
    },
    // End-to-end encryption: the server is the MLS delivery service. Every
    // MLS blob is base64 text the server stores and forwards unread.
    /// This device's public signature key (base64 Ed25519), for the server
    /// to vouch for in a credential; the first E2EE message a device sends.
    E2eeCredentialRequest {
        signature_key: String,
    },
    /// This device's MLS KeyPackage, to be added to the meeting's group.
    E2eeKeyPackage {
        key_package: String,
    },
    /// A commit built on `epoch`, adding and removing these participants;
    /// `welcome` goes to the added ones.
    E2eeCommit {
        epoch: u64,
        commit: String,
        #[serde(default)]
        welcome: Option<String>,
        #[serde(default)]
        added: Vec<ParticipantId>,
        #[serde(default)]
        removed: Vec<ParticipantId>,
    },
    /// An MLS application message (the encrypted chat) for the group.
    E2eeApplication {
        message: String,
    },
    /// This device refused a commit the server relayed (from someone not
    /// asked to commit, or adding or removing someone the server did not
    /// ask for): recorded in the organisation's audit log.
    E2eeCommitRefused {
        epoch: u64,
        from: ParticipantId,
        reason: String,
    },
}

impl ClientMessage {
    /// Parses one message strictly: unknown types, missing or mistyped
    /// fields and unknown fields are all errors. (Serde alone lets extra
    /// fields through on variants without fields, so every key of the input
    /// is also checked against the keys of the parsed message.)
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let message: Self = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        let known = serde_json::to_value(&message).map_err(|e| e.to_string())?;
        if let (Some(given), Some(known)) = (value.as_object(), known.as_object()) {
            if let Some(unknown) = given.keys().find(|k| !known.contains_key(*k)) {
                return Err(format!("unknown field `{unknown}` for type `{}`", message.kind()));
            }
        }
        Ok(message)
    }

    /// The `type` tag, for error replies and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::QualityReport { .. } => "quality_report",
            Self::SetMedia { .. } => "set_media",
            Self::RaiseHand => "raise_hand",
            Self::LowerHand => "lower_hand",
            Self::React { .. } => "react",
            Self::Chat { .. } => "chat",
            Self::StartScreenShare => "start_screen_share",
            Self::StopScreenShare { .. } => "stop_screen_share",
            Self::Rename { .. } => "rename",
            Self::Leave => "leave",
            Self::Admit { .. } => "admit",
            Self::AdmitAll => "admit_all",
            Self::Deny { .. } => "deny",
            Self::Remove { .. } => "remove",
            Self::Mute { .. } => "mute",
            Self::MuteAll => "mute_all",
            Self::AskToUnmute { .. } => "ask_to_unmute",
            Self::StopVideo { .. } => "stop_video",
            Self::Lock => "lock",
            Self::Unlock => "unlock",
            Self::UpdateSettings { .. } => "update_settings",
            Self::TransferHost { .. } => "transfer_host",
            Self::SetCoHost { .. } => "set_co_host",
            Self::SuspendAll => "suspend_all",
            Self::EndForAll => "end_for_all",
            Self::ClaimHost { .. } => "claim_host",
            Self::MediaOffer { .. } => "media_offer",
            Self::MediaAnswer { .. } => "media_answer",
            Self::Subscribe { .. } => "subscribe",
            Self::E2eeCredentialRequest { .. } => "e2ee_credential_request",
            Self::E2eeKeyPackage { .. } => "e2ee_key_package",
            Self::E2eeCommit { .. } => "e2ee_commit",
            Self::E2eeApplication { .. } => "e2ee_application",
            Self::E2eeCommitRefused { .. } => "e2ee_commit_refused",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    EndedByHost,
    TimeLimit,
    NoHost,
    Deleted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// A host or co-host declined.
    Denied,
    /// The meeting is locked: nobody new may join.
    Locked,
    /// Removed earlier from this meeting.
    Removed,
    /// The meeting has ended.
    Ended,
    /// The waiting room holds as many people as it may (from this address,
    /// or in all); try again later.
    WaitingRoomFull,
}

/// A device in a meeting's E2EE group: the participant it speaks for and
/// the owner its credential names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct E2eeMember {
    pub participant_id: ParticipantId,
    pub owner: crate::credential::DeviceOwner,
}

/// Messages the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// You are in the waiting room. Nothing about the meeting is shared until admitted.
    Waiting {
        protocol_version: u32,
        participant_id: ParticipantId,
        resume_token: String,
    },
    /// You are in: who is here, the settings, the chat so far.
    Admitted {
        protocol_version: u32,
        participant_id: ParticipantId,
        resume_token: String,
        you: ParticipantView,
        roster: Vec<ParticipantView>,
        settings: RoomSettings,
        chat: Vec<ChatMessage>,
        /// When the meeting's time limit ends it, if it has one.
        ends_at_ms: Option<i64>,
    },
    /// You cannot join (or stay in the waiting room).
    Refused {
        reason: RefusalReason,
    },
    /// A host or co-host removed you; you cannot come back.
    Removed,
    Ended {
        reason: EndReason,
    },
    /// This connection was replaced by a newer one of the same participant.
    Replaced,
    /// To hosts and co-hosts: someone is knocking (play the knock sound).
    Knock {
        participant: WaitingView,
    },
    /// To hosts and co-hosts: several people knocked within a second; one
    /// message for all of them (`first` names up to five), so a crowd
    /// arriving at once is one notice, not one each.
    Knocks {
        count: u32,
        first: Vec<WaitingView>,
    },
    /// To hosts and co-hosts: the waiting room now holds these people.
    WaitingRoom {
        waiting: Vec<WaitingView>,
    },
    ParticipantJoined {
        participant: ParticipantView,
    },
    ParticipantUpdated {
        participant: ParticipantView,
    },
    ParticipantLeft {
        participant_id: ParticipantId,
    },
    Chat {
        message: ChatMessage,
    },
    /// Your chat message was stored as `seq` (also for a repeated `client_msg_id`).
    ChatAck {
        client_msg_id: String,
        seq: u64,
    },
    Reaction {
        from: ParticipantId,
        emoji: String,
    },
    /// A host asks you to unmute; only you can do it.
    UnmuteRequested {
        by: ParticipantId,
    },
    SettingsChanged {
        settings: RoomSettings,
    },
    TimeWarning {
        minutes_left: u32,
        ends_at_ms: i64,
    },
    /// The meeting's end time changed (`None`: the limit was lifted).
    TimeLimit {
        ends_at_ms: Option<i64>,
    },
    /// A message was refused, or something went wrong with this
    /// connection; `request` is the `type` of the refused message, if any.
    Error {
        /// What went wrong: an [`ErrorCode`]'s text.
        #[cfg_attr(feature = "ts", schemars(with = "ErrorCode"))]
        code: String,
        message: String,
        request: Option<String>,
    },
    Pong,
    /// To hosts and co-hosts: a participant's call quality changed level
    /// (with the report that changed it).
    ParticipantQuality {
        participant_id: ParticipantId,
        level: crate::quality::QualityLevel,
        report: crate::quality::QualityReport,
    },
    /// The server's offer: tracks added or stopped. Answer with `media_answer`.
    MediaOffer {
        sdp: String,
        /// Whose each sending track is.
        tracks: Vec<ForwardedTrack>,
    },
    /// The answer to the participant's `media_offer`.
    MediaAnswer {
        sdp: String,
    },
    /// The simulcast layers (by rid) of one of your tracks that someone
    /// watches; pause the others.
    PublishLayers {
        mid: String,
        rids: Vec<String>,
    },
    /// Send your videos in this codec: the one everyone in the meeting can
    /// decode (it changes when someone who decodes less joins or leaves).
    /// Offer it first and the server's answer takes it. An end-to-end
    /// encrypted meeting stays on VP8.
    PublishCodec {
        codec: VideoCodec,
    },
    /// Who is speaking now, from the audio levels (`None`: nobody).
    ActiveSpeaker {
        participant_id: Option<ParticipantId>,
    },
    /// The server vouches for your device key: `credential` is a
    /// [`SignedCredential`](crate::credential::SignedCredential)'s bytes
    /// (base64), `authority` the Ed25519 key that signed it (base64).
    E2eeCredential {
        credential: String,
        authority: String,
        /// The participant this device speaks for in the meeting's group.
        participant_id: ParticipantId,
    },
    /// You are the first in the group: create it (epoch 0).
    E2eeCreateGroup,
    /// To every member: the server asks `committer` to add this admitted
    /// participant's device with this KeyPackage. Members accept a commit
    /// only from that committer, adding only what the server asked for.
    E2eeAddRequest {
        participant_id: ParticipantId,
        /// Whose device it is: the owner its credential must name.
        owner: crate::credential::DeviceOwner,
        key_package: String,
        committer: ParticipantId,
    },
    /// To every member: the server asks `committer` to remove this
    /// participant's device (they left, were removed, or took their seat
    /// over with a new device). Members accept no other removal.
    E2eeRemoveRequest {
        participant_id: ParticipantId,
        /// The owner named by the credential of the device to remove.
        owner: crate::credential::DeviceOwner,
        committer: ParticipantId,
        /// The server's own MLS proposal to remove that device (base64),
        /// signed as the group's external sender: members keep it and the
        /// committer's next commit carries it out. Absent where the group
        /// was made without the server as external sender.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proposal: Option<String>,
    },
    /// A commit the delivery service accepted; `epoch` is the one it starts.
    E2eeCommit {
        from: ParticipantId,
        epoch: u64,
        commit: String,
    },
    /// You were added: join the group with this. `committer` is who the
    /// server asks to make the group's changes, until a request names another.
    E2eeWelcome {
        epoch: u64,
        welcome: String,
        committer: ParticipantId,
        /// Who holds each device in the group now, in the server's word.
        members: Vec<E2eeMember>,
    },
    /// Your commit was not accepted (another was first); process what
    /// arrived and build again on `epoch`.
    E2eeRejected {
        epoch: u64,
        reason: String,
    },
    E2eeApplication {
        from: ParticipantId,
        message: String,
    },
}

string_enum! {
    /// The `code` of a signaling `error`, which clients match on. Codes are
    /// snake_case: lowercase words joined by `_` (`not_found`,
    /// `rate_limited`), like the protocol's message types. A code, once sent,
    /// keeps its meaning; a new kind of error gets a new code.
    pub enum ErrorCode {
        /// Not a valid message: not JSON text, an unknown `type`, or a missing, mistyped or unknown field.
        Malformed = "malformed",
        /// The message is longer than the protocol allows.
        TooLarge = "too_large",
        /// Too many messages; slow down (repeated refusals close the connection).
        RateLimited = "rate_limited",
        /// The meeting cannot take messages this fast; slow down.
        Overloaded = "overloaded",
        /// The join was refused before the meeting was entered (the connection closes).
        CannotJoin = "cannot_join",
        /// Your role, or the meeting's settings, do not allow this.
        Forbidden = "forbidden",
        /// The request is not acceptable as asked (a bad value, or not now).
        Invalid = "invalid",
        /// No such participant (or none waiting, or none you may write to).
        NotFound = "not_found",
        /// Someone else is sharing their screen, and only one share at a time is allowed.
        Busy = "busy",
        /// The server cannot do this (it forwards no media, or has no credential authority).
        Unavailable = "unavailable",
        /// The SDP or track list of a `media_offer` or `media_answer` was refused.
        InvalidMedia = "invalid_media",
        /// The media session failed and was closed; send a new `media_offer`.
        MediaFailed = "media_failed",
        /// The media connection was lost; send a new `media_offer`.
        MediaLost = "media_lost",
    }
}

impl ServerMessage {
    /// True for messages that carry something of the meeting itself (its
    /// people, chat, settings or activity), which only admitted
    /// participants may receive.
    pub fn reveals_meeting(&self) -> bool {
        !matches!(
            self,
            Self::Waiting { .. }
                | Self::Refused { .. }
                | Self::Removed
                | Self::Ended { .. }
                | Self::Replaced
                | Self::Error { .. }
                | Self::Pong
        )
    }

    pub fn error(code: ErrorCode, message: impl Into<String>, request: Option<&str>) -> Self {
        Self::Error { code: code.as_str().to_owned(), message: message.into(), request: request.map(str::to_owned) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLES: &[&str] = &[
        r#"{"type":"chat","client_msg_id":"a1","text":"hi","to":3}"#,
        r#"{"type":"update_settings","settings":{"waiting_room":false,"chat":"hosts_only"}}"#,
        r#"{"type":"set_media","audio_muted":false,"video_muted":null}"#,
        r#"{"type":"remove","participant_id":7}"#,
        r#"{"type":"claim_host","host_key":"123456"}"#,
    ];

    proptest! {
        /// Whatever text arrives, parsing answers without panicking, and
        /// anything accepted survives a round trip unchanged.
        #[test]
        fn any_text_parses_or_is_refused(text in ".{0,300}") {
            if let Ok(message) = ClientMessage::from_json(&text) {
                let again = serde_json::to_string(&message).unwrap();
                prop_assert_eq!(ClientMessage::from_json(&again), Ok(message));
            }
        }

        /// Valid messages with bytes flipped, cut or inserted: the same.
        #[test]
        fn mutated_messages_parse_or_are_refused(sample in 0..SAMPLES.len(), at in 0usize..120, byte in any::<u8>(), cut in any::<bool>()) {
            let mut bytes = SAMPLES[sample].as_bytes().to_vec();
            let at = at % bytes.len();
            if cut { bytes.truncate(at) } else { bytes.insert(at, byte) }
            if let Ok(text) = String::from_utf8(bytes) {
                if let Ok(message) = ClientMessage::from_json(&text) {
                    let again = serde_json::to_string(&message).unwrap();
                    prop_assert_eq!(ClientMessage::from_json(&again), Ok(message));
                }
            }
        }
    }

    #[test]
    fn error_codes_are_snake_case_and_round_trip() {
        use crate::string_enum::testing::{check, words_joined_by};
        check::<ErrorCode>("snake_case", |code| words_joined_by(code, '_'));
    }

    #[test]
    fn an_error_with_a_code_is_what_the_server_sends() {
        let error = ServerMessage::error(ErrorCode::RateLimited, "slow down", None);
        let json = serde_json::to_string(&error).unwrap();
        assert_eq!(json, r#"{"type":"error","code":"rate_limited","message":"slow down","request":null}"#);
    }

    #[test]
    fn messages_are_tagged_json_and_refuse_unknown_fields() {
        let m: ClientMessage = serde_json::from_str(r#"{"type":"chat","client_msg_id":"a1","text":"hi"}"#).unwrap();
        assert_eq!(m, ClientMessage::Chat { client_msg_id: "a1".into(), text: "hi".into(), to: None });
        assert!(ClientMessage::from_json(r#"{"type":"lock","extra":1}"#)
            .unwrap_err()
            .contains("unknown field `extra`"));
        assert!(ClientMessage::from_json(r#"{"type":"chat","client_msg_id":"a","text":"b","mood":"x"}"#).is_err());
        assert!(ClientMessage::from_json(r#"{"type":"launch_missiles"}"#).is_err());
        assert!(ClientMessage::from_json("[1,2]").is_err());
        assert_eq!(
            ClientMessage::from_json(r#"{"type":"stop_screen_share"}"#).unwrap(),
            ClientMessage::StopScreenShare { participant_id: None }
        );
        let json = serde_json::to_string(&ServerMessage::Ended { reason: EndReason::TimeLimit }).unwrap();
        assert_eq!(json, r#"{"type":"ended","reason":"time_limit"}"#);
    }
}
