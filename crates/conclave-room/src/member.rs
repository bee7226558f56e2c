//! Who is in the room, as the room keeps them.

use conclave_proto::signal::{ParticipantId, ParticipantView, Role, WaitingView};

/// What identifies a person across joins: the account when signed in, and
/// the device and network address the join came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Identity {
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub device_id: Option<String>,
    pub ip: Option<String>,
}

impl Identity {
    /// The keys a removal bans. A signed-in person is banned by account and
    /// device; a guest, who has nothing else, also by address.
    pub fn ban_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        if let Some(user) = &self.user_id {
            keys.push(format!("user:{user}"));
        }
        if let Some(device) = &self.device_id {
            keys.push(format!("device:{device}"));
        }
        if self.user_id.is_none() {
            if let Some(ip) = &self.ip {
                keys.push(format!("ip:{ip}"));
            }
        }
        keys
    }

    /// True when both are the same signed-in account or the same device.
    pub fn same_person(&self, other: &Identity) -> bool {
        let same_user = self.user_id.is_some() && self.user_id == other.user_id;
        let same_device = self.device_id.is_some() && self.device_id == other.device_id;
        same_user || same_device
    }
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
        }
    }
}

/// A display name as the room accepts it: trimmed, 1–64 printable characters.
pub(crate) fn clean_name(name: &str) -> Option<String> {
    let name = name.trim();
    let ok = !name.is_empty() && name.chars().count() <= 64 && !name.chars().any(char::is_control);
    ok.then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_are_banned_by_address_and_accounts_by_account() {
        let guest = Identity { ip: Some("203.0.113.7".into()), device_id: Some("d1".into()), ..Default::default() };
        assert_eq!(guest.ban_keys(), ["device:d1", "ip:203.0.113.7"]);
        let user = Identity { user_id: Some("u1".into()), ip: Some("203.0.113.7".into()), ..Default::default() };
        assert_eq!(user.ban_keys(), ["user:u1"]);
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(clean_name("  Ada "), Some("Ada".into()));
        assert_eq!(clean_name("   "), None);
        assert_eq!(clean_name(&"x".repeat(65)), None);
        assert_eq!(clean_name("a\u{7}b"), None);
    }
}
