//! An AV1 frame as the browser's encoded transform hands it over: a
//! temporal unit's OBUs (open bitstream units), each a header byte, an
//! extension byte when the header says so (the OBU's temporal and spatial
//! layer), a size (LEB128) when the header says so, and a payload.
//!
//! Like H.264's, the sending browser's AV1 packetiser reads the frame after
//! the worker: it walks the OBUs by their headers and sizes, and drops the
//! ones RTP does not carry (temporal delimiters, tile lists, padding). The
//! receiving depacketiser writes every OBU back with a size field. So a
//! sealed AV1 frame is still a sequence of OBUs: each one's header,
//! extension and size stay readable, its payload is sealed in place, and
//! the SFrame header and tag travel in one more OBU at the end, a metadata
//! OBU of a type AV1 leaves to private use ([`SEALED_METADATA_TYPE`]),
//! which the receiving worker takes off before the decoder sees the frame.
//! What stays readable is what the RTP dependency descriptor tells anyway:
//! which OBUs there are, their sizes and layers.
//!
//! The OBUs are authenticated by their headers (the has-size bit aside,
//! which the depacketiser sets), extensions and payload lengths
//! ([`authenticated`]), so none can be changed, added, dropped or resized.

/// OBU types (AV1 §6.2.2).
const TEMPORAL_DELIMITER: u8 = 2;
const METADATA: u8 = 5;
const TILE_LIST: u8 = 8;
const PADDING: u8 = 15;

const FORBIDDEN: u8 = 0x80;
const HAS_EXTENSION: u8 = 0x04;
const HAS_SIZE: u8 = 0x02;

/// The `metadata_type` of the OBU that carries a sealed frame's SFrame
/// header and tag: the first of those AV1 leaves unregistered, for private
/// use (6 to 31), which decoders skip.
pub const SEALED_METADATA_TYPE: u8 = 6;

/// A LEB128 value takes at most eight bytes in AV1 (§4.10.5).
const LEB128_MAX_BYTES: usize = 8;

/// One OBU of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Obu<'a> {
    pub header: u8,
    pub extension: Option<u8>,
    pub payload: &'a [u8],
}

impl Obu<'_> {
    pub fn kind(&self) -> u8 {
        (self.header >> 3) & 0x0f
    }

    /// Whether the browser's packetiser sends this OBU (RTP payload format
    /// for AV1, §5: temporal delimiters, tile lists and padding it drops).
    pub fn is_carried(&self) -> bool {
        !matches!(self.kind(), TEMPORAL_DELIMITER | TILE_LIST | PADDING)
    }

    /// The OBU with `payload`, written with a size field as the receiving
    /// depacketiser writes it.
    fn write(&self, payload: &[u8], out: &mut Vec<u8>) {
        out.push(self.header | HAS_SIZE);
        out.extend(self.extension);
        write_leb128(payload.len(), out);
        out.extend_from_slice(payload);
    }
}

/// The OBUs of `frame`; `None` when it is not a sequence of OBUs (a size
/// past the end, a forbidden bit set, a truncated header). An OBU without
/// a size field runs to the end of the frame.
pub fn obus(frame: &[u8]) -> Option<Vec<Obu<'_>>> {
    let mut found = Vec::new();
    let mut rest = frame;
    while let Some((&header, after)) = rest.split_first() {
        if header & FORBIDDEN != 0 {
            return None;
        }
        let (extension, after) = match header & HAS_EXTENSION != 0 {
            true => after.split_first().map(|(e, a)| (Some(*e), a))?,
            false => (None, after),
        };
        let (payload, after) = match header & HAS_SIZE != 0 {
            true => {
                let (len, used) = read_leb128(after)?;
                let body = &after[used..];
                body.split_at_checked(usize::try_from(len).ok()?)?
            }
            false => (after, &[][..]),
        };
        found.push(Obu { header, extension, payload });
        rest = after;
    }
    Some(found)
}

fn read_leb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().take(LEB128_MAX_BYTES).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// `value` as LEB128 in as few bytes as it takes, as OBU sizes are written.
pub fn write_leb128(mut value: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// What a sealed frame authenticates of its OBUs: each one's header (the
/// has-size bit masked), extension and payload length.
pub fn authenticated(obus: &[Obu<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(obus.len() * 6);
    for obu in obus {
        out.push(obu.header & !HAS_SIZE);
        out.extend(obu.extension);
        out.extend_from_slice(&(obu.payload.len() as u32).to_be_bytes());
    }
    out
}

/// The payloads of `obus` back to back: what is sealed.
pub fn payloads(obus: &[Obu<'_>]) -> Vec<u8> {
    obus.iter().flat_map(|o| o.payload).copied().collect()
}

/// `obus` written again with their payloads taken in turn from `bytes`
/// (their sealed or opened form, as long as [`payloads`]), each with a size
/// field, then `trailer` as the sealed-frame metadata OBU when given.
pub fn assemble(obus: &[Obu<'_>], bytes: &[u8], trailer: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + obus.len() * 4 + trailer.map_or(0, |t| t.len() + 4));
    let mut at = 0;
    for obu in obus {
        let len = obu.payload.len();
        obu.write(&bytes[at..at + len], &mut out);
        at += len;
    }
    if let Some(trailer) = trailer {
        let metadata = Obu { header: METADATA << 3, extension: None, payload: &[] };
        metadata.write(&[&[SEALED_METADATA_TYPE][..], trailer].concat(), &mut out);
    }
    out
}

/// Splits a sealed frame's OBUs into those it carries and the trailer's
/// SFrame header and tag; `None` when the last OBU is no sealed-frame
/// metadata.
pub fn split_trailer<'a, 'f>(obus: &'a [Obu<'f>]) -> Option<(&'a [Obu<'f>], &'f [u8])> {
    let (last, carried) = obus.split_last()?;
    match last.payload.split_first() {
        Some((&SEALED_METADATA_TYPE, trailer)) if last.kind() == METADATA => Some((carried, trailer)),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A keyframe's temporal unit as an encoder writes it: a temporal
    /// delimiter, a sequence header and a frame OBU whose size field is
    /// left out (it runs to the end).
    pub(crate) fn keyframe(picture: &[u8]) -> Vec<u8> {
        let sequence_header = [0x00, 0x00, 0x00, 0x02, 0xaf, 0xff, 0x9b, 0x5f, 0x30, 0x08];
        let mut frame = vec![0x12, 0x00, 0x0a, sequence_header.len() as u8];
        frame.extend_from_slice(&sequence_header);
        frame.push(0x30); // OBU_FRAME, no size field
        frame.extend_from_slice(picture);
        frame
    }

    #[test]
    fn walks_obus_with_and_without_size_fields() {
        let frame = keyframe(&[1, 2, 3]);
        let found = obus(&frame).unwrap();
        assert_eq!(found.iter().map(Obu::kind).collect::<Vec<_>>(), [2, 1, 6]);
        assert!(!found[0].is_carried() && found[1].is_carried() && found[2].is_carried());
        assert_eq!(found[2].payload, [1, 2, 3], "the last OBU runs to the end");
        // An extension byte (temporal id 1, spatial id 0) and a two-byte size.
        let layered = [&[0x36, 0x20, 0x80, 0x01][..], &[7u8; 128]].concat();
        let found = obus(&layered).unwrap();
        assert_eq!((found[0].extension, found[0].payload.len()), (Some(0x20), 128));
    }

    #[test]
    fn what_is_no_obu_sequence_is_refused_without_panicking() {
        for bad in [&[0x32, 0x05, 1, 2][..], &[0x80], &[0x34], &[0x32, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]]
        {
            assert_eq!(obus(bad), None, "{bad:?}");
        }
        assert_eq!(obus(&[]), Some(vec![]));
        let mut x = 3u32;
        for len in 0..400 {
            let frame: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    [0x32, 0x12, 0x00, 0x0a, 0x30, 0x34, 0x2a, 0x06, 0x81, 0xff][(x >> 16) as usize % 10]
                })
                .collect();
            if let Some(found) = obus(&frame) {
                let total: usize = found.iter().map(|o| o.payload.len()).sum();
                assert!(total <= frame.len());
                authenticated(&found);
                split_trailer(&found);
            }
        }
    }

    #[test]
    fn sizes_are_written_as_the_depacketiser_writes_them() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 1 << 21] {
            let mut out = Vec::new();
            write_leb128(len, &mut out);
            assert_eq!(read_leb128(&out), Some((len as u64, out.len())), "{len}");
        }
        let frame = keyframe(&[9; 200]);
        let found = obus(&frame).unwrap();
        let written = assemble(&found, &payloads(&found), None);
        let again = obus(&written).unwrap();
        assert!(again.iter().all(|o| o.header & HAS_SIZE != 0));
        assert_eq!(authenticated(&again), authenticated(&found), "the has-size bit is not authenticated");
        assert_eq!(payloads(&again), payloads(&found));
    }
}
