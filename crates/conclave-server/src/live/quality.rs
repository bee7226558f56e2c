//! Call quality in a live meeting: each participant's reports, beside the
//! SFU's latest view of its session, written to the store in batches for
//! the administrators' graphs (`routes/quality.rs`).

use std::collections::HashMap;

use conclave_proto::quality::{QualityLevel, QualityReport, QualitySample, SfuView};
use conclave_proto::signal::ParticipantId;
use conclave_store::NewQualitySample;

/// Samples held before a write, at most.
const BATCH: usize = 100;
/// Longest a sample waits to be written.
const WRITE_EVERY_MS: i64 = 10_000;

pub(super) struct QualityLog {
    meeting_id: String,
    /// The SFU's latest view of each participant's session.
    views: HashMap<ParticipantId, SfuView>,
    pending: Vec<NewQualitySample>,
    last_write_ms: Option<i64>,
}

impl QualityLog {
    pub fn new(meeting_id: &str) -> Self {
        Self { meeting_id: meeting_id.to_owned(), views: HashMap::new(), pending: Vec::new(), last_write_ms: None }
    }

    pub fn sfu_view(&mut self, participant: ParticipantId, view: SfuView) {
        self.views.insert(participant, view);
    }

    /// A participant's report, leveled by the room, becomes a sample with
    /// the SFU's view beside it.
    pub fn report(
        &mut self,
        now_ms: i64,
        participant: ParticipantId,
        display_name: &str,
        level: QualityLevel,
        report: QualityReport,
    ) {
        let sample = QualitySample { at_ms: now_ms, level, report, sfu: self.views.get(&participant).copied() };
        self.pending.push(NewQualitySample {
            meeting_id: self.meeting_id.clone(),
            participant_id: participant as i64,
            display_name: display_name.to_owned(),
            at_ms: now_ms,
            level: level.as_str().to_owned(),
            sample_json: serde_json::to_string(&sample).expect("samples serialise"),
        });
        self.last_write_ms.get_or_insert(now_ms);
    }

    /// The samples to write now: a full batch, ones waiting long enough,
    /// or (`all`, as the meeting closes) whatever is held.
    pub fn take_due(&mut self, now_ms: i64, all: bool) -> Option<Vec<NewQualitySample>> {
        let waited = self.last_write_ms.is_some_and(|at| now_ms - at >= WRITE_EVERY_MS);
        if self.pending.is_empty() || !(all || waited || self.pending.len() >= BATCH) {
            return None;
        }
        self.last_write_ms = Some(now_ms);
        Some(std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> QualityReport {
        QualityReport {
            period_ms: 5000,
            sent_kbps: 800,
            received_kbps: 1600,
            loss_permille: 4,
            rtt_ms: Some(30),
            jitter_ms: Some(2),
            freezes: 0,
            frozen_ms: 0,
            sent_height: Some(360),
            codec: Some("VP8".into()),
        }
    }

    #[test]
    fn samples_carry_the_sfus_view_and_are_written_in_batches_or_after_a_while() {
        let mut log = QualityLog::new("m1");
        log.sfu_view(3, SfuView { estimate_kbps: Some(2400), forwarded_kbps: 1500 });
        log.report(1_000, 3, "Ada", QualityLevel::Good, report());
        log.report(1_000, 4, "Grace", QualityLevel::Fair, report());
        assert_eq!(log.take_due(5_000, false), None, "not yet");
        let batch = log.take_due(11_000, false).expect("ten seconds on");
        assert_eq!(batch.len(), 2);
        let ada: QualitySample = serde_json::from_str(&batch[0].sample_json).unwrap();
        assert_eq!(ada.sfu.unwrap().estimate_kbps, Some(2400));
        let grace: QualitySample = serde_json::from_str(&batch[1].sample_json).unwrap();
        assert_eq!((grace.sfu, batch[1].level.as_str()), (None, "fair"));
        for n in 0..BATCH {
            log.report(12_000, n as u64, "x", QualityLevel::Good, report());
        }
        assert_eq!(log.take_due(12_000, false).map(|b| b.len()), Some(BATCH), "a full batch goes at once");
        log.report(12_500, 1, "x", QualityLevel::Good, report());
        assert_eq!(log.take_due(12_500, true).map(|b| b.len()), Some(1), "the rest as the meeting closes");
        assert_eq!(log.take_due(99_000, true), None);
    }
}
