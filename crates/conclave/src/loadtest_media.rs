//! `conclave loadtest media`: rooms × publishers × subscribers of headless
//! participants sending synthetic audio and video through a running
//! server's SFU. Reports what was sent and received, loss, jitter, the
//! send-to-receive latency on this machine, and the server's CPU time per
//! datagram it forwarded (from its process, between two snapshots).

use crate::progress::Progress;
use anyhow::Context;
use clap::Args;
use conclave_client::media::{MediaOptions, MediaParticipant, MediaStats};
use conclave_client::Client;
use conclave_proto::signal::ServerMessage;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct MediaArgs {
    /// The Conclave server under test.
    #[arg(long)]
    server: String,
    /// Its process id, to read its CPU time.
    #[arg(long)]
    server_pid: u32,
    /// An owner account of an organisation on the server.
    #[arg(long)]
    email: String,
    #[arg(long, env = "CONCLAVE_LOADTEST_PASSWORD", hide_env_values = true)]
    password: String,
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Participants per room sending audio and video.
    #[arg(long, default_value_t = 2)]
    publishers: usize,
    /// Participants per room only receiving.
    #[arg(long, default_value_t = 8)]
    subscribers: usize,
    /// Seconds measured (after a warm-up of 3 s).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Bytes per video frame (one RTP packet up to ~1,100).
    #[arg(long, default_value_t = 1000)]
    frame_bytes: usize,
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Publish the camera as three simulcast layers.
    #[arg(long)]
    simulcast: bool,
    /// Publishers send video only (to measure video forwarding alone).
    #[arg(long)]
    no_audio: bool,
}

/// One counter from the server's `/metrics`.
async fn metric(server: &str, name: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(format!("{server}/metrics")).await?.text().await?;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .with_context(|| format!("{name} not in /metrics"))
}

struct Snapshot {
    at: Instant,
    cpu: f64,
    sent_datagrams: f64,
    stats: Vec<MediaStats>,
}

async fn snapshot(args: &MediaArgs, people: &[MediaParticipant]) -> anyhow::Result<Snapshot> {
    Ok(Snapshot {
        at: Instant::now(),
        cpu: conclave_server::metrics::process_cpu_seconds(Some(args.server_pid))
            .with_context(|| format!("no process {}", args.server_pid))?,
        sent_datagrams: metric(&args.server, "conclave_media_datagrams_sent_total").await?,
        stats: people.iter().map(MediaParticipant::stats).collect(),
    })
}

pub async fn media(args: MediaArgs) -> anyhow::Result<()> {
    let login = Client::new(&args.server)
        .login(&conclave_proto::LoginRequest {
            email: args.email.clone(),
            password: args.password.clone(),
            totp_code: None,
            recovery_code: None,
        })
        .await?;
    let owner = Client::new(&args.server).authenticated(&login.token);
    let org_id = login.user.org_id.clone().context("the account has no organisation")?;
    let unlocked = conclave_proto::OrgPolicyUpdate {
        waiting_room: Some(conclave_proto::Setting::unlocked(true)),
        ..Default::default()
    };
    owner.update_org_policy(&org_id, &unlocked).await?;

    let per_room = args.publishers + args.subscribers;
    let total = args.rooms * per_room;
    let progress = Progress::new("participants joining");
    let mut people = Vec::with_capacity(total);
    for room in 0..args.rooms {
        let meeting = owner.create_meeting(&crate::loadtest::meeting_request(&format!("Media {room}"), false)).await?;
        for seat in 0..per_room {
            let n = room * per_room + seat;
            let publishes = seat < args.publishers;
            // Each participant from its own loopback address, clear of the other load tests'.
            let client = Client::with_local_address(&args.server, Some(crate::loadtest::source(400_000 + n)));
            // The first publisher is the host (the owner), so the room opens.
            let client = if seat == 0 { client.authenticated(&login.token) } else { client };
            let mut conn = client.join_by_link(&meeting.link_secret, &format!("P{n}")).await?;
            let admitted = conn
                .wait_for("admission", Duration::from_secs(10), |m| matches!(m, ServerMessage::Admitted { .. }))
                .await?;
            let ServerMessage::Admitted { participant_id, .. } = admitted else { unreachable!() };
            let options = MediaOptions {
                microphone: publishes && !args.no_audio,
                camera: publishes,
                simulcast: if args.simulcast { vec!["q".into(), "h".into(), "f".into()] } else { Vec::new() },
                camera_frame_bytes: args.frame_bytes,
                fps: args.fps,
                ..MediaOptions::default()
            };
            people.push(MediaParticipant::start(conn, participant_id, options).await?);
            progress.update((n + 1) as i64, total as i64);
        }
    }
    progress.finish();
    let progress = Progress::new("warming up");
    for s in 0..3 {
        progress.update(s, 3);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    progress.finish();
    let before = snapshot(&args, &people).await?;
    let progress = Progress::new("measuring");
    for s in 0..args.seconds {
        progress.update(s as i64, args.seconds as i64);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    progress.update(args.seconds as i64, args.seconds as i64);
    progress.finish();
    let after = snapshot(&args, &people).await?;
    report(&args, &before, &after);
    // Leave properly, so the next run does not share the server with ghosts.
    let progress = Progress::new("leaving");
    let total = people.len();
    for (n, p) in people.into_iter().enumerate() {
        p.send(conclave_proto::signal::ClientMessage::Leave);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            p.stop();
        });
        progress.update((n + 1) as i64, total as i64);
    }
    progress.finish();
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

fn report(args: &MediaArgs, before: &Snapshot, after: &Snapshot) {
    let secs = after.at.duration_since(before.at).as_secs_f64();
    let (mut received, mut missing) = (0u64, 0u64);
    let mut latencies = Vec::new();
    let mut jitters = Vec::new();
    let mut sent = 0u64;
    for (b, a) in before.stats.iter().zip(&after.stats) {
        sent += a.sent_frames - b.sent_frames;
        for (key, track) in &a.received {
            let earlier = b.received.get(key);
            let frames_before = earlier.map_or(0, |t| t.frames);
            received += track.frames - frames_before;
            missing += track.missing - earlier.map_or(0, |t| t.missing);
            let new = (track.frames - frames_before).min(track.latency_us.len() as u64) as usize;
            let window = &track.latency_us[track.latency_us.len() - new..];
            latencies.extend_from_slice(window);
            // RFC 3550's interarrival jitter over consecutive frames.
            let mut j = 0.0f64;
            for pair in window.windows(2) {
                let d = (pair[1] as f64 - pair[0] as f64).abs();
                j += (d - j) / 16.0;
            }
            if window.len() > 1 {
                jitters.push(j);
            }
        }
    }
    latencies.sort_unstable();
    jitters.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies.get(((latencies.len().max(1) - 1) as f64 * p) as usize).copied().unwrap_or(0);
    let datagrams = after.sent_datagrams - before.sent_datagrams;
    let cpu = after.cpu - before.cpu;
    let members = args.publishers + args.subscribers;
    let video_streams = args.rooms * args.publishers * (members - 1);
    let loss = if received + missing == 0 { 0.0 } else { missing as f64 / (received + missing) as f64 * 100.0 };
    println!();
    println!(
        "media load: {} rooms × ({} publishers + {} subscribers), {} fps × {} B video{}{}, {:.1} s measured",
        args.rooms,
        args.publishers,
        args.subscribers,
        args.fps,
        args.frame_bytes,
        if args.simulcast { " (simulcast q/h/f)" } else { "" },
        if args.no_audio { ", no audio" } else { " + 50 audio frames/s" },
        secs
    );
    println!("  {:<32} {video_streams}", "video streams forwarded");
    println!("  {:<32} {sent} ({:.0}/s)", "frames sent by publishers", sent as f64 / secs);
    println!("  {:<32} {received} ({:.0}/s)", "frames received", received as f64 / secs);
    println!("  {:<32} {missing} ({loss:.3} %)", "frames lost");
    println!(
        "  {:<32} p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        "send → receive latency",
        pct(0.5) as f64 / 1000.0,
        pct(0.99) as f64 / 1000.0,
        pct(1.0) as f64 / 1000.0
    );
    println!(
        "  {:<32} median {:.2} ms",
        "jitter (RFC 3550, per track)",
        jitters.get(jitters.len() / 2).copied().unwrap_or(0.0) / 1000.0
    );
    println!("  {:<32} {:.0} ({:.0}/s)", "datagrams sent by the SFU", datagrams, datagrams / secs);
    println!("  {:<32} {:.2} s ({:.0} % of a core)", "server CPU", cpu, cpu / secs * 100.0);
    if datagrams > 0.0 {
        println!("  {:<32} {:.2} µs", "server CPU per datagram sent", cpu * 1e6 / datagrams);
    }
}
