//! The audit log's hash chain. Each event's hash covers the previous event's
//! hash and every field of the event, so editing, deleting or reordering any
//! stored event breaks every later link; the chain head (last sequence number
//! and hash) catches truncation of the tail.

use data_encoding::HEXLOWER;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields of one audit event that the chain protects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLink<'a> {
    pub seq: i64,
    pub at_ms: i64,
    pub org_id: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub source_ip: Option<&'a str>,
    pub outcome: &'a str,
    pub detail: &'a str,
}

impl AuditLink<'_> {
    /// `hex(SHA-256(prev_hash || fields))`, each field length-prefixed so no
    /// two different events encode alike.
    pub fn hash(&self, prev_hash: &str) -> String {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        field(b"conclave-audit-v1");
        field(prev_hash.as_bytes());
        field(&self.seq.to_be_bytes());
        field(&self.at_ms.to_be_bytes());
        for optional in [self.org_id, self.actor_id] {
            field(optional.map_or(&[0xff][..], str::as_bytes));
        }
        field(self.action.as_bytes());
        for optional in [self.target, self.source_ip] {
            field(optional.map_or(&[0xff][..], str::as_bytes));
        }
        field(self.outcome.as_bytes());
        field(self.detail.as_bytes());
        HEXLOWER.encode(&h.finalize())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("event {seq}: expected sequence number {expected}")]
    Gap { seq: i64, expected: i64 },
    #[error("event {seq}: previous-hash link does not match the event before it")]
    BrokenLink { seq: i64 },
    #[error("event {seq}: contents do not match its stored hash (edited)")]
    Tampered { seq: i64 },
    #[error("chain ends at event {last_seq} but the head says {head_seq} (events removed or added)")]
    HeadMismatch { last_seq: i64, head_seq: i64 },
}

/// Checks events streamed in sequence order; feed each with its stored hashes.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self { expected_seq: 1, prev_hash: GENESIS_HASH.to_owned() }
    }
}

impl ChainVerifier {
    pub fn push(&mut self, link: &AuditLink<'_>, stored_prev: &str, stored_hash: &str) -> Result<(), ChainError> {
        if link.seq != self.expected_seq {
            return Err(ChainError::Gap { seq: link.seq, expected: self.expected_seq });
        }
        if stored_prev != self.prev_hash {
            return Err(ChainError::BrokenLink { seq: link.seq });
        }
        if link.hash(stored_prev) != stored_hash {
            return Err(ChainError::Tampered { seq: link.seq });
        }
        self.expected_seq += 1;
        self.prev_hash = stored_hash.to_owned();
        Ok(())
    }

    /// Compares the end of the chain with the stored head.
    pub fn finish(self, head_seq: i64, head_hash: &str) -> Result<(i64, String), ChainError> {
        let last_seq = self.expected_seq - 1;
        if last_seq != head_seq || self.prev_hash != head_hash {
            return Err(ChainError::HeadMismatch { last_seq, head_seq });
        }
        Ok((last_seq, self.prev_hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(seq: i64, detail: &str) -> AuditLink<'_> {
        AuditLink {
            seq,
            at_ms: 1000 + seq,
            org_id: Some("org"),
            actor_id: None,
            action: "auth.login",
            target: None,
            source_ip: Some("127.0.0.1"),
            outcome: "failure",
            detail,
        }
    }

    fn chain(n: i64) -> Vec<(i64, String, String, String)> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let detail = format!("d{seq}");
                let hash = link(seq, &detail).hash(&prev);
                let row = (seq, detail, prev.clone(), hash.clone());
                prev = hash;
                row
            })
            .collect()
    }

    fn verify(rows: &[(i64, String, String, String)], head: (i64, &str)) -> Result<(i64, String), ChainError> {
        let mut v = ChainVerifier::default();
        for (seq, detail, prev, hash) in rows {
            v.push(&link(*seq, detail), prev, hash)?;
        }
        v.finish(head.0, head.1)
    }

    #[test]
    fn intact_chain_verifies() {
        let rows = chain(5);
        let head = rows.last().unwrap().3.clone();
        assert_eq!(verify(&rows, (5, &head)).unwrap().0, 5);
    }

    #[test]
    fn edits_deletions_and_truncation_are_detected() {
        let rows = chain(5);
        let head = rows.last().unwrap().3.clone();
        let mut edited = rows.clone();
        edited[2].1 = "changed".into();
        assert_eq!(verify(&edited, (5, &head)), Err(ChainError::Tampered { seq: 3 }));
        let mut deleted = rows.clone();
        deleted.remove(1);
        assert_eq!(verify(&deleted, (5, &head)), Err(ChainError::Gap { seq: 3, expected: 2 }));
        assert!(matches!(verify(&rows[..4], (5, &head)), Err(ChainError::HeadMismatch { .. })));
        let mut relinked = rows.clone();
        relinked[3].2 = relinked[1].3.clone();
        assert_eq!(verify(&relinked, (5, &head)), Err(ChainError::BrokenLink { seq: 4 }));
    }

    #[test]
    fn absent_and_empty_fields_hash_differently() {
        let mut a = link(1, "");
        let b = a.clone();
        a.target = Some("");
        assert_ne!(a.hash(GENESIS_HASH), b.hash(GENESIS_HASH));
    }
}
