//! Call quality: what each participant's app measures and reports every few
//! seconds, what the SFU adds of its own view, the level hosts see beside
//! each name, and the samples administrators graph afterwards.
//!
//! Figures are integers in the units named by their fields (kilobits per
//! second, milliseconds, per mille), so reports compare exactly and cost
//! little to keep.

use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

use crate::signal::ParticipantId;
use crate::string_enum::string_enum;

/// How often apps report: a report covers about this long.
pub const QUALITY_REPORT_EVERY_MS: u32 = 5_000;
/// Longest codec name a report may carry (`video/H264` and the like).
pub const MAX_CODEC_CHARS: usize = 32;

/// What a participant's app measured over its last period. Every field is
/// sent (`null` where nothing was measured), so the type reads and writes
/// the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct QualityReport {
    /// The period measured, in milliseconds (1 to 60,000).
    pub period_ms: u32,
    /// Media sent and received over the period, in kbit/s.
    pub sent_kbps: u32,
    pub received_kbps: u32,
    /// Of the packets expected in, those that never came, per mille.
    pub loss_permille: u16,
    /// Round-trip time to the server, when measured.
    #[cfg_attr(feature = "ts", schemars(required, schema_with = "nullable::<u32>"))]
    pub rtt_ms: Option<u32>,
    /// Interarrival jitter of what it receives.
    #[cfg_attr(feature = "ts", schemars(required, schema_with = "nullable::<u32>"))]
    pub jitter_ms: Option<u32>,
    /// Videos it shows that stopped moving (a freeze: a frame late by far
    /// more than the usual gap), and how long they stood still in all.
    pub freezes: u32,
    pub frozen_ms: u32,
    /// The height of the largest video it sends, when it sends one.
    #[cfg_attr(feature = "ts", schemars(required, schema_with = "nullable::<u16>"))]
    pub sent_height: Option<u16>,
    /// The codec of the video it sends (`VP8`, `H264`, ...).
    #[cfg_attr(feature = "ts", schemars(required, schema_with = "nullable::<String>"))]
    pub codec: Option<String>,
}

/// The schema of `Option<T>` for a field that is always sent (`null` when
/// empty), so the type reads as it writes.
#[cfg(feature = "ts")]
fn nullable<T: schemars::JsonSchema>(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    generator.subschema_for::<Option<T>>()
}

string_enum! {
    /// The quality a host sees beside a participant's name.
    pub enum QualityLevel {
        Good = "good",
        /// Noticeable: some loss, a slow path or short freezes.
        Fair = "fair",
        /// Hard to follow: heavy loss, a very slow path or long freezes.
        Poor = "poor",
    }
}

/// Why a report was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidReport {
    Period,
    Loss,
    Frozen,
    Codec,
}

impl std::fmt::Display for InvalidReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Period => "period_ms is 1 to 60000",
            Self::Loss => "loss_permille is at most 1000",
            Self::Frozen => "frozen_ms cannot exceed the period",
            Self::Codec => "codec is at most 32 printable characters",
        })
    }
}

impl QualityReport {
    /// Refuses figures no measurement gives.
    pub fn validate(&self) -> Result<(), InvalidReport> {
        if !(1..=60_000).contains(&self.period_ms) {
            return Err(InvalidReport::Period);
        }
        if self.loss_permille > 1000 {
            return Err(InvalidReport::Loss);
        }
        if self.frozen_ms > self.period_ms {
            return Err(InvalidReport::Frozen);
        }
        if let Some(codec) = &self.codec {
            if codec.is_empty() || codec.chars().count() > MAX_CODEC_CHARS || codec.chars().any(char::is_control) {
                return Err(InvalidReport::Codec);
            }
        }
        Ok(())
    }

    /// The level the figures add up to: the worst of loss, round trip and
    /// time frozen. The thresholds are where people start to notice (fair)
    /// and where a conversation suffers (poor).
    pub fn level(&self) -> QualityLevel {
        let frozen_permille = u64::from(self.frozen_ms) * 1000 / u64::from(self.period_ms.max(1));
        let rtt = self.rtt_ms.unwrap_or(0);
        if self.loss_permille > 100 || rtt > 500 || frozen_permille > 100 {
            QualityLevel::Poor
        } else if self.loss_permille > 30 || rtt > 250 || frozen_permille > 20 {
            QualityLevel::Fair
        } else {
            QualityLevel::Good
        }
    }
}

/// What the SFU sees of one participant's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct SfuView {
    /// Its estimate of the bandwidth towards the participant, in kbit/s.
    pub estimate_kbps: Option<u32>,
    /// What it forwarded to the participant over the last period, in kbit/s.
    pub forwarded_kbps: u32,
}

/// One sample of one participant, as kept for administrators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct QualitySample {
    pub at_ms: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub level: QualityLevel,
    pub report: QualityReport,
    /// The SFU's view at the time, when it had one.
    pub sfu: Option<SfuView>,
}

/// A participant's samples over a meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct ParticipantQuality {
    pub participant_id: ParticipantId,
    pub display_name: String,
    pub samples: Vec<QualitySample>,
}

/// `GET /api/v1/orgs/{org}/meetings/{id}/quality`: a meeting's samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct MeetingQuality {
    pub meeting_id: String,
    pub title: String,
    pub participants: Vec<ParticipantQuality>,
}

/// One meeting with samples, for the administrators' list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct QualitySummary {
    pub meeting_id: String,
    pub title: String,
    pub first_ms: i64,
    pub last_ms: i64,
    pub participants: u32,
    pub samples: u32,
    /// Samples whose level was poor.
    pub poor_samples: u32,
}

/// `GET /api/v1/orgs/{org}/quality`: meetings with samples, latest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct QualitySummaryList {
    pub meetings: Vec<QualitySummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> QualityReport {
        QualityReport {
            period_ms: 5000,
            sent_kbps: 900,
            received_kbps: 1800,
            loss_permille: 0,
            rtt_ms: Some(40),
            jitter_ms: Some(3),
            freezes: 0,
            frozen_ms: 0,
            sent_height: Some(720),
            codec: Some("VP8".into()),
        }
    }

    #[test]
    fn the_level_is_the_worst_of_loss_round_trip_and_freezes() {
        assert_eq!(report().level(), QualityLevel::Good);
        assert_eq!(QualityReport { loss_permille: 50, ..report() }.level(), QualityLevel::Fair);
        assert_eq!(QualityReport { loss_permille: 150, ..report() }.level(), QualityLevel::Poor);
        assert_eq!(QualityReport { rtt_ms: Some(300), ..report() }.level(), QualityLevel::Fair);
        assert_eq!(QualityReport { rtt_ms: Some(900), ..report() }.level(), QualityLevel::Poor);
        assert_eq!(QualityReport { freezes: 1, frozen_ms: 200, ..report() }.level(), QualityLevel::Fair);
        assert_eq!(QualityReport { freezes: 3, frozen_ms: 1500, ..report() }.level(), QualityLevel::Poor);
    }

    #[test]
    fn figures_no_measurement_gives_are_refused() {
        assert_eq!(report().validate(), Ok(()));
        assert_eq!(QualityReport { period_ms: 0, ..report() }.validate(), Err(InvalidReport::Period));
        assert_eq!(QualityReport { loss_permille: 1001, ..report() }.validate(), Err(InvalidReport::Loss));
        assert_eq!(QualityReport { frozen_ms: 6000, ..report() }.validate(), Err(InvalidReport::Frozen));
        assert_eq!(QualityReport { codec: Some("x".repeat(33)), ..report() }.validate(), Err(InvalidReport::Codec));
        assert_eq!(QualityReport { codec: Some("VP8\n".into()), ..report() }.validate(), Err(InvalidReport::Codec));
    }
}
