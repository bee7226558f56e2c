//! Meeting settings under organisation policy. The organisation's locked
//! settings are applied on top of whatever the host asks for, at the start
//! and whenever the policy changes, so nothing in the meeting overrides them.

use conclave_proto::signal::{ChatMode, RoomSettings, SettingsChange};
use conclave_proto::OrgPolicy;

/// The part of the organisation's policy a running meeting obeys.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PolicyView {
    pub waiting_room: bool,
    pub waiting_room_locked: bool,
    pub chat_allowed: bool,
    pub chat_locked: bool,
    /// Meeting length limit in minutes; `None` for no limit.
    pub time_limit_minutes: Option<u32>,
    /// People the waiting room holds at most; more are refused until some
    /// are admitted or leave. Part of the policy so a change reaches the
    /// meetings already live.
    pub waiting_capacity: u32,
}

impl PolicyView {
    pub fn from_policy(policy: &OrgPolicy) -> Self {
        Self {
            waiting_room: policy.waiting_room.value,
            waiting_room_locked: policy.waiting_room.locked,
            chat_allowed: policy.chat_allowed.value,
            chat_locked: policy.chat_allowed.locked,
            time_limit_minutes: policy.meeting_time_limit_minutes.value,
            waiting_capacity: policy.waiting_room_capacity.value,
        }
    }

    /// No locks, no limit: what a meeting outside any policy would do.
    pub fn permissive() -> Self {
        Self {
            waiting_room: true,
            waiting_room_locked: false,
            chat_allowed: true,
            chat_locked: false,
            time_limit_minutes: None,
            waiting_capacity: crate::DEFAULT_WAITING_CAPACITY,
        }
    }

    /// Forces `settings` to what this policy locks; true if anything changed.
    pub fn enforce(&self, settings: &mut RoomSettings) -> bool {
        let before = settings.clone();
        if self.waiting_room_locked {
            settings.waiting_room = self.waiting_room;
        }
        if !self.chat_allowed {
            settings.chat = ChatMode::Off;
            settings.private_chat = false;
        } else if self.chat_locked && settings.chat == ChatMode::Off {
            settings.chat = ChatMode::Everyone;
        }
        settings.locked_by_policy = self.locked_names();
        *settings != before
    }

    fn locked_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.waiting_room_locked {
            names.push("waiting_room".to_owned());
        }
        if !self.chat_allowed || self.chat_locked {
            names.push("chat".to_owned());
            if !self.chat_allowed {
                names.push("private_chat".to_owned());
            }
        }
        names
    }

    /// Whether `settings` obey this policy (the simulation's check).
    pub fn is_obeyed_by(&self, settings: &RoomSettings) -> bool {
        let waiting_ok = !self.waiting_room_locked || settings.waiting_room == self.waiting_room;
        let chat_ok = if !self.chat_allowed {
            settings.chat == ChatMode::Off && !settings.private_chat
        } else {
            !self.chat_locked || settings.chat != ChatMode::Off
        };
        waiting_ok && chat_ok
    }

    /// The names of the settings in `change` that this policy forbids changing.
    pub fn refused_in(&self, change: &SettingsChange, current: &RoomSettings) -> Vec<&'static str> {
        let mut refused = Vec::new();
        if self.waiting_room_locked && change.waiting_room.is_some_and(|v| v != self.waiting_room) {
            refused.push("waiting_room");
        }
        if let Some(chat) = change.chat {
            if (!self.chat_allowed && chat != ChatMode::Off)
                || (self.chat_allowed && self.chat_locked && chat == ChatMode::Off)
            {
                refused.push("chat");
            }
        }
        if !self.chat_allowed && change.private_chat == Some(true) && !current.private_chat {
            refused.push("private_chat");
        }
        refused
    }
}

pub(crate) fn apply_change(settings: &mut RoomSettings, change: &SettingsChange) {
    macro_rules! take {
        ($($field:ident),*) => { $(if let Some(v) = change.$field { settings.$field = v; })* };
    }
    take!(waiting_room, allow_self_unmute, allow_rename, allow_video, screen_share, chat, private_chat);
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_proto::signal::ScreenShareMode;

    fn settings() -> RoomSettings {
        RoomSettings {
            locked: false,
            waiting_room: false,
            allow_self_unmute: true,
            allow_rename: true,
            allow_video: true,
            screen_share: ScreenShareMode::OneAtATime,
            chat: ChatMode::Everyone,
            private_chat: true,
            e2ee: false,
            locked_by_policy: vec![],
        }
    }

    #[test]
    fn locked_waiting_room_and_forbidden_chat_are_forced() {
        let policy = PolicyView {
            waiting_room: true,
            waiting_room_locked: true,
            chat_allowed: false,
            chat_locked: true,
            time_limit_minutes: None,
            waiting_capacity: 10,
        };
        let mut s = settings();
        assert!(policy.enforce(&mut s));
        assert!(s.waiting_room);
        assert_eq!((s.chat, s.private_chat), (ChatMode::Off, false));
        assert!(policy.is_obeyed_by(&s));
        let change = SettingsChange { waiting_room: Some(false), chat: Some(ChatMode::Everyone), ..Default::default() };
        assert_eq!(policy.refused_in(&change, &s), ["waiting_room", "chat"]);
    }

    #[test]
    fn an_unlocked_policy_leaves_the_host_free() {
        let mut s = settings();
        let policy = PolicyView::permissive();
        assert!(!policy.enforce(&mut s));
        assert!(policy.refused_in(&SettingsChange { waiting_room: Some(false), ..Default::default() }, &s).is_empty());
    }
}
