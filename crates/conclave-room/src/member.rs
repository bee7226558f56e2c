//! Who is in the room, as the room keeps them.

use conclave_proto::quality::QualityLevel;
use conclave_proto::signal::{ParticipantId, ParticipantView, Role, WaitingView};

/// What identifies a person across joins: the account when signed in (with
/// its organisation, shown to others), and the network address the join
/// came from. Nothing here is chosen by the client: a seat is taken over only
/// by the same account, or by whoever holds the seat's resume token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub user_id: Option<String>,
    pub email: Option<String>,
    /// The signed-in account's organisation, by name.
    pub organisation: Option<String>,
    /// Signed in with an account of another organisation than the meeting's.
    pub external: bool,
    pub ip: Option<String>,
}

impl Identity {
    /// The keys a removal bans. A signed-in person is banned by account
    /// (not by address: their colleagues may share it); a guest, who has
    /// nothing else, by address.
    pub fn ban_keys(&self) -> Vec<String> {
        match (&self.user_id, &self.ip) {
            (Some(user), _) => vec![format!("user:{user}")],
            (None, Some(ip)) => vec![format!("ip:{ip}")],
            (None, None) => Vec::new(),
        }
    }

    /// True when both are the same signed-in account: the only way a join
    /// takes over someone's seat.
    pub fn same_account(&self, other: &Identity) -> bool {
        self.user_id.is_some() && self.user_id == other.user_id
    }
}

/// What a person is to the meeting, beyond the roles the room hands out:
/// its owner, or an admin of the meeting's organisation. Nobody in the
/// meeting can ban the owner, and only the owner can ban an admin, so a
/// host key in the wrong hands never locks them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    #[default]
    Ordinary,
    OrgAdmin,
    Owner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Waiting,
    Admitted,
}

#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub id: ParticipantId,
    pub display_name: String,
    pub identity: Identity,
    pub standing: Standing,
    /// Proves, on reconnection, that a new connection is this seat's.
    pub resume_token: String,
    pub role: Role,
    pub presence: Presence,
    /// When the connection dropped, while the seat is held.
    pub disconnected_at: Option<i64>,
    pub audio_muted: bool,
    pub video_muted: bool,
    pub hand_raised: bool,
    pub sharing_screen: bool,
    /// A host asked this participant to unmute; they may, once.
    pub unmute_invited: bool,
    /// Order of arrival, for choosing the next host.
    pub joined_seq: u64,
    /// When sharing started, to keep the earliest when only one may share.
    pub share_seq: u64,
    /// The level of its latest quality report, and when that came.
    pub quality: Option<(QualityLevel, i64)>,
}

impl Member {
    pub fn admitted(&self) -> bool {
        self.presence == Presence::Admitted
    }

    pub fn view(&self) -> ParticipantView {
        ParticipantView {
            id: self.id,
            display_name: self.display_name.clone(),
            role: self.role,
            signed_in: self.identity.user_id.is_some(),
            organisation: self.identity.organisation.clone(),
            external: self.identity.external,
            audio_muted: self.audio_muted,
            video_muted: self.video_muted,
            hand_raised: self.hand_raised,
            sharing_screen: self.sharing_screen,
            reconnecting: self.disconnected_at.is_some(),
        }
    }

    pub fn waiting_view(&self) -> WaitingView {
        WaitingView {
            id: self.id,
            display_name: self.display_name.clone(),
            signed_in: self.identity.user_id.is_some(),
            email: self.identity.email.clone(),
            organisation: self.identity.organisation.clone(),
            external: self.identity.external,
        }
    }
}

/// A display name as the room accepts it (the one rule of
/// `conclave_proto::names`).
pub(crate) fn clean_name(name: &str) -> Option<String> {
    conclave_proto::names::display_name(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_are_banned_by_address_and_accounts_by_account() {
        let guest = Identity { ip: Some("203.0.113.7".into()), ..Default::default() };
        assert_eq!(guest.ban_keys(), ["ip:203.0.113.7"]);
        let user = Identity { user_id: Some("u1".into()), ip: Some("203.0.113.7".into()), ..Default::default() };
        assert_eq!(user.ban_keys(), ["user:u1"]);
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(clean_name("  Ada "), Some("Ada".into()));
        assert_eq!(clean_name("   "), None);
        assert_eq!(clean_name(&"x".repeat(65)), None);
        assert_eq!(clean_name("a\u{7}b"), None);
        assert_eq!(clean_name("Alice Owner\u{200B}"), None);
    }
}
