//! Simulcast: which layer of each video a subscriber gets.
//!
//! A subscriber asks for a quality per tile (the size it draws the video
//! at); its bandwidth estimate caps the total. Every video gets at least
//! its lowest layer, then the budget upgrades videos in order of priority
//! (screen shares, then larger tiles) as far as each asked for.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use conclave_proto::media::Quality;

/// What one forwarded video needs to decide its layer.
#[derive(Debug, Clone)]
pub struct LayerWant {
    /// Measured bitrate of each layer, lowest first (bits per second).
    pub layer_bps: Vec<u64>,
    pub quality: Quality,
    /// Screen shares are read, not glanced at: upgraded first.
    pub is_screen: bool,
    /// How many of the lowest layers are the lowest resolution at a reduced
    /// frame rate (an SVC stream's temporal layers): taken only when the
    /// budget allows no more, never asked for.
    pub reduced_rates: usize,
}

impl LayerWant {
    /// The layer index its quality asks for.
    pub fn wanted(&self) -> usize {
        self.reduced_rates + wanted_index(self.quality, self.layer_bps.len().saturating_sub(self.reduced_rates))
    }
}

/// The layer index a quality asks for, among `layers` layers.
pub fn wanted_index(quality: Quality, layers: usize) -> usize {
    let top = layers.saturating_sub(1);
    match quality {
        Quality::Low => 0,
        Quality::Medium => top.min(1),
        Quality::High => top,
    }
}

/// Chooses a layer index for each want within `budget_bps` (no budget: no cap).
pub fn allocate(budget_bps: Option<u64>, wants: &[LayerWant]) -> Vec<usize> {
    let mut chosen = vec![0; wants.len()];
    let Some(budget) = budget_bps else {
        return wants.iter().map(LayerWant::wanted).collect();
    };
    let mut spent: u64 = wants.iter().map(|w| w.layer_bps.first().copied().unwrap_or(0)).sum();
    let mut order: Vec<usize> = (0..wants.len()).collect();
    order.sort_by_key(|&i| (!wants[i].is_screen, std::cmp::Reverse(wants[i].quality), i));
    for i in order {
        let want = &wants[i];
        let target = want.wanted();
        while chosen[i] < target {
            let current = want.layer_bps[chosen[i]];
            let next = want.layer_bps[chosen[i] + 1];
            let extra = next.saturating_sub(current);
            if spent + extra > budget {
                break;
            }
            spent += extra;
            chosen[i] += 1;
        }
    }
    chosen
}

/// When a video may move up a layer again. A step down the bandwidth
/// estimate forced holds it down a while, or a link at its limit would
/// flap; and each move costs a keyframe, the frame most likely to come
/// late on a lossy link (it has the most packets to lose), so an upgrade
/// the estimate could not keep makes the next wait twice as long.
#[derive(Debug, Clone, Default)]
pub struct Upgrades {
    stepped_down: Option<Instant>,
    upgraded: Option<Instant>,
    /// Upgrades in a row that a forced step down soon undid.
    failed: u32,
}

/// An upgrade the estimate keeps this long was not a failed one.
const UPGRADE_PROVEN: Duration = Duration::from_secs(20);
/// The hold doubles at most this many times (8 s becomes 64 s).
const MOST_FAILED_UPGRADES: u32 = 3;

impl Upgrades {
    /// Whether the video may move to another layer now (`upgrade`: a
    /// higher one; `capped`: a lower one because the estimate forced it),
    /// `hold` being how long a first upgrade waits after a forced step down.
    pub fn may_retarget(&mut self, upgrade: bool, capped: bool, now: Instant, hold: Duration) -> bool {
        if upgrade {
            let hold = hold * 2u32.pow(self.failed);
            if self.stepped_down.is_some_and(|t| now.saturating_duration_since(t) < hold) {
                return false;
            }
            self.upgraded = Some(now);
        } else if capped {
            self.stepped_down = Some(now);
            let undone = self.upgraded.is_some_and(|t| now.saturating_duration_since(t) < UPGRADE_PROVEN);
            self.failed = if undone { (self.failed + 1).min(MOST_FAILED_UPGRADES) } else { 0 };
        }
        true
    }
}

/// Orders rids low to high: the conventional names first (`q`/`h`/`f`,
/// `l`/`m`/`h`), otherwise the order the sender listed them in.
pub fn rank(rid: &str, listed_at: usize) -> (usize, usize) {
    let rank = match rid {
        "q" | "l" | "low" => 0,
        "h" | "m" | "mid" => 1,
        "f" | "high" | "full" => 2,
        _ => 3,
    };
    (rank, listed_at)
}

/// Bits per second of one incoming layer over a sliding window, and the
/// packets per second it sends while it sends.
#[derive(Debug, Clone)]
pub struct BitrateMeter {
    window_start: Instant,
    bytes: u64,
    packets: u64,
    last_bps: u64,
    /// Packets per second of the latest windows that had any, newest last:
    /// a layer paused at its encoder sends that many again when resumed.
    sending_pps: VecDeque<u64>,
}

const WINDOW: Duration = Duration::from_millis(1000);
/// Windows the packet rate is remembered over: a window a layer paused or
/// resumed in measures only part of its rate, so the highest of the last
/// few stands for it.
const PPS_WINDOWS: usize = 5;

impl BitrateMeter {
    pub fn new(now: Instant) -> Self {
        Self { window_start: now, bytes: 0, packets: 0, last_bps: 0, sending_pps: VecDeque::new() }
    }

    pub fn record(&mut self, bytes: usize, now: Instant) {
        self.roll(now);
        self.bytes += bytes as u64;
        self.packets += 1;
    }

    /// The rate of the last full window (or of the current one once it is longer).
    pub fn bps(&mut self, now: Instant) -> u64 {
        self.roll(now);
        self.last_bps
    }

    /// Packets per second while the layer sends (also while it is paused:
    /// what it sent before); `None` until a window of it is measured.
    pub fn sending_pps(&mut self, now: Instant) -> Option<u64> {
        self.roll(now);
        self.sending_pps.iter().max().copied()
    }

    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= WINDOW {
            let millis = (elapsed.as_millis() as u64).max(1);
            self.last_bps = self.bytes * 8 * 1000 / millis;
            if self.packets > 0 {
                if self.sending_pps.len() == PPS_WINDOWS {
                    self.sending_pps.pop_front();
                }
                self.sending_pps.push_back(self.packets * 1000 / millis);
            }
            self.bytes = 0;
            self.packets = 0;
            self.window_start = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn camera(quality: Quality) -> LayerWant {
        LayerWant { layer_bps: vec![150_000, 500_000, 1_500_000], quality, is_screen: false, reduced_rates: 0 }
    }

    #[test]
    fn without_a_budget_everyone_gets_what_they_asked_for() {
        let wants = [camera(Quality::Low), camera(Quality::Medium), camera(Quality::High)];
        assert_eq!(allocate(None, &wants), [0, 1, 2]);
    }

    #[test]
    fn a_falling_budget_steps_layers_down() {
        let wants = [camera(Quality::High), camera(Quality::High)];
        assert_eq!(allocate(Some(10_000_000), &wants), [2, 2]);
        assert_eq!(allocate(Some(2_000_000), &wants), [2, 1]);
        assert_eq!(allocate(Some(1_000_000), &wants), [1, 1]);
        assert_eq!(allocate(Some(400_000), &wants), [0, 0]);
    }

    #[test]
    fn screen_shares_are_upgraded_first() {
        let mut screen = camera(Quality::High);
        screen.is_screen = true;
        let wants = [camera(Quality::High), screen];
        assert_eq!(allocate(Some(1_800_000), &wants), [0, 2]);
    }

    #[test]
    fn single_layer_videos_are_layer_zero() {
        let wants =
            [LayerWant { layer_bps: vec![800_000], quality: Quality::High, is_screen: false, reduced_rates: 0 }];
        assert_eq!(allocate(Some(100), &wants), [0]);
        assert_eq!(allocate(None, &wants), [0]);
    }

    #[test]
    fn reduced_frame_rates_are_a_last_resort() {
        // An SVC stream: the low resolution at 1/4, 1/2 and the full
        // frame rate, then two higher resolutions.
        let svc = |quality| LayerWant {
            layer_bps: vec![40_000, 80_000, 150_000, 500_000, 1_500_000],
            quality,
            is_screen: false,
            reduced_rates: 2,
        };
        assert_eq!(allocate(None, &[svc(Quality::Low), svc(Quality::Medium), svc(Quality::High)]), [2, 3, 4]);
        assert_eq!(allocate(Some(10_000_000), &[svc(Quality::Low)]), [2], "a thumbnail still moves smoothly");
        assert_eq!(allocate(Some(100_000), &[svc(Quality::High)]), [1]);
        assert_eq!(allocate(Some(10_000), &[svc(Quality::High)]), [0]);
    }

    #[test]
    fn the_meter_measures_a_steady_stream() {
        let start = Instant::now();
        let mut meter = BitrateMeter::new(start);
        for ms in (0..3000).step_by(10) {
            meter.record(1250, start + Duration::from_millis(ms));
        }
        // 1250 bytes every 10 ms = 1 Mbit/s.
        let bps = meter.bps(start + Duration::from_millis(3000));
        assert!((950_000..=1_050_000).contains(&bps), "{bps}");
        assert_eq!(meter.sending_pps(start + Duration::from_millis(3000)), Some(100));
    }

    #[test]
    fn a_paused_layer_keeps_the_packet_rate_it_sends_at() {
        let start = Instant::now();
        let mut meter = BitrateMeter::new(start);
        assert_eq!(meter.sending_pps(start), None, "nothing measured yet");
        for ms in (0..2000).step_by(10) {
            meter.record(1000, start + Duration::from_millis(ms));
        }
        // Paused for ten seconds: no bits, but the rate it would send at.
        let paused = start + Duration::from_secs(12);
        meter.bps(paused);
        let paused = paused + Duration::from_secs(1);
        assert_eq!(meter.bps(paused), 0);
        assert_eq!(meter.sending_pps(paused), Some(100));
    }

    #[test]
    fn an_upgrade_the_estimate_could_not_keep_makes_the_next_wait_longer() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let hold = Duration::from_secs(8);
        let mut upgrades = Upgrades::default();
        assert!(upgrades.may_retarget(true, false, at(0), hold), "nothing to wait for yet");
        // Undone after 5 s: the next upgrade waits 16 s, then 32 s.
        assert!(upgrades.may_retarget(false, true, at(5), hold));
        assert!(!upgrades.may_retarget(true, false, at(13), hold));
        assert!(upgrades.may_retarget(true, false, at(21), hold));
        assert!(upgrades.may_retarget(false, true, at(25), hold));
        assert!(!upgrades.may_retarget(true, false, at(56), hold));
        assert!(upgrades.may_retarget(true, false, at(57), hold));
        // Kept for a minute: the link changed, and the hold is back to 8 s.
        assert!(upgrades.may_retarget(false, true, at(117), hold));
        assert!(!upgrades.may_retarget(true, false, at(124), hold));
        assert!(upgrades.may_retarget(true, false, at(125), hold));
        // A step down of the subscriber's own choice (a smaller tile) waits for nothing.
        assert!(upgrades.may_retarget(false, false, at(126), hold));
        assert!(upgrades.may_retarget(true, false, at(127), hold));
    }

    proptest! {
        /// Never above what was asked, never more than the budget beyond the
        /// lowest layers, and a bigger budget never gives anyone less.
        #[test]
        fn allocation_respects_asks_and_budget(
            qualities in proptest::collection::vec(0u8..3, 0..12),
            budget in 0u64..20_000_000,
        ) {
            let wants: Vec<_> = qualities.iter().map(|q| camera([Quality::Low, Quality::Medium, Quality::High][*q as usize])).collect();
            let chosen = allocate(Some(budget), &wants);
            let floor: u64 = wants.iter().map(|w| w.layer_bps[0]).sum();
            let spent: u64 = chosen.iter().zip(&wants).map(|(c, w)| w.layer_bps[*c]).sum();
            prop_assert!(spent <= budget.max(floor));
            for (c, w) in chosen.iter().zip(&wants) {
                prop_assert!(*c <= w.wanted());
            }
            let more = allocate(Some(budget * 2), &wants);
            let spent_more: u64 = more.iter().zip(&wants).map(|(c, w)| w.layer_bps[*c]).sum();
            prop_assert!(spent_more >= spent);
        }
    }
}
