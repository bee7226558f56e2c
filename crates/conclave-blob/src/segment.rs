//! The format of a segment object: the bodies of a consecutive range of
//! one conversation's log, as the database held them (MLS ciphertext and
//! its envelope). The server writes it and reads it back from the
//! organisation's bucket; anything read back is checked, never trusted.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One segment object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// The conversation it belongs to: an object moved or swapped in the
    /// bucket is refused, not served as another conversation's log.
    pub conversation: String,
    /// Each entry's `seq` and body, in increasing `seq`.
    pub entries: Vec<(i64, String)>,
}

/// What is wrong with bytes that should be a segment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SegmentFormatError {
    #[error("not a segment object")]
    Malformed,
    #[error("a segment's entries out of order or repeated")]
    Unordered,
}

impl Segment {
    pub fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("a segment serialises"))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, SegmentFormatError> {
        let segment: Self = serde_json::from_slice(bytes).map_err(|_| SegmentFormatError::Malformed)?;
        if !segment.entries.windows(2).all(|pair| pair[0].0 < pair[1].0) {
            return Err(SegmentFormatError::Unordered);
        }
        Ok(segment)
    }

    /// The body of entry `seq`, if the segment holds it.
    pub fn body(&self, seq: i64) -> Option<&str> {
        let at = self.entries.binary_search_by_key(&seq, |(s, _)| *s).ok()?;
        Some(&self.entries[at].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_reads_back_as_written_and_refuses_what_it_is_not() {
        let segment = Segment { conversation: "c".into(), entries: vec![(1, "{}".into()), (4, "\"x\"".into())] };
        let read = Segment::decode(&segment.encode()).unwrap();
        assert_eq!(read, segment);
        assert_eq!((read.body(4), read.body(2)), (Some("\"x\""), None));
        assert_eq!(Segment::decode(b"[]"), Err(SegmentFormatError::Malformed));
        let swapped = br#"{"conversation":"c","entries":[[4,"a"],[1,"b"]]}"#;
        assert_eq!(Segment::decode(swapped), Err(SegmentFormatError::Unordered));
        let extra = br#"{"conversation":"c","entries":[],"key":"k"}"#;
        assert_eq!(Segment::decode(extra), Err(SegmentFormatError::Malformed));
    }
}
