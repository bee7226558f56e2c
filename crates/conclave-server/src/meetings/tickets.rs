//! Join tickets: what `joinMeeting` hands out and the signaling WebSocket
//! redeems. Short-lived, single-use, kept only as hashes in this node's
//! memory (a ticket is redeemed on the node that issued it).

use conclave_auth::{OpaqueToken, TokenHash};
use conclave_room::{Identity, Standing};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone)]
pub struct TicketGrant {
    pub meeting_id: String,
    pub org_id: String,
    pub display_name: String,
    pub identity: Identity,
    /// The meeting's owner, an admin of its organisation, or neither.
    pub standing: Standing,
    pub expires_at_ms: i64,
}

#[derive(Default)]
pub struct Tickets {
    grants: Mutex<Grants>,
}

#[derive(Default)]
struct Grants {
    by_hash: HashMap<String, TicketGrant>,
    /// Size after the last sweep of expired tickets; the next sweep waits
    /// until the map has doubled, so issuing stays O(1) amortised.
    swept_len: usize,
}

impl Tickets {
    pub fn issue(&self, grant: TicketGrant, now_ms: i64) -> OpaqueToken {
        let token = OpaqueToken::generate_with_prefix("tk_");
        let mut grants = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        if grants.by_hash.len() >= 2 * grants.swept_len.max(64) {
            grants.by_hash.retain(|_, g| g.expires_at_ms > now_ms);
            grants.swept_len = grants.by_hash.len();
        }
        grants.by_hash.insert(token.hash().0, grant);
        token
    }

    /// The grant, once: a second redemption finds nothing.
    pub fn redeem(&self, token: &str, now_ms: i64) -> Option<TicketGrant> {
        let mut grants = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        grants.by_hash.remove(&TokenHash::of(token).0).filter(|g| g.expires_at_ms > now_ms)
    }

    /// Forgets every unredeemed ticket of a meeting (its secrets rotated, or it was deleted).
    pub fn revoke_meeting(&self, meeting_id: &str) {
        self.grants.lock().unwrap_or_else(|p| p.into_inner()).by_hash.retain(|_, g| g.meeting_id != meeting_id);
    }

    pub fn len(&self) -> usize {
        self.grants.lock().unwrap_or_else(|p| p.into_inner()).by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(meeting: &str, expires: i64) -> TicketGrant {
        TicketGrant {
            meeting_id: meeting.into(),
            org_id: "o".into(),
            display_name: "a".into(),
            identity: Identity::default(),
            standing: Standing::Ordinary,
            expires_at_ms: expires,
        }
    }

    #[test]
    fn tickets_work_once_expire_and_can_be_revoked() {
        let tickets = Tickets::default();
        let t = tickets.issue(grant("m", 100), 0);
        assert!(tickets.redeem(t.as_str(), 10).is_some());
        assert!(tickets.redeem(t.as_str(), 10).is_none(), "single use");
        let late = tickets.issue(grant("m", 100), 0);
        assert!(tickets.redeem(late.as_str(), 100).is_none(), "expired");
        let revoked = tickets.issue(grant("m", 100), 0);
        tickets.revoke_meeting("m");
        assert!(tickets.redeem(revoked.as_str(), 1).is_none());
    }
}
