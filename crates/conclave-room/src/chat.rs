//! The meeting's chat: ordered by a sequence number, idempotent per sender
//! and client message id, kept for the meeting's life (up to a cap).

use conclave_proto::signal::{ChatMessage, ParticipantId};
use std::collections::{HashMap, VecDeque};

/// Messages kept; beyond this the oldest go, so a long meeting's memory is bounded.
pub const HISTORY_CAP: usize = 10_000;
pub const MAX_CLIENT_ID_LEN: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct ChatLog {
    next_seq: u64,
    history: VecDeque<ChatMessage>,
    seen: HashMap<(ParticipantId, String), u64>,
}

impl ChatLog {
    /// The seq an earlier message with this client id got, if any.
    pub fn already_sent(&self, from: ParticipantId, client_msg_id: &str) -> Option<u64> {
        self.seen.get(&(from, client_msg_id.to_owned())).copied()
    }

    pub fn append(
        &mut self,
        from: ParticipantId,
        from_name: String,
        to: Option<ParticipantId>,
        client_msg_id: String,
        text: String,
        at_ms: i64,
    ) -> ChatMessage {
        self.next_seq += 1;
        let message = ChatMessage { seq: self.next_seq, from, from_name, to, text, at_ms };
        self.seen.insert((from, client_msg_id), message.seq);
        self.history.push_back(message.clone());
        if self.history.len() > HISTORY_CAP {
            self.history.pop_front();
        }
        message
    }

    /// What `reader` may see: everything public, and private messages to or from them.
    pub fn visible_to(&self, reader: ParticipantId) -> Vec<ChatMessage> {
        self.history.iter().filter(|m| m.to.is_none() || m.to == Some(reader) || m.from == reader).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_messages_are_visible_only_to_their_two_ends() {
        let mut log = ChatLog::default();
        log.append(1, "a".into(), None, "m1".into(), "hello all".into(), 0);
        log.append(1, "a".into(), Some(2), "m2".into(), "psst".into(), 0);
        assert_eq!(log.visible_to(2).len(), 2);
        assert_eq!(log.visible_to(3).len(), 1);
        assert_eq!(log.already_sent(1, "m2"), Some(2));
        assert_eq!(log.already_sent(2, "m2"), None);
    }
}
