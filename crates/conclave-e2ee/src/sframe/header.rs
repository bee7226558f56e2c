//! The SFrame header (RFC 9605 §4.3): one config byte `X K(3) Y C(3)`,
//! then KID and CTR in as few big-endian bytes as they need (values below 8
//! fit in the config byte itself).

use super::SframeError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kid: u64,
    pub ctr: u64,
}

/// Bytes needed for `v` big-endian, at least one.
fn byte_len(v: u64) -> usize {
    (8 - (v.leading_zeros() as usize / 8)).max(1)
}

impl Header {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut config = 0u8;
        let kid_len = (self.kid >= 8).then(|| byte_len(self.kid));
        let ctr_len = (self.ctr >= 8).then(|| byte_len(self.ctr));
        match kid_len {
            Some(n) => config |= 0x80 | (((n - 1) as u8) << 4),
            None => config |= (self.kid as u8) << 4,
        }
        match ctr_len {
            Some(n) => config |= 0x08 | (n - 1) as u8,
            None => config |= self.ctr as u8,
        }
        out.push(config);
        if let Some(n) = kid_len {
            out.extend_from_slice(&self.kid.to_be_bytes()[8 - n..]);
        }
        if let Some(n) = ctr_len {
            out.extend_from_slice(&self.ctr.to_be_bytes()[8 - n..]);
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(17);
        self.encode(&mut out);
        out
    }

    /// Parses a header; returns it and its length in bytes.
    pub fn decode(bytes: &[u8]) -> Result<(Self, usize), SframeError> {
        let config = *bytes.first().ok_or(SframeError::MalformedHeader)?;
        let mut at = 1;
        let mut read = |extended: bool, low: u8| -> Result<u64, SframeError> {
            if !extended {
                return Ok(u64::from(low));
            }
            let n = usize::from(low) + 1;
            let field = bytes.get(at..at + n).ok_or(SframeError::MalformedHeader)?;
            at += n;
            Ok(field.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b)))
        };
        let kid = read(config & 0x80 != 0, (config >> 4) & 0x07)?;
        let ctr = read(config & 0x08 != 0, config & 0x07)?;
        Ok((Self { kid, ctr }, at))
    }
}
