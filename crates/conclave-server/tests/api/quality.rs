//! Call quality through the real API: participants report what their apps
//! measured, hosts see a level beside each name when it changes, and the
//! organisation's administrators read every sample afterwards, with the
//! meeting's other figures, for their graphs. Nobody else reads them.

use crate::meetings::{admit, guest_knocks, host_joins, hosted, WAIT};
use crate::support::TestServer;
use crate::{assert_problem, on_both_engines_and_loopback};
use conclave_proto::quality::{QualityLevel, QualityReport};
use conclave_proto::signal::*;
use conclave_proto::OrgRole;
use conclave_store::Engine;
use std::time::Duration;

fn report(loss_permille: u16) -> QualityReport {
    QualityReport {
        period_ms: 5000,
        sent_kbps: 850,
        received_kbps: 1700,
        loss_permille,
        rtt_ms: Some(35),
        jitter_ms: Some(4),
        freezes: 0,
        frozen_ms: 0,
        sent_height: Some(720),
        codec: Some("VP8".into()),
    }
}

fn quality_of(id: ParticipantId, wanted: QualityLevel) -> impl Fn(&ServerMessage) -> bool {
    move |m| matches!(m, ServerMessage::ParticipantQuality { participant_id, level, .. } if *participant_id == id && *level == wanted)
}

/// Returns once the meeting has handled what `conn` sent before (it answers
/// in order), so the test's clock moves only afterwards.
async fn handled(conn: &mut conclave_client::MeetingConnection) {
    conn.send(&ClientMessage::Ping).await.unwrap();
    conn.wait_for("the pong", WAIT, |m| matches!(m, ServerMessage::Pong)).await.unwrap();
}

fn error(code: ErrorCode) -> impl Fn(&ServerMessage) -> bool {
    move |m| matches!(m, ServerMessage::Error { code: c, request: Some(r), .. } if c == code.as_str() && r == "quality_report")
}

on_both_engines_and_loopback!(hosts_see_quality_levels_and_administrators_every_sample);
async fn hosts_see_quality_levels_and_administrators_every_sample(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, login, meeting) = hosted(&srv).await;
    let org = login.user.org_id.clone().unwrap();
    let (mut host_conn, host_id) = host_joins(&host, &meeting).await;
    let (mut ada, ada_id, _) = guest_knocks(&srv, &meeting, "Ada", "127.0.9.1").await;

    // Waiting, Ada has nothing to report.
    ada.send(&ClientMessage::QualityReport { report: report(0) }).await.unwrap();
    ada.wait_for("the refusal", WAIT, error(ErrorCode::Forbidden)).await.unwrap();
    admit(&mut host_conn, &mut ada, ada_id).await;

    // Her first report: the host learns her level.
    ada.send(&ClientMessage::QualityReport { report: report(5) }).await.unwrap();
    host_conn.wait_for("Ada's level", WAIT, quality_of(ada_id, QualityLevel::Good)).await.unwrap();
    // Too soon for another; figures no measurement gives are refused.
    ada.send(&ClientMessage::QualityReport { report: report(5) }).await.unwrap();
    ada.wait_for("the throttle", WAIT, error(ErrorCode::RateLimited)).await.unwrap();
    srv.clock.advance(Duration::from_secs(5));
    let impossible = QualityReport { loss_permille: 2000, ..report(0) };
    ada.send(&ClientMessage::QualityReport { report: impossible }).await.unwrap();
    ada.wait_for("the refusal", WAIT, error(ErrorCode::Invalid)).await.unwrap();
    // The same level again says nothing new to the host; a worse one does.
    ada.send(&ClientMessage::QualityReport { report: report(8) }).await.unwrap();
    handled(&mut ada).await;
    srv.clock.advance(Duration::from_secs(5));
    ada.send(&ClientMessage::QualityReport { report: report(180) }).await.unwrap();
    let poor = host_conn.wait_for("Ada's poor level", WAIT, quality_of(ada_id, QualityLevel::Poor)).await.unwrap();
    let ServerMessage::ParticipantQuality { report: told, .. } = poor else { unreachable!() };
    assert_eq!(told.loss_permille, 180);
    let levels_told = host_conn
        .received
        .iter()
        .filter(|m| matches!(m, ServerMessage::ParticipantQuality { participant_id, .. } if *participant_id == ada_id))
        .count();
    assert_eq!(levels_told, 2, "good, then poor: the second good was no news");
    // Ada, not a host, hears of nobody's quality.
    host_conn.send(&ClientMessage::QualityReport { report: report(0) }).await.unwrap();
    assert!(
        !ada.drain(Duration::from_millis(500))
            .await
            .iter()
            .any(|m| matches!(m, ServerMessage::ParticipantQuality { .. })),
        "participants do not see each other's quality"
    );

    // The meeting ends; its samples are kept.
    host_conn.send(&ClientMessage::EndForAll).await.unwrap();
    assert!(host_conn.closed_within(WAIT).await);
    let summary = tokio::time::timeout(WAIT, async {
        loop {
            let list = host.quality_summaries(&org).await.unwrap();
            // Samples are written in batches: wait for both participants' to be in.
            if let Some(m) = list.meetings.into_iter().find(|m| m.meeting_id == meeting.id && m.samples >= 4) {
                break m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the meeting's samples are kept");
    assert_eq!((summary.participants, summary.samples, summary.poor_samples), (2, 4, 1));
    assert_eq!(summary.title, meeting.title);
    let detail = host.meeting_quality(&org, &meeting.id).await.unwrap();
    let ada_samples = &detail.participants.iter().find(|p| p.participant_id == ada_id).unwrap();
    assert_eq!(ada_samples.display_name, "Ada");
    let losses: Vec<u16> = ada_samples.samples.iter().map(|s| s.report.loss_permille).collect();
    assert_eq!(losses, [5, 8, 180], "every accepted report, in order");
    assert_eq!(ada_samples.samples[2].level, QualityLevel::Poor);
    assert!(ada_samples.samples.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
    assert!(detail.participants.iter().any(|p| p.participant_id == host_id));

    // A plain member of the organisation reads none of it.
    let (member, _) = srv.add_member(&host, &org, "member@acme.test", OrgRole::Member).await;
    assert_problem!(member.quality_summaries(&org).await, 403, "forbidden");
    assert_problem!(member.meeting_quality(&org, &meeting.id).await, 403, "forbidden");
    // Another organisation's admin cannot reach this meeting through theirs.
    let (other, other_login) = srv.org_with_owner("owner@other.test", "Other").await;
    let other_org = other_login.user.org_id.unwrap();
    assert_problem!(other.meeting_quality(&other_org, &meeting.id).await, 404, "not-found");
    assert!(other.quality_summaries(&other_org).await.unwrap().meetings.is_empty());
}

on_both_engines_and_loopback!(samples_past_their_retention_are_forgotten);
async fn samples_past_their_retention_are_forgotten(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, login, meeting) = hosted(&srv).await;
    let org = login.user.org_id.clone().unwrap();
    let (mut host_conn, _) = host_joins(&host, &meeting).await;
    host_conn.send(&ClientMessage::QualityReport { report: report(0) }).await.unwrap();
    host_conn.send(&ClientMessage::EndForAll).await.unwrap();
    assert!(host_conn.closed_within(WAIT).await);
    tokio::time::timeout(WAIT, async {
        while host.quality_summaries(&org).await.unwrap().meetings.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("kept");
    // The sweep (hourly, with the dormant accounts') forgets what is older
    // than the retention period, and nothing younger.
    assert_eq!(conclave_server::forget_expired_quality(&srv.state).await.unwrap(), 0, "not yet");
    srv.clock.advance(srv.state.config.quality_retention - Duration::from_secs(60));
    assert_eq!(conclave_server::forget_expired_quality(&srv.state).await.unwrap(), 0, "a minute short");
    srv.clock.advance(Duration::from_secs(61));
    assert_eq!(conclave_server::forget_expired_quality(&srv.state).await.unwrap(), 1);
    assert!(srv.state.store.quality_summaries(&org, 10).await.unwrap().is_empty());
}
