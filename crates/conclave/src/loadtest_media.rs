//! `conclave loadtest media`: rooms × publishers × subscribers of headless
//! participants sending synthetic audio and video through an SFU, either
//! Conclave's or Janus's VideoRoom (the same participants and frames, so the
//! two can be compared under one load). Reports what was sent and received,
//! loss, jitter, the send-to-receive latency on this machine, and the
//! server's CPU time per datagram it delivered and its resident memory
//! (from its process, between two snapshots).

use crate::progress::Progress;
use anyhow::Context;
use clap::{Args, ValueEnum};
use conclave_client::media::janus::Janus;
use conclave_client::media::{Impairment, MediaOptions, MediaParticipant, MediaStats, Outage, PathImpairment};
use conclave_client::Client;
use conclave_proto::media::MediaSource;
use conclave_proto::signal::ServerMessage;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Sfu {
    Conclave,
    Janus,
}

#[derive(Args)]
pub struct MediaArgs {
    /// The server under test.
    #[arg(long, value_enum, default_value_t = Sfu::Conclave)]
    sfu: Sfu,
    /// Conclave's URL, or Janus's HTTP API (`http://127.0.0.1:8088/janus`).
    #[arg(long)]
    server: String,
    /// Its process id, to read its CPU time and memory.
    #[arg(long)]
    server_pid: u32,
    /// An owner account of an organisation on the Conclave server.
    #[arg(long, required_if_eq("sfu", "conclave"))]
    email: Option<String>,
    #[arg(long, env = "CONCLAVE_LOADTEST_PASSWORD", hide_env_values = true, required_if_eq("sfu", "conclave"))]
    password: Option<String>,
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Participants per room sending audio and video.
    #[arg(long, default_value_t = 2)]
    publishers: usize,
    /// Participants per room only receiving.
    #[arg(long, default_value_t = 8)]
    subscribers: usize,
    /// Seconds measured (after everyone is connected and a warm-up of 3 s).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Bytes per video frame (str0m packetises beyond ~1,100).
    #[arg(long, default_value_t = 1000)]
    frame_bytes: usize,
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Publish the camera as three simulcast layers (Conclave only).
    #[arg(long, conflicts_with = "no_video")]
    simulcast: bool,
    /// Publishers send video only.
    #[arg(long)]
    no_audio: bool,
    /// Publishers send audio only.
    #[arg(long)]
    no_video: bool,
    /// The local address participants send media from. Janus offers only
    /// its non-loopback addresses, so against Janus this is the machine's own.
    #[arg(long, default_value = "127.0.0.1")]
    media_bind: std::net::IpAddr,
    /// Also print the figures as one JSON line, for scripts.
    #[arg(long)]
    json: bool,
    /// A bad network under every participant, made at its own socket (so
    /// the same for any server, Janus included): loss and delay each way.
    #[command(flatten)]
    link: crate::impair::LinkArgs,
    /// An outage of every participant's network this long, 2 s into the
    /// measurement.
    #[arg(long, value_name = "SECONDS")]
    outage: Option<f64>,
}

impl MediaArgs {
    /// Participant `n`'s options: each gets its own network's seed, all
    /// share the outage switch.
    fn options(&self, n: usize, publishes: bool, network: &Network) -> MediaOptions {
        MediaOptions {
            microphone: publishes && !self.no_audio,
            camera: publishes && !self.no_video,
            simulcast: if self.simulcast { vec!["q".into(), "h".into(), "f".into()] } else { Vec::new() },
            camera_frame_bytes: self.frame_bytes,
            fps: self.fps,
            bind: self.media_bind,
            // Everyone connects before anyone sends: setting up hundreds of
            // peers under full load would measure the load generator.
            paused: true,
            impairment: network.impairment.map(|each_way| PathImpairment {
                up: each_way,
                down: each_way,
                seed: 7 + n as u64,
                outage: network.outage.clone(),
            }),
            ..MediaOptions::default()
        }
    }
}

/// The network every participant of a run is on.
struct Network {
    /// `None`: the machine's own loopback, untouched.
    impairment: Option<Impairment>,
    outage: Outage,
}

impl Network {
    fn of(args: &MediaArgs) -> anyhow::Result<Self> {
        let impairment = args.link.impairment()?;
        let impaired = impairment != Impairment::default() || args.outage.is_some();
        Ok(Self { impairment: impaired.then_some(impairment), outage: Outage::default() })
    }
}

struct Snapshot {
    at: Instant,
    cpu: f64,
    rss_kib: u64,
    udp: UdpCounters,
    stats: Vec<MediaStats>,
}

/// The kernel's UDP counters for the whole machine (`/proc/net/snmp`):
/// what the server sent is every datagram sent less the participants' own,
/// whatever the server; and datagrams dropped because a participant's
/// socket buffer was full show the load generator falling behind.
struct UdpCounters {
    sent: u64,
    receive_buffer_drops: u64,
}

impl UdpCounters {
    fn read() -> anyhow::Result<Self> {
        let snmp = std::fs::read_to_string("/proc/net/snmp")?;
        let mut rows = snmp.lines().filter(|l| l.starts_with("Udp:"));
        let (names, values) = rows.next().zip(rows.next()).context("no Udp rows in /proc/net/snmp")?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let at = names.split_whitespace().position(|n| n == name).with_context(|| format!("no Udp {name}"))?;
            Ok(values.split_whitespace().nth(at).context("a short Udp row")?.parse()?)
        };
        Ok(Self { sent: field("OutDatagrams")?, receive_buffer_drops: field("RcvbufErrors")? })
    }
}

impl Snapshot {
    fn take(pid: u32, people: &[MediaParticipant]) -> anyhow::Result<Self> {
        Ok(Self {
            at: Instant::now(),
            cpu: conclave_server::metrics::process_cpu_seconds(Some(pid))
                .with_context(|| format!("no process {pid}"))?,
            rss_kib: crate::loadtest::rss_kib(pid)?,
            udp: UdpCounters::read()?,
            stats: people.iter().map(MediaParticipant::stats).collect(),
        })
    }
}

/// The participants of a run, and how to take them down again.
enum Load {
    Conclave(Vec<MediaParticipant>),
    Janus(Vec<MediaParticipant>, Arc<Janus>),
}

impl Load {
    fn people(&self) -> &[MediaParticipant] {
        match self {
            Load::Conclave(people) | Load::Janus(people, _) => people,
        }
    }

    /// Leaves properly, so the next run does not share the server with ghosts.
    async fn leave(self) {
        let progress = Progress::new("leaving");
        match self {
            Load::Conclave(people) => {
                let total = people.len();
                for (n, p) in people.into_iter().enumerate() {
                    p.send(conclave_proto::signal::ClientMessage::Leave);
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        p.stop();
                    });
                    progress.update((n + 1) as i64, total as i64);
                }
            }
            Load::Janus(people, janus) => {
                people.into_iter().for_each(MediaParticipant::stop);
                janus.destroy().await;
            }
        }
        progress.finish();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub async fn media(args: MediaArgs) -> anyhow::Result<()> {
    let network = Network::of(&args)?;
    let load = match args.sfu {
        Sfu::Conclave => Load::Conclave(join_conclave(&args, &network).await?),
        Sfu::Janus => join_janus(&args, &network).await?,
    };
    let progress = Progress::new("connecting");
    let mut peers_down = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let connected = load.people().iter().filter(|p| p.stats().connected).count();
        progress.update(connected as i64, load.people().len() as i64);
        if Instant::now() >= deadline {
            let down: Vec<String> = load
                .people()
                .iter()
                .enumerate()
                .filter(|(_, p)| !p.stats().connected)
                .map(|(n, p)| {
                    let s = p.stats();
                    format!(
                        "#{n} (participant {}: {} SDP messages, {} datagrams sent, {} received)",
                        p.id, s.negotiations, s.datagrams_sent, s.datagrams_received
                    )
                })
                .collect();
            // A benchmark reports what failed rather than hiding the run:
            // the figures say how many peers never came up.
            anyhow::ensure!(connected > 0, "no peer connection came up within 60 s");
            eprintln!(
                "warning: {} of {} peer connections did not come up within 60 s: {}",
                down.len(),
                load.people().len(),
                down.join(", ")
            );
            peers_down = down.len();
            break;
        }
        if connected == load.people().len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    progress.finish();
    for p in load.people() {
        p.resume_sending(true);
    }
    let progress = Progress::new("warming up");
    for s in 0..3 {
        progress.update(s, 3);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    progress.finish();
    let before = Snapshot::take(args.server_pid, load.people())?;
    let progress = Progress::new("measuring");
    if let Some(length) = args.outage {
        // The network goes down 2 s into the window and comes back after
        // `length`; each video's longest gap then shows how long recovery took.
        let length = Duration::from_secs_f64(length.max(0.0));
        let outage = network.outage.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            outage.set_down(true);
            tokio::time::sleep(length).await;
            outage.set_down(false);
        });
    }
    for s in 0..args.seconds {
        progress.update(s as i64, args.seconds as i64);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    progress.update(args.seconds as i64, args.seconds as i64);
    progress.finish();
    let after = Snapshot::take(args.server_pid, load.people())?;
    report(&args, &before, &after, peers_down);
    load.leave().await;
    Ok(())
}

/// Every participant joins a Conclave meeting per room by its link.
async fn join_conclave(args: &MediaArgs, network: &Network) -> anyhow::Result<Vec<MediaParticipant>> {
    let login = Client::new(&args.server)
        .login(&conclave_proto::LoginRequest {
            email: args.email.clone().context("--email is required")?,
            password: args.password.clone().context("a password is required")?,
            totp_code: None,
            recovery_code: None,
            passkey: None,
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
            // Each participant from its own loopback address, clear of the other load tests'.
            let client = Client::with_local_address(&args.server, Some(crate::loadtest::source(400_000 + n)));
            // The first publisher is the host (the owner), so the room opens.
            let client = if seat == 0 { client.authenticated(&login.token) } else { client };
            let mut conn = client.join_by_link(&meeting.link_secret, &format!("P{n}")).await?;
            let admitted = conn
                .wait_for("admission", Duration::from_secs(10), |m| matches!(m, ServerMessage::Admitted { .. }))
                .await?;
            let ServerMessage::Admitted { participant_id, .. } = admitted else { unreachable!() };
            let options = args.options(n, seat < args.publishers, network);
            people.push(MediaParticipant::start(conn, participant_id, options).await?);
            progress.update((n + 1) as i64, total as i64);
        }
    }
    progress.finish();
    Ok(people)
}

/// The same rooms as Janus VideoRooms: publishers publish, then everyone
/// subscribes to the room's other publishers in one peer connection, as a
/// Janus web client does.
async fn join_janus(args: &MediaArgs, network: &Network) -> anyhow::Result<Load> {
    anyhow::ensure!(!args.simulcast, "the Janus load is compared without simulcast");
    let janus = Janus::connect(&args.server).await?;
    let per_room = args.publishers + args.subscribers;
    // Room numbers of their own, clear of an earlier run's on the same Janus.
    let first_room = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64 * 1000;
    let room_id = |room: usize| first_room + room as u64;
    // Feeds are numbered across rooms, like Conclave's participants.
    let feed = |room: usize, seat: usize| (room * per_room + seat + 1) as u64;
    let progress = Progress::new("publishers joining");
    let mut people = Vec::new();
    for room in 0..args.rooms {
        janus.create_room(room_id(room), args.publishers.max(1)).await?;
        for seat in 0..args.publishers {
            let feed = feed(room, seat);
            let channel = janus.publisher(room_id(room), feed).await?;
            // The same participant numbers, so the same networks, as on Conclave.
            let options = args.options(feed as usize - 1, true, network);
            people.push(MediaParticipant::start(channel, feed, options).await?);
            progress.update(people.len() as i64, (args.rooms * args.publishers) as i64);
        }
    }
    progress.finish();
    // Subscribing needs the feeds published, as Janus sees them: on a bad
    // network its side of a handshake can finish well after ours.
    let deadline = Instant::now() + Duration::from_secs(30);
    for room in 0..args.rooms {
        while janus.publishing(room_id(room)).await?.len() < args.publishers {
            anyhow::ensure!(Instant::now() < deadline, "Janus's publishers were not all up within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let progress = Progress::new("subscribers joining");
    let total = args.rooms * per_room;
    for room in 0..args.rooms {
        let feeds: Vec<u64> = (0..args.publishers).map(|seat| feed(room, seat)).collect();
        for seat in 0..per_room {
            let own = feed(room, seat);
            let others: Vec<u64> = feeds.iter().copied().filter(|f| *f != own).collect();
            if !others.is_empty() {
                let channel = janus.subscriber(room_id(room), &others).await?;
                let options = MediaOptions { await_offer: true, ..args.options(own as usize - 1, false, network) };
                people.push(MediaParticipant::start(channel, own, options).await?);
            }
            progress.update(own as i64, total as i64);
        }
    }
    progress.finish();
    Ok(Load::Janus(people, janus))
}

fn report(args: &MediaArgs, before: &Snapshot, after: &Snapshot, peers_down: usize) {
    let secs = after.at.duration_since(before.at).as_secs_f64();
    let (mut received, mut missing, mut sent, mut datagrams, mut rtp) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut participants_sent, mut negotiations) = (0u64, 0u64);
    let mut latencies = Vec::new();
    let mut jitters = Vec::new();
    // Video freezes in the window, and each video track's longest gap (a
    // run through an outage shows its recovery there).
    let (mut frozen, mut video_tracks, mut longest_gaps) = (Duration::ZERO, 0u32, Vec::new());
    for (b, a) in before.stats.iter().zip(&after.stats) {
        sent += a.sent_frames - b.sent_frames;
        datagrams += a.datagrams_received - b.datagrams_received;
        rtp += a.rtp_received - b.rtp_received;
        participants_sent += a.datagrams_sent - b.datagrams_sent;
        negotiations += a.negotiations - b.negotiations;
        for (key, track) in &a.received {
            let earlier = b.received.get(key);
            let frames_before = earlier.map_or(0, |t| t.frames);
            if key.1 != MediaSource::Microphone {
                video_tracks += 1;
                frozen += track.frozen.saturating_sub(earlier.map_or(Duration::ZERO, |t| t.frozen));
                longest_gaps.push(track.longest_gap);
            }
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
    longest_gaps.sort_unstable();
    let frozen_pct =
        if video_tracks == 0 { 0.0 } else { frozen.as_secs_f64() / (secs * f64::from(video_tracks)) * 100.0 };
    let longest_gap_ms = longest_gaps.get(longest_gaps.len() / 2).map_or(0.0, |g| g.as_secs_f64() * 1000.0);
    let ms = |us: u64| us as f64 / 1000.0;
    let pct = |p: f64| latencies.get(((latencies.len().max(1) - 1) as f64 * p) as usize).copied().unwrap_or(0);
    let cpu = after.cpu - before.cpu;
    let streams = args.rooms * args.publishers * (args.publishers + args.subscribers - 1);
    let loss = if received + missing == 0 { 0.0 } else { missing as f64 / (received + missing) as f64 * 100.0 };
    let jitter_ms = jitters.get(jitters.len() / 2).copied().unwrap_or(0.0) / 1000.0;
    let cpu_us_per_datagram = if datagrams == 0 { 0.0 } else { cpu * 1e6 / datagrams as f64 };
    let cpu_us_per_rtp = if rtp == 0 { 0.0 } else { cpu * 1e6 / rtp as f64 };
    let server_sent = (after.udp.sent - before.udp.sent).saturating_sub(participants_sent);
    let cpu_us_per_sent = if server_sent == 0 { 0.0 } else { cpu * 1e6 / server_sent as f64 };
    let socket_drops = after.udp.receive_buffer_drops - before.udp.receive_buffer_drops;
    // A participant cut off stops receiving without a gap in any track:
    // the frames lost do not show it, this does.
    let cut_off =
        before.stats.iter().zip(&after.stats).filter(|(b, a)| a.signaling_closed && !b.signaling_closed).count();
    let media = match (args.no_audio, args.no_video) {
        (false, false) => format!("{} fps × {} B video + 50 audio frames/s", args.fps, args.frame_bytes),
        (true, _) => format!("{} fps × {} B video, no audio", args.fps, args.frame_bytes),
        (false, true) => "audio only (50 frames/s)".to_owned(),
    };
    let sfu = match args.sfu {
        Sfu::Conclave => "Conclave",
        Sfu::Janus => "Janus VideoRoom",
    };
    println!();
    println!(
        "media load on {sfu}: {} rooms × ({} publishers + {} subscribers), {media}{}, {secs:.1} s measured",
        args.rooms,
        args.publishers,
        args.subscribers,
        if args.simulcast { " (simulcast q/h/f)" } else { "" },
    );
    println!("  {:<32} {streams}", "streams forwarded (per source)");
    if peers_down > 0 {
        println!("  {:<32} {peers_down}", "peer connections never up");
    }
    println!("  {:<32} {cut_off}", "participants cut off");
    println!("  {:<32} {sent} ({:.0}/s)", "frames sent by publishers", sent as f64 / secs);
    println!("  {:<32} {received} ({:.0}/s)", "frames received", received as f64 / secs);
    println!("  {:<32} {missing} ({loss:.3} %)", "frames lost");
    println!(
        "  {:<32} p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        "send → receive latency",
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(pct(1.0))
    );
    println!("  {:<32} median {jitter_ms:.2} ms", "jitter (RFC 3550, per track)");
    println!("  {:<32} {frozen_pct:.2} % of the time", "video frozen (Chromium's rule)");
    println!("  {:<32} median {longest_gap_ms:.0} ms", "longest gap per video track");
    println!("  {:<32} {server_sent} ({:.0}/s)", "datagrams the server sent", server_sent as f64 / secs);
    println!("  {:<32} {datagrams} ({:.0}/s)", "datagrams participants read", datagrams as f64 / secs);
    println!("  {:<32} {socket_drops}", "dropped: socket buffers full");
    println!("  {:<32} {negotiations}", "SDP offers and answers");
    println!("  {:<32} {cpu:.2} s ({:.0} % of a core)", "server CPU", cpu / secs * 100.0);
    println!("  {:<32} {rtp} ({:.0}/s)", "of which RTP packets", rtp as f64 / secs);
    println!("  {:<32} {cpu_us_per_sent:.2} µs", "server CPU per datagram sent");
    println!("  {:<32} {cpu_us_per_datagram:.2} µs", "server CPU per datagram read");
    println!("  {:<32} {cpu_us_per_rtp:.2} µs", "server CPU per RTP packet");
    println!("  {:<32} {:.1} MiB", "server resident memory", after.rss_kib as f64 / 1024.0);
    if args.json {
        let figures = serde_json::json!({
            "sfu": sfu, "seconds": secs, "streams": streams,
            "frames_sent": sent, "frames_received": received, "frames_lost": missing, "loss_pct": loss,
            "latency_p50_ms": ms(pct(0.5)), "latency_p99_ms": ms(pct(0.99)), "jitter_ms": jitter_ms,
            "datagrams": datagrams, "rtp_packets": rtp, "cpu_s": cpu,
            "cpu_us_per_datagram": cpu_us_per_datagram, "cpu_us_per_rtp": cpu_us_per_rtp,
            "server_sent": server_sent, "cpu_us_per_sent": cpu_us_per_sent, "socket_drops": socket_drops,
            "negotiations": negotiations, "peers_down": peers_down, "cut_off": cut_off,
            "frozen_pct": frozen_pct, "longest_gap_ms": longest_gap_ms,
            "rss_mib": after.rss_kib as f64 / 1024.0,
        });
        println!("figures {figures}");
    }
}
