//! Scalable video (SVC): which layers of one VP9 stream a subscriber gets.
//!
//! A publisher coding SVC sends every spatial layer (each resolution) and
//! temporal layer (each frame rate) in one RTP stream, where simulcast
//! sends one stream per resolution. The subscriber's choice is then made
//! per packet, from the layer indices in its payload descriptor: packets
//! of higher layers than chosen are left out (`StreamRewriter::skip`
//! renumbers around them), and the last packet the subscriber gets of each
//! picture carries the RTP marker that the top layer's last packet had.
//!
//! Moving down is possible at any picture (a lower layer never refers to
//! a higher one). Moving up needs a point the higher layer starts fresh
//! from: for a spatial layer, a frame that refers to no earlier picture
//! (in practice a keyframe, which [`SvcSelector::wants_keyframe`] asks
//! for); for a temporal layer, a switching-up point, which encoders mark
//! every few frames.
//!
//! Nothing here allocates per packet: it runs for every video packet of
//! every subscriber.

use std::collections::HashMap;
use std::time::Instant;

use crate::layers::BitrateMeter;
use crate::video::SvcLayer;

/// A choice of layers: every spatial layer up to `spatial`, each with
/// every temporal layer up to `temporal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SvcLayers {
    pub spatial: u8,
    pub temporal: u8,
}

impl SvcLayers {
    /// Every layer there is: what a subscriber gets before it is allocated.
    pub const ALL: SvcLayers = SvcLayers { spatial: 7, temporal: 7 };

    fn includes(self, layer: &SvcLayer) -> bool {
        layer.spatial <= self.spatial && layer.temporal <= self.temporal
    }
}

/// What to do with one packet of an SVC stream for one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SvcVerdict {
    /// Send it; `ends_picture`: it is the last packet the subscriber gets
    /// of its picture, and carries the RTP marker.
    Forward { ends_picture: bool },
    /// A layer above what the subscriber gets now.
    Skip,
}

/// One subscriber's layers of one SVC stream: the ones it gets now, and
/// the ones the allocation chose, moved to at the next point that allows.
#[derive(Debug, Clone, Default)]
pub(crate) struct SvcSelector {
    target: Option<SvcLayers>,
    /// `None` until the stream (re)starts at a keyframe.
    current: Option<SvcLayers>,
}

impl SvcSelector {
    pub fn target(&self) -> SvcLayers {
        self.target.unwrap_or(SvcLayers::ALL)
    }

    pub fn set_target(&mut self, target: SvcLayers) {
        self.target = Some(target);
    }

    /// The forward paused: it restarts at a keyframe.
    pub fn reset(&mut self) {
        self.current = None;
    }

    /// The subscriber waits for a spatial layer that only a keyframe can
    /// start (temporal layers start at switching-up points, which come
    /// by themselves).
    pub fn wants_keyframe(&self) -> bool {
        self.current.is_some_and(|c| c.spatial < self.target().spatial)
    }

    /// Decides on one packet. `keyframe`: the packet starts a keyframe
    /// (where the forward may start, and every layer with it); `marker`:
    /// the packet's own RTP marker (the end of the whole picture).
    pub fn admit(&mut self, layer: &SvcLayer, keyframe: bool, marker: bool) -> SvcVerdict {
        let target = self.target();
        let current = match &mut self.current {
            Some(current) if !keyframe => current,
            // The forward only starts at a keyframe (the caller sees to
            // that), and a keyframe starts every layer afresh.
            slot => slot.insert(target),
        };
        // Switches happen where a picture begins (its lowest spatial
        // layer), so all of a picture's layers agree on its frame rate.
        if layer.starts_layer_frame && layer.spatial == 0 && !keyframe {
            current.spatial = current.spatial.min(target.spatial);
            current.temporal = current.temporal.min(target.temporal);
            if layer.switch_up && layer.temporal > current.temporal && layer.temporal <= target.temporal {
                current.temporal = layer.temporal;
            }
        }
        // A spatial layer the subscriber lacks starts where its frame
        // predicts only from the lower layer of the same picture.
        if layer.starts_layer_frame
            && !layer.inter_picture
            && layer.spatial == current.spatial.saturating_add(1)
            && layer.spatial <= target.spatial
            && layer.temporal <= current.temporal
        {
            current.spatial = layer.spatial;
        }
        if !current.includes(layer) {
            return SvcVerdict::Skip;
        }
        SvcVerdict::Forward { ends_picture: marker || (layer.ends_layer_frame && layer.spatial == current.spatial) }
    }
}

/// The bitrate of each layer of an SVC stream, as received.
#[derive(Debug, Clone, Default)]
pub(crate) struct SvcMeters {
    meters: HashMap<(u8, u8), BitrateMeter>,
}

impl SvcMeters {
    pub fn record(&mut self, layer: &SvcLayer, bytes: usize, now: Instant) {
        self.meters.entry((layer.spatial, layer.temporal)).or_insert_with(|| BitrateMeter::new(now)).record(bytes, now);
    }

    /// Whether the stream has more than one layer to choose from.
    pub fn is_scalable(&self) -> bool {
        self.meters.keys().any(|&(s, t)| s > 0 || t > 0)
    }

    /// The rungs a subscriber climbs, lowest first, each with its bitrate
    /// (its own layers and every layer under them): the lowest spatial
    /// layer at each frame rate, then each spatial layer above it at the
    /// full rate. Also returns how many rungs are the lowest resolution at
    /// a reduced frame rate (shown only when the bandwidth allows no more).
    pub fn ladder(&mut self, now: Instant) -> (Vec<(SvcLayers, u64)>, usize) {
        let mut bps: HashMap<(u8, u8), u64> = HashMap::with_capacity(self.meters.len());
        for (&layer, meter) in &mut self.meters {
            let measured = meter.bps(now);
            if measured > 0 {
                bps.insert(layer, measured);
            }
        }
        let top_spatial = bps.keys().map(|&(s, _)| s).max().unwrap_or(0);
        let top_temporal = bps.keys().map(|&(_, t)| t).max().unwrap_or(0);
        let rate = |rung: SvcLayers| -> u64 {
            bps.iter().filter(|(&(s, t), _)| s <= rung.spatial && t <= rung.temporal).map(|(_, b)| b).sum()
        };
        let rungs = (0..top_temporal)
            .map(|temporal| SvcLayers { spatial: 0, temporal })
            .chain((0..=top_spatial).map(|spatial| SvcLayers { spatial, temporal: top_temporal }));
        (rungs.map(|rung| (rung, rate(rung))).collect(), usize::from(top_temporal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn layer(spatial: u8, temporal: u8, starts: bool, ends: bool) -> SvcLayer {
        SvcLayer {
            spatial,
            temporal,
            starts_layer_frame: starts,
            ends_layer_frame: ends,
            inter_picture: true,
            switch_up: false,
        }
    }

    /// One picture of an L3 stream in temporal layer `temporal`: each
    /// spatial layer's frame in two packets; the marker on the last.
    fn picture(temporal: u8, key: bool) -> Vec<(SvcLayer, bool, bool)> {
        let mut packets = Vec::new();
        for spatial in 0..3 {
            for part in 0..2 {
                let mut l = layer(spatial, temporal, part == 0, part == 1);
                l.inter_picture = !key;
                l.switch_up = temporal > 0;
                packets.push((l, key && spatial == 0 && part == 0, spatial == 2 && part == 1));
            }
        }
        packets
    }

    fn run(selector: &mut SvcSelector, packets: &[(SvcLayer, bool, bool)]) -> Vec<(u8, u8, bool)> {
        packets
            .iter()
            .filter_map(|(l, key, marker)| match selector.admit(l, *key, *marker) {
                SvcVerdict::Forward { ends_picture } => Some((l.spatial, l.temporal, ends_picture)),
                SvcVerdict::Skip => None,
            })
            .collect()
    }

    #[test]
    fn a_subscriber_at_the_lowest_resolution_gets_its_layer_and_a_marker_on_it() {
        let mut s = SvcSelector::default();
        s.set_target(SvcLayers { spatial: 0, temporal: 2 });
        let got = run(&mut s, &picture(0, true));
        assert_eq!(got, vec![(0, 0, false), (0, 0, true)], "layer 0's end carries the marker");
    }

    #[test]
    fn moving_down_waits_for_the_next_picture_and_moving_up_for_a_keyframe() {
        let mut s = SvcSelector::default();
        s.set_target(SvcLayers { spatial: 2, temporal: 2 });
        assert_eq!(run(&mut s, &picture(0, true)).len(), 6);
        s.set_target(SvcLayers { spatial: 1, temporal: 2 });
        let got = run(&mut s, &picture(1, false));
        assert_eq!(got.iter().map(|p| p.0).collect::<Vec<_>>(), vec![0, 0, 1, 1]);
        assert!(got.last().unwrap().2, "layer 1 ends the picture now");
        s.set_target(SvcLayers { spatial: 2, temporal: 2 });
        assert!(s.wants_keyframe(), "layer 2 predicts from its own last picture, which the subscriber lacks");
        assert_eq!(run(&mut s, &picture(0, false)).len(), 4);
        assert_eq!(run(&mut s, &picture(0, true)).len(), 6, "the keyframe brings layer 2 back");
        assert!(!s.wants_keyframe());
    }

    #[test]
    fn temporal_layers_go_at_once_and_come_back_at_a_switching_up_point() {
        let mut s = SvcSelector::default();
        s.set_target(SvcLayers { spatial: 2, temporal: 2 });
        run(&mut s, &picture(0, true));
        s.set_target(SvcLayers { spatial: 2, temporal: 0 });
        assert!(run(&mut s, &picture(2, false)).is_empty(), "the top frame rate's frames are left out");
        assert_eq!(run(&mut s, &picture(0, false)).len(), 6);
        s.set_target(SvcLayers { spatial: 2, temporal: 2 });
        assert!(!s.wants_keyframe(), "no keyframe is needed for a frame rate");
        let mut not_a_switch = picture(1, false);
        not_a_switch.iter_mut().for_each(|p| p.0.switch_up = false);
        assert!(run(&mut s, &not_a_switch).is_empty());
        assert_eq!(run(&mut s, &picture(1, false)).len(), 6, "a switching-up point");
    }

    #[test]
    fn the_ladder_is_the_low_resolution_at_each_rate_then_each_resolution() {
        let now = Instant::now();
        let mut meters = SvcMeters::default();
        for s in 0..3u8 {
            for t in 0..3u8 {
                meters.record(&layer(s, t, true, true), 1000 * usize::from(s + 1), now);
            }
        }
        assert!(meters.is_scalable());
        let later = now + std::time::Duration::from_millis(1100);
        meters.record(&layer(0, 0, true, true), 1, later);
        let (rungs, reduced) = meters.ladder(later);
        let layers: Vec<(u8, u8)> = rungs.iter().map(|(l, _)| (l.spatial, l.temporal)).collect();
        assert_eq!(layers, vec![(0, 0), (0, 1), (0, 2), (1, 2), (2, 2)]);
        assert_eq!(reduced, 2);
        assert!(rungs.windows(2).all(|w| w[0].1 < w[1].1), "each rung costs more: {rungs:?}");
    }

    proptest! {
        /// Whatever the targets and the order they change in, a subscriber
        /// never gets a layer above what it gets now, only a keyframe
        /// raises its resolution, every picture it gets ends in a marker,
        /// and it reaches its target within two keyframes.
        #[test]
        fn layers_change_only_where_the_stream_allows(
            steps in proptest::collection::vec((0u8..3, 0u8..3, 0u8..3, any::<bool>(), any::<bool>()), 1..60),
        ) {
            let mut s = SvcSelector::default();
            let mut had = None::<SvcLayers>;
            let mut first = true;
            for (target_s, target_t, temporal, key, switch_up) in steps {
                s.set_target(SvcLayers { spatial: target_s, temporal: target_t });
                let key = key || first;
                first = false;
                // Keyframes are in the base frame rate.
                let temporal = if key { 0 } else { temporal };
                let mut pic = picture(temporal, key);
                pic.iter_mut().for_each(|p| p.0.switch_up = switch_up && temporal > 0);
                let got = run(&mut s, &pic);
                let top = got.iter().map(|p| p.0).max();
                if let (Some(top), Some(before)) = (top, had) {
                    prop_assert!(key || top <= before.spatial, "resolution raised without a keyframe");
                }
                if !got.is_empty() {
                    prop_assert!(got.last().unwrap().2, "the picture's last packet carries the marker");
                    prop_assert_eq!(got.iter().filter(|p| p.2).count(), 1);
                }
                if key {
                    prop_assert_eq!(top, Some(target_s), "a keyframe reaches the target");
                }
                had = s.current;
            }
        }
    }
}
