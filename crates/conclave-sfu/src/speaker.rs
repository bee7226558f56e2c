//! Active-speaker detection from the RFC 6464 audio-level header extension.
//!
//! Each participant's loudness is smoothed over a few hundred milliseconds;
//! the speaker changes only when someone else has been clearly louder for a
//! while, or the current speaker has fallen silent. Without that hysteresis
//! the highlighted tile would flicker at every cough.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use conclave_proto::signal::ParticipantId;

/// Quieter than this (in dBov) counts as silence.
const SILENCE_DBOV: f32 = -50.0;
/// A challenger must be this much louder than the current speaker...
const MARGIN_DB: f32 = 6.0;
/// ...for this long, to take over.
const TAKEOVER: Duration = Duration::from_millis(600);
/// A speaker who falls silent keeps the highlight this long.
const HANGOVER: Duration = Duration::from_millis(1500);
/// Weight of each new level in the moving average (packets come every 20 ms).
const SMOOTHING: f32 = 0.1;
/// Levels older than this no longer count (the sender stopped sending).
const STALE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy)]
struct Loudness {
    /// Smoothed level in dBov (0 loudest, -127 silent).
    level: f32,
    updated: Instant,
}

#[derive(Debug, Default)]
pub struct SpeakerDetector {
    loudness: HashMap<ParticipantId, Loudness>,
    current: Option<ParticipantId>,
    /// When the current speaker was last above the silence threshold.
    current_heard: Option<Instant>,
    /// A louder participant and since when they have been louder.
    challenger: Option<(ParticipantId, Instant)>,
}

impl SpeakerDetector {
    pub fn current(&self) -> Option<ParticipantId> {
        self.current
    }

    /// One audio packet's level, as carried in the extension (negative dBov).
    pub fn observe(&mut self, who: ParticipantId, level_dbov: i8, now: Instant) {
        let level = f32::from(level_dbov.clamp(-127, 0));
        let entry = self.loudness.entry(who).or_insert(Loudness { level: -127.0, updated: now });
        entry.level += SMOOTHING * (level - entry.level);
        entry.updated = now;
    }

    pub fn forget(&mut self, who: ParticipantId) {
        self.loudness.remove(&who);
        if self.current == Some(who) {
            self.current = None;
            self.current_heard = None;
        }
        if self.challenger.is_some_and(|(c, _)| c == who) {
            self.challenger = None;
        }
    }

    fn level(&self, who: ParticipantId, now: Instant) -> f32 {
        match self.loudness.get(&who) {
            Some(l) if now.saturating_duration_since(l.updated) < STALE => l.level,
            _ => -127.0,
        }
    }

    /// Re-evaluates; returns the new speaker when it changed.
    pub fn evaluate(&mut self, now: Instant) -> Option<Option<ParticipantId>> {
        let loudest = self
            .loudness
            .keys()
            .map(|&who| (who, self.level(who, now)))
            .filter(|&(_, level)| level > SILENCE_DBOV)
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        let current_level = self.current.map(|c| self.level(c, now));
        if current_level.is_some_and(|l| l > SILENCE_DBOV) {
            self.current_heard = Some(now);
        }
        // The current speaker has been quiet past the hangover.
        let lapsed = self.current_heard.map_or(HANGOVER, |t| now.saturating_duration_since(t)) >= HANGOVER;
        let next = match (self.current, loudest) {
            (None, Some((who, _))) => Some(who),
            (Some(current), None) => (!lapsed).then_some(current),
            (Some(current), Some((who, level))) if who != current => {
                let current_level = current_level.unwrap_or(-127.0);
                if lapsed {
                    Some(who)
                } else if level >= current_level + MARGIN_DB {
                    let since = match self.challenger {
                        Some((c, since)) if c == who => since,
                        _ => {
                            self.challenger = Some((who, now));
                            now
                        }
                    };
                    if now.saturating_duration_since(since) >= TAKEOVER {
                        Some(who)
                    } else {
                        Some(current)
                    }
                } else {
                    self.challenger = None;
                    Some(current)
                }
            }
            (current, _) => current,
        };
        if next == self.current {
            return None;
        }
        self.current = next;
        self.current_heard = next.map(|_| now);
        self.challenger = None;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds 20 ms packets for `ms` milliseconds, evaluating every 100 ms;
    /// returns every change.
    fn talk(
        d: &mut SpeakerDetector,
        start: Instant,
        from_ms: u64,
        ms: u64,
        levels: &[(ParticipantId, i8)],
    ) -> Vec<(u64, Option<ParticipantId>)> {
        let mut changes = Vec::new();
        for t in (from_ms..from_ms + ms).step_by(20) {
            let now = start + Duration::from_millis(t);
            for &(who, level) in levels {
                d.observe(who, level, now);
            }
            if t % 100 == 0 {
                if let Some(change) = d.evaluate(now) {
                    changes.push((t, change));
                }
            }
        }
        changes
    }

    #[test]
    fn the_one_talking_becomes_the_speaker() {
        let start = Instant::now();
        let mut d = SpeakerDetector::default();
        let changes = talk(&mut d, start, 0, 1000, &[(1, -20), (2, -127)]);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].1, Some(1));
    }

    #[test]
    fn a_brief_interruption_does_not_steal_the_highlight() {
        let start = Instant::now();
        let mut d = SpeakerDetector::default();
        talk(&mut d, start, 0, 2000, &[(1, -30), (2, -127)]);
        // Two speaks loudly for 300 ms: less than the takeover time.
        let changes = talk(&mut d, start, 2000, 300, &[(1, -30), (2, -5)]);
        assert!(changes.is_empty(), "{changes:?}");
        let changes = talk(&mut d, start, 2300, 2000, &[(1, -30), (2, -127)]);
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(d.current(), Some(1));
    }

    #[test]
    fn someone_clearly_louder_for_a_while_takes_over() {
        let start = Instant::now();
        let mut d = SpeakerDetector::default();
        talk(&mut d, start, 0, 2000, &[(1, -40), (2, -127)]);
        let changes = talk(&mut d, start, 2000, 3000, &[(1, -40), (2, -10)]);
        assert_eq!(changes.iter().map(|c| c.1).collect::<Vec<_>>(), [Some(2)]);
        // Not at once: after the takeover time.
        assert!(changes[0].0 >= 2000 + TAKEOVER.as_millis() as u64);
    }

    #[test]
    fn similar_voices_do_not_flip_back_and_forth() {
        let start = Instant::now();
        let mut d = SpeakerDetector::default();
        let changes = talk(&mut d, start, 0, 10_000, &[(1, -30), (2, -28)]);
        assert_eq!(changes.len(), 1, "{changes:?}");
    }

    #[test]
    fn silence_clears_the_speaker_after_the_hangover() {
        let start = Instant::now();
        let mut d = SpeakerDetector::default();
        talk(&mut d, start, 0, 1000, &[(1, -20)]);
        let changes = talk(&mut d, start, 1000, 4000, &[(1, -127)]);
        assert_eq!(changes.iter().map(|c| c.1).collect::<Vec<_>>(), [None]);
        assert!(changes[0].0 >= 1000 + HANGOVER.as_millis() as u64 - 500);
    }

    #[test]
    fn someone_who_leaves_is_forgotten() {
        let start = Instant::now();
        let mut d = SpeakerDetector::default();
        talk(&mut d, start, 0, 1000, &[(1, -20)]);
        d.forget(1);
        assert_eq!(d.current(), None);
        assert_eq!(d.evaluate(start + Duration::from_secs(2)), None);
    }
}
