//! One continuous outgoing RTP stream out of the incoming streams a
//! subscriber is switched between.
//!
//! A forwarded track has one SSRC towards its subscriber, but over time it
//! carries several incoming streams: the simulcast layers it moves between
//! at keyframes, and the same track again after it was off screen. Each
//! incoming stream has its own sequence numbers, RTP timestamps and VP8
//! picture ids. At every switch the rewriter continues all three from
//! where the outgoing stream left off, so the subscriber's jitter buffer
//! sees neither a gap to wait for nor a jump back to drop, and its decoder
//! sees frames in order.
//!
//! Within one incoming stream the subscriber may get only some packets
//! (an SVC stream's lower layers, `crate::svc`): each packet left out
//! moves the later ones one number down, so the subscriber sees no hole to
//! ask again for. A packet lost on the way in still leaves its hole, which
//! the publisher's retransmission fills.
//!
//! Sequence numbers are str0m's extended ones (64 bits, no wrap). The
//! outgoing stream begins in its first rollover period, whatever period
//! the publisher's stream is in: a receiver starts a new stream's SRTP
//! rollover counter at zero (RFC 3711 §3.3.1), so a subscriber who joins
//! after a publisher's 65 536th packet could otherwise decrypt nothing.

use std::collections::VecDeque;
use std::time::Instant;

/// What the rewriter needs of one incoming packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IncomingPacket {
    pub ssrc: u32,
    /// Extended sequence number.
    pub seq: u64,
    pub timestamp: u32,
    pub arrival: Instant,
    pub picture_id: Option<u16>,
    pub tl0_pic_idx: Option<u8>,
}

/// The same packet's place in the outgoing stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutgoingPacket {
    pub seq: u64,
    pub timestamp: u32,
    pub picture_id: Option<u16>,
    pub tl0_pic_idx: Option<u8>,
}

/// VP8's long picture id has 15 bits (RFC 7741 §4.2).
const PICTURE_ID_MASK: u16 = 0x7fff;

#[derive(Debug, Clone)]
pub(crate) struct StreamRewriter {
    /// RTP clock rate of the media, to carry elapsed time into timestamps.
    clock_hz: u32,
    mapping: Option<Mapping>,
    /// The packet furthest along the outgoing stream so far.
    furthest: Option<Furthest>,
    /// The packets of the current mapping left out on purpose.
    skipped: Skipped,
}

/// Packets of the current mapping left out on purpose, recent ones by
/// number and older ones counted, so a late packet (a retransmission) can
/// still be placed where its neighbours put it.
#[derive(Debug, Clone, Default)]
struct Skipped {
    recent: VecDeque<u64>,
    /// Skipped packets forgotten by number, all before `recent`.
    earlier: u64,
    /// The last packet forgotten: anything before it can no longer be placed.
    forgotten_up_to: Option<u64>,
    /// The furthest incoming packet of the mapping, forwarded or skipped.
    furthest_in: Option<u64>,
}

/// How far back (in packets) a late packet can still be placed among
/// skipped ones: well past the subscriber's resend window.
const SKIPPED_REMEMBERED: u64 = 1024;

impl Skipped {
    /// How many packets before `seq` were left out; `None` when `seq` is
    /// too old to tell, or was left out itself (its retransmission, come
    /// after the subscriber moved up to its layer, has no place).
    fn before(&self, seq: u64) -> Option<u64> {
        if self.forgotten_up_to.is_some_and(|f| seq <= f) {
            return None;
        }
        let at = self.recent.partition_point(|&s| s < seq);
        if self.recent.get(at) == Some(&seq) {
            return None;
        }
        Some(self.earlier + at as u64)
    }

    fn saw(&mut self, seq: u64) {
        let furthest = self.furthest_in.map_or(seq, |f| f.max(seq));
        self.furthest_in = Some(furthest);
        while let Some(&oldest) = self.recent.front().filter(|&&s| s + SKIPPED_REMEMBERED < furthest) {
            self.recent.pop_front();
            self.earlier += 1;
            self.forgotten_up_to = Some(oldest);
        }
    }
}

/// How the incoming stream being forwarded maps onto the outgoing one.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    ssrc: u32,
    /// Packets before this one belong to the time before the switch: their
    /// outgoing numbers are already taken.
    first_seq: u64,
    seq_offset: u64,
    timestamp_offset: u32,
    picture_id_offset: u16,
    tl0_offset: u8,
}

#[derive(Debug, Clone, Copy)]
struct Furthest {
    seq: u64,
    timestamp: u32,
    arrival: Instant,
    picture_id: Option<u16>,
    tl0_pic_idx: Option<u8>,
}

impl StreamRewriter {
    pub fn new(clock_hz: u32) -> Self {
        Self { clock_hz, mapping: None, furthest: None, skipped: Skipped::default() }
    }

    /// The forward stopped (off screen, or waiting for a keyframe): the
    /// next packet starts a new mapping, even from the same stream, so the
    /// packets skipped meanwhile leave no hole.
    pub fn pause(&mut self) {
        self.mapping = None;
    }

    /// Places `packet` in the outgoing stream; `None` for a packet that
    /// came late from before a switch and has no place left. Every packet
    /// given is forwarded: one from another SSRC than the last is a switch
    /// (the caller keeps other layers' packets away).
    pub fn rewrite(&mut self, packet: &IncomingPacket) -> Option<OutgoingPacket> {
        let mapping = match self.mapping {
            Some(m) if m.ssrc == packet.ssrc => m,
            _ => {
                self.skipped = Skipped::default();
                *self.mapping.insert(self.switch_to(packet))
            }
        };
        if packet.seq < mapping.first_seq {
            return None;
        }
        let skipped = self.skipped.before(packet.seq)?;
        self.skipped.saw(packet.seq);
        let out = OutgoingPacket {
            seq: packet.seq.wrapping_add(mapping.seq_offset).wrapping_sub(skipped),
            timestamp: packet.timestamp.wrapping_add(mapping.timestamp_offset),
            picture_id: packet.picture_id.map(|p| p.wrapping_add(mapping.picture_id_offset) & PICTURE_ID_MASK),
            tl0_pic_idx: packet.tl0_pic_idx.map(|t| t.wrapping_add(mapping.tl0_offset)),
        };
        if self.furthest.is_none_or(|f| out.seq > f.seq) {
            self.furthest = Some(Furthest {
                seq: out.seq,
                timestamp: out.timestamp,
                arrival: packet.arrival,
                picture_id: out.picture_id.or(self.furthest.and_then(|f| f.picture_id)),
                tl0_pic_idx: out.tl0_pic_idx.or(self.furthest.and_then(|f| f.tl0_pic_idx)),
            });
        }
        Some(out)
    }

    /// Leaves `packet` out of the outgoing stream (a layer the subscriber
    /// does not get): the packets after it move one number down. A packet
    /// whose number is already passed (a late retransmission) keeps the
    /// place left for it, empty.
    pub fn skip(&mut self, packet: &IncomingPacket) {
        let Some(mapping) = self.mapping.filter(|m| m.ssrc == packet.ssrc) else { return };
        if packet.seq < mapping.first_seq || self.skipped.furthest_in.is_some_and(|f| packet.seq <= f) {
            return;
        }
        self.skipped.recent.push_back(packet.seq);
        self.skipped.saw(packet.seq);
    }

    /// A mapping that puts `first` right after the furthest packet sent,
    /// as much later in media time as it arrived later.
    fn switch_to(&self, first: &IncomingPacket) -> Mapping {
        let Some(last) = self.furthest else {
            // The first packet ever keeps its 16-bit number, in the first
            // rollover period.
            return Mapping {
                ssrc: first.ssrc,
                first_seq: first.seq,
                seq_offset: (first.seq & 0xffff).wrapping_sub(first.seq),
                timestamp_offset: 0,
                picture_id_offset: 0,
                tl0_offset: 0,
            };
        };
        let elapsed = first.arrival.saturating_duration_since(last.arrival);
        let ticks = (elapsed.as_micros() * u128::from(self.clock_hz) / 1_000_000).clamp(1, u128::from(u32::MAX / 2));
        let timestamp = last.timestamp.wrapping_add(ticks as u32);
        let offset_to = |next: Option<u16>, from: Option<u16>| match (next, from) {
            (Some(next), Some(from)) => next.wrapping_sub(from),
            _ => 0,
        };
        Mapping {
            ssrc: first.ssrc,
            first_seq: first.seq,
            seq_offset: (last.seq + 1).wrapping_sub(first.seq),
            timestamp_offset: timestamp.wrapping_sub(first.timestamp),
            picture_id_offset: offset_to(last.picture_id.map(|p| p.wrapping_add(1)), first.picture_id),
            tl0_offset: match (last.tl0_pic_idx, first.tl0_pic_idx) {
                (Some(last), Some(first)) => last.wrapping_add(1).wrapping_sub(first),
                _ => 0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn packet(ssrc: u32, seq: u64, timestamp: u32, at_ms: u64, start: Instant) -> IncomingPacket {
        IncomingPacket {
            ssrc,
            seq,
            timestamp,
            arrival: start + Duration::from_millis(at_ms),
            picture_id: Some((seq / 3) as u16 & PICTURE_ID_MASK),
            tl0_pic_idx: None,
        }
    }

    #[test]
    fn the_first_stream_keeps_its_numbers() {
        let start = Instant::now();
        let mut rw = StreamRewriter::new(90_000);
        let p = packet(7, 1000, 5000, 0, start);
        let out = rw.rewrite(&p).unwrap();
        assert_eq!((out.seq, out.timestamp, out.picture_id), (1000, 5000, p.picture_id));
        let out = rw.rewrite(&packet(7, 1001, 5000, 1, start)).unwrap();
        assert_eq!(out.seq, 1001);
    }

    #[test]
    fn a_late_subscriber_starts_in_the_first_rollover_period() {
        let start = Instant::now();
        let mut rw = StreamRewriter::new(90_000);
        // The publisher's stream is in its third rollover period.
        let first = rw.rewrite(&packet(7, 2 * 65_536 + 65_535, 5000, 0, start)).unwrap();
        assert_eq!(first.seq, 65_535);
        let next = rw.rewrite(&packet(7, 3 * 65_536, 5000, 1, start)).unwrap();
        assert_eq!(next.seq, 65_536, "and rolls over with it");
    }

    #[test]
    fn a_switch_continues_where_the_last_stream_left_off() {
        let start = Instant::now();
        let mut rw = StreamRewriter::new(90_000);
        for i in 0..10 {
            rw.rewrite(&packet(1, 100 + i, 3000 * i as u32, i * 33, start)).unwrap();
        }
        let last = rw.rewrite(&packet(1, 110, 30_000, 330, start)).unwrap();
        // Layer 2's keyframe arrives 10 ms later, with numbers of its own.
        let mut first = packet(2, 60_000, 4_000_000_000, 340, start);
        first.picture_id = Some(9000);
        let out = rw.rewrite(&first).unwrap();
        assert_eq!(out.seq, last.seq + 1);
        assert_eq!(out.timestamp, last.timestamp + 900, "10 ms at 90 kHz");
        assert_eq!(out.picture_id, Some(last.picture_id.unwrap() + 1));
        // The new stream keeps its own spacing from there on.
        let mut next = packet(2, 60_001, 4_000_003_000, 373, start);
        next.picture_id = Some(9001);
        let out_next = rw.rewrite(&next).unwrap();
        assert_eq!((out_next.seq, out_next.timestamp), (out.seq + 1, out.timestamp + 3000));
        assert_eq!(out_next.picture_id, Some(out.picture_id.unwrap() + 1));
    }

    #[test]
    fn packets_from_before_a_switch_have_no_place() {
        let start = Instant::now();
        let mut rw = StreamRewriter::new(90_000);
        rw.rewrite(&packet(1, 10, 0, 0, start)).unwrap();
        rw.rewrite(&packet(2, 500, 0, 5, start)).unwrap();
        assert_eq!(rw.rewrite(&packet(2, 499, 0, 6, start)), None, "the new stream's earlier packet");
        let resent = rw.rewrite(&packet(2, 501, 0, 7, start)).unwrap();
        assert_eq!(resent.seq, 12);
    }

    #[test]
    fn a_paused_stream_resumes_without_a_hole() {
        let start = Instant::now();
        let mut rw = StreamRewriter::new(90_000);
        rw.rewrite(&packet(1, 10, 0, 0, start)).unwrap();
        rw.pause();
        // 90 packets went by off screen; the next keyframe follows at once.
        let out = rw.rewrite(&packet(1, 100, 270_000, 3000, start)).unwrap();
        assert_eq!(out.seq, 11);
        assert_eq!(out.timestamp, 270_000, "3 s later at 90 kHz");
    }

    #[test]
    fn the_tl0_index_and_picture_id_wrap() {
        let start = Instant::now();
        let mut rw = StreamRewriter::new(90_000);
        let mut p = packet(1, 10, 0, 0, start);
        (p.picture_id, p.tl0_pic_idx) = (Some(PICTURE_ID_MASK), Some(255));
        rw.rewrite(&p).unwrap();
        let mut next = packet(2, 3, 0, 1, start);
        (next.picture_id, next.tl0_pic_idx) = (Some(40), Some(7));
        let out = rw.rewrite(&next).unwrap();
        assert_eq!((out.picture_id, out.tl0_pic_idx), (Some(0), Some(0)));
    }

    #[test]
    fn skipped_packets_leave_no_hole_and_late_ones_keep_their_place() {
        let start = Instant::now();
        let mut rw = StreamRewriter::new(90_000);
        assert_eq!(rw.rewrite(&packet(1, 10, 0, 0, start)).unwrap().seq, 10);
        rw.skip(&packet(1, 11, 0, 1, start));
        rw.skip(&packet(1, 12, 0, 2, start));
        assert_eq!(rw.rewrite(&packet(1, 13, 0, 3, start)).unwrap().seq, 11);
        // 14 is lost on the way in; 15 is skipped, 16 forwarded.
        rw.skip(&packet(1, 15, 0, 5, start));
        assert_eq!(rw.rewrite(&packet(1, 16, 0, 6, start)).unwrap().seq, 13);
        // 14's retransmission fills the hole left for it.
        assert_eq!(rw.rewrite(&packet(1, 14, 0, 7, start)).unwrap().seq, 12);
        // A late packet of a skipped layer changes nothing.
        rw.skip(&packet(1, 14, 0, 8, start));
        assert_eq!(rw.rewrite(&packet(1, 17, 0, 9, start)).unwrap().seq, 14);
    }

    #[test]
    fn packets_too_old_to_place_among_skipped_ones_are_dropped() {
        let start = Instant::now();
        let mut rw = StreamRewriter::new(90_000);
        rw.rewrite(&packet(1, 0, 0, 0, start)).unwrap();
        for seq in 2..2000 {
            rw.skip(&packet(1, seq, 0, 1, start));
        }
        let out = rw.rewrite(&packet(1, 2000, 0, 2, start)).unwrap();
        assert_eq!(out.seq, 2, "1998 packets left out: the next is right after 1's place");
        assert_eq!(rw.rewrite(&packet(1, 1, 0, 3, start)), None, "1 is too far back to tell");
        assert_eq!(rw.rewrite(&packet(1, 1990, 0, 3, start)), None, "a packet left out has no place later");
    }

    proptest! {
        /// Within one stream, whatever is skipped and however packets are
        /// reordered on the way in: forwarded packets keep their order,
        /// never share a number, and, once every packet has arrived, fill a
        /// range with no hole.
        #[test]
        fn skipping_keeps_the_stream_continuous(
            plan in proptest::collection::vec(any::<bool>(), 2..200),
            late in proptest::collection::vec(0usize..200, 0..20),
        ) {
            let start = Instant::now();
            let mut rw = StreamRewriter::new(90_000);
            // The first packet starts the stream; `plan` says which others
            // are skipped. Late packets arrive after their successor.
            let mut order: Vec<usize> = (0..plan.len()).collect();
            for l in late {
                let i = 1 + l % (plan.len() - 1);
                if i + 1 < order.len() { order.swap(i, i + 1); }
            }
            let mut placed = Vec::new();
            for &i in &order {
                let p = packet(1, 1000 + i as u64, 0, i as u64, start);
                if i > 0 && plan[i] {
                    rw.skip(&p);
                } else if let Some(out) = rw.rewrite(&p) {
                    placed.push((i, out.seq));
                }
            }
            placed.sort();
            let seqs: Vec<u64> = placed.iter().map(|p| p.1).collect();
            prop_assert!(seqs.windows(2).all(|w| w[0] < w[1]), "order kept: {:?}", placed);
            let in_order = order.windows(2).all(|w| w[0] < w[1]);
            if in_order {
                prop_assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "no hole: {:?}", placed);
            }
        }
    }

    proptest! {
        /// Whatever the switches and however packets are reordered within
        /// a stream, the outgoing sequence numbers are never reused, and in
        /// the order packets were sent by each source they stay in order.
        #[test]
        fn outgoing_numbers_are_unique_and_ordered(
            segments in proptest::collection::vec((0u32..3, 1usize..20, 0u64..1_000_000, any::<u32>()), 1..12),
            swaps in proptest::collection::vec(0usize..200, 0..40),
        ) {
            let start = Instant::now();
            let mut rw = StreamRewriter::new(90_000);
            let mut seen = std::collections::HashSet::new();
            let mut last_out: Option<OutgoingPacket> = None;
            let mut clock = 0u64;
            for (ssrc, len, seq0, ts0) in segments {
                let mut packets: Vec<IncomingPacket> = (0..len as u64)
                    .map(|i| { clock += 5; IncomingPacket {
                        ssrc, seq: seq0 + i, timestamp: ts0.wrapping_add(i as u32 * 3000),
                        arrival: start + Duration::from_millis(clock), picture_id: Some((seq0 + i) as u16 & PICTURE_ID_MASK), tl0_pic_idx: None,
                    }})
                    .collect();
                // Reorder, but a switch always starts on the segment's first packet.
                for s in &swaps {
                    let (a, b) = (1 + s % len.max(1), 1 + (s / 7) % len.max(1));
                    if a < len && b < len { packets.swap(a, b); }
                }
                let first_out = rw.rewrite(&packets[0]).expect("a switch's first packet is placed");
                if let Some(last) = last_out {
                    prop_assert!(first_out.seq > last.seq, "a switch goes forward");
                    prop_assert_ne!(first_out.timestamp, last.timestamp);
                }
                prop_assert!(seen.insert(first_out.seq));
                let mut furthest = first_out;
                for p in &packets[1..] {
                    let out = rw.rewrite(p).expect("the same stream's packets are placed");
                    prop_assert!(seen.insert(out.seq), "seq {} reused", out.seq);
                    prop_assert_eq!(out.seq - first_out.seq, p.seq - packets[0].seq);
                    if out.seq > furthest.seq { furthest = out; }
                }
                last_out = Some(furthest);
                rw.pause();
            }
        }
    }
}
