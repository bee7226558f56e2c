//! An H.264 frame as the browser's encoded transform hands it over: an
//! access unit in Annex B form (NAL units, each after a `00 00 01` or
//! `00 00 00 01` start code).
//!
//! Unlike VP8's, the sending browser's H.264 packetiser reads the frame
//! after the worker: it splits it at its start codes and sends each NAL
//! unit whole or in fragments. So an encrypted H.264 frame must still be
//! Annex B, and its ciphertext must never contain a start code. The
//! parameter sets (SPS, PPS) and the first slice's NAL header with the
//! start of its slice header stay readable: the receiving browser's
//! depacketiser needs them to tell keyframes apart and to check it has the
//! parameter sets an IDR picture refers to, and the SFU tells keyframes by
//! the NAL type. Everything after them is sealed, and the sealed bytes are
//! escaped as H.264 escapes its own payloads (emulation prevention: a
//! `03` after two zero bytes that a byte up to `03` follows).
//!
//! The depacketiser may rewrite start codes (it writes every NAL unit it
//! rebuilds after a four-byte one), so the clear part is authenticated as
//! its NAL units without their start codes ([`authenticated`]).

use std::ops::Range;

/// Slice-header bytes left readable after a slice's NAL header: enough for
/// `first_mb_in_slice`, `slice_type` and `pic_parameter_set_id` of a
/// frame's first slice (at most 16 bits between them there).
const SLICE_HEADER_CLEAR: usize = 2;

/// NAL unit types of coded slices: non-IDR and IDR pictures.
const SLICE_TYPES: [u8; 2] = [1, 5];

/// The NAL units of `frame`, each as the range of its bytes (header
/// included, start code and the zero before a four-byte start code not).
pub fn nal_units(frame: &[u8]) -> Vec<Range<usize>> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= frame.len() {
        if frame[i] == 0 && frame[i + 1] == 0 && frame[i + 2] == 1 {
            starts.push((i, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(n, &(_, begin))| {
            let end = match starts.get(n + 1) {
                // A four-byte start code's first zero is not the unit's.
                Some(&(code, _)) if code > begin && frame[code - 1] == 0 => code - 1,
                Some(&(code, _)) => code,
                None => frame.len(),
            };
            begin..end.max(begin)
        })
        .collect()
}

/// Where the readable part of an H.264 frame ends: after the first coded
/// slice's NAL header and the start of its slice header. `None` when the
/// frame holds no slice (nothing a decoder would show).
pub fn clear_len(frame: &[u8]) -> Option<usize> {
    // A start code at the very end opens an empty unit, which has no type.
    let slice = nal_units(frame)
        .into_iter()
        .find(|unit| !unit.is_empty() && SLICE_TYPES.contains(&(frame[unit.start] & 0x1f)))?;
    Some((slice.start + 1 + SLICE_HEADER_CLEAR).min(slice.end))
}

/// The readable part as it is authenticated: each NAL unit, its length
/// first, whatever start codes carried it.
pub fn authenticated(clear: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(clear.len() + 8);
    for unit in nal_units(clear) {
        out.extend_from_slice(&(unit.len() as u32).to_be_bytes());
        out.extend_from_slice(&clear[unit]);
    }
    out
}

/// Zero bytes that end `bytes` (at most two count).
pub fn trailing_zeros(bytes: &[u8]) -> usize {
    bytes.iter().rev().take(2).take_while(|b| **b == 0).count()
}

/// `bytes` with an emulation prevention byte (`03`) wherever two zero
/// bytes would be followed by a byte up to `03`, and after two zero bytes
/// at the end; `zeros` are the zero bytes right before `bytes` (from the
/// readable part), so no start code forms across the seam either.
pub fn escape(zeros: usize, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 64 + 2);
    let mut run = zeros;
    for &b in bytes {
        if run >= 2 && b <= 3 {
            out.push(3);
            run = 0;
        }
        out.push(b);
        run = if b == 0 { run + 1 } else { 0 };
    }
    if run >= 2 {
        out.push(3);
    }
    out
}

/// The inverse of [`escape`]: every `03` after two zero bytes goes.
pub fn unescape(zeros: usize, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut run = zeros;
    for &b in bytes {
        if run >= 2 && b == 3 {
            run = 0;
            continue;
        }
        out.push(b);
        run = if b == 0 { run + 1 } else { 0 };
    }
    out
}

/// Whether `bytes` (after `zeros` zero bytes) holds a start code.
#[cfg(test)]
fn has_start_code(zeros: usize, bytes: &[u8]) -> bool {
    let mut run = zeros;
    for &b in bytes {
        if run >= 2 && b == 1 {
            return true;
        }
        run = if b == 0 { run + 1 } else { 0 };
    }
    false
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An IDR access unit as an encoder writes it: SPS, PPS (three-byte
    /// start code), then a slice.
    pub(crate) fn idr_frame(picture: &[u8]) -> Vec<u8> {
        let sps = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8];
        let pps = [0x68, 0xce, 0x3c, 0x80];
        let slice = [&[0x65, 0x88, 0x84][..], picture].concat();
        [&[0, 0, 0, 1][..], &sps, &[0, 0, 1], &pps, &[0, 0, 0, 1], &slice].concat()
    }

    #[test]
    fn finds_nal_units_after_either_start_code() {
        let frame = idr_frame(&[0xaa, 0xbb]);
        let units: Vec<&[u8]> = nal_units(&frame).into_iter().map(|r| &frame[r]).collect();
        assert_eq!(units.len(), 3);
        assert_eq!(units[0][0], 0x67, "SPS");
        assert_eq!(units[1], [0x68, 0xce, 0x3c, 0x80], "the PPS without the next start code's zero");
        assert_eq!(units[2], [0x65, 0x88, 0x84, 0xaa, 0xbb], "the slice to the end");
        let slice_at = frame.len() - 5;
        assert_eq!(clear_len(&frame), Some(slice_at + 3), "NAL header and two slice-header bytes");
        assert_eq!(clear_len(&frame[..slice_at - 4]), None, "no slice: parameter sets only");
    }

    #[test]
    fn the_readable_part_is_authenticated_whatever_its_start_codes() {
        let frame = idr_frame(&[1, 2, 3]);
        let clear = &frame[..clear_len(&frame).unwrap()];
        // The receiving depacketiser writes four-byte start codes throughout.
        let rewritten: Vec<u8> =
            nal_units(clear).into_iter().flat_map(|r| [&[0u8, 0, 0, 1][..], &clear[r]].concat()).collect();
        assert_ne!(rewritten, clear);
        assert_eq!(authenticated(&rewritten), authenticated(clear));
        let mut changed = rewritten.clone();
        changed[5] ^= 1;
        assert_ne!(authenticated(&changed), authenticated(clear));
    }

    #[test]
    fn any_bytes_are_parsed_without_panicking() {
        // What a receiver is handed comes from the network: start codes
        // anywhere, at the very end, back to back, or none.
        let mut x = 7u32;
        let mut next = || {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as usize
        };
        for len in 0..400 {
            let frame: Vec<u8> = (0..len).map(|_| [0, 0, 1, 5, 0x65, 0x41, 3, 0xff][next() % 8]).collect();
            let units = nal_units(&frame);
            assert!(units.iter().all(|u| u.start <= u.end && u.end <= frame.len()));
            if let Some(clear) = clear_len(&frame) {
                assert!(clear <= frame.len());
                authenticated(&frame[..clear]);
            }
        }
        for frame in [&[0u8, 0, 1][..], &[0, 0, 0, 1], &[0, 0, 1, 0, 0, 1], &[0x65, 0, 0, 1]] {
            assert_eq!(clear_len(frame), None, "{frame:?}: no slice");
        }
    }

    #[test]
    fn escaping_leaves_no_start_code_and_comes_undone() {
        let cases: [&[u8]; 6] = [
            &[0, 0, 1, 0, 0, 0, 0, 0, 3, 0, 0, 2],
            &[0, 0],
            &[1, 0, 0, 3, 0, 0],
            &[0, 1, 2],
            &[],
            &[5, 0, 0, 0, 1, 0, 0, 3, 3],
        ];
        for bytes in cases {
            for zeros in 0..=2 {
                let escaped = escape(zeros, bytes);
                assert!(!has_start_code(zeros, &escaped), "{bytes:?} after {zeros} zeros: {escaped:?}");
                assert!(trailing_zeros(&escaped) < 2, "{escaped:?} ends clear of the next start code");
                assert_eq!(unescape(zeros, &escaped), bytes, "{bytes:?} after {zeros} zeros");
            }
        }
        // Every byte sequence: a pseudo-random walk heavy in zeros.
        let mut x = 1u32;
        let bytes: Vec<u8> = (0..20_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                [0, 0, 0, 1, 2, 3, 0xff][(x >> 16) as usize % 7]
            })
            .collect();
        let escaped = escape(1, &bytes);
        assert!(!has_start_code(1, &escaped));
        assert_eq!(unescape(1, &escaped), bytes);
    }
}
