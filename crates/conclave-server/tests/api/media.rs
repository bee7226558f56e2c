//! The media plane through the real server: headless participants with
//! str0m peer connections publish synthetic audio, video and screen share
//! over UDP to the SFU, and check what arrives, from whom, and when it stops.
//! (Storage plays no part here, so these run on SQLite only.)

use crate::in_process_and_loopback;
use crate::meetings::{admit, guest_knocks, host_joins, hosted, WAIT};
use crate::support::{CapturedLogs, TestServer};
use conclave_client::media::{Impairment, MediaOptions, MediaParticipant, MediaStats, Outage, PathImpairment};
use conclave_client::MeetingConnection;
use conclave_proto::media::{MediaSource, Quality, Tile};
use conclave_proto::signal::*;
use conclave_store::Engine;
use std::time::{Duration, Instant};

pub(crate) const MEDIA_WAIT: Duration = Duration::from_secs(10);

/// A host and `guests` admitted guests, each with media started.
pub(crate) async fn meeting_with_media(
    srv: &TestServer,
    guests: &[&str],
    options: impl Fn(usize) -> MediaOptions,
) -> Vec<MediaParticipant> {
    let (host, _, meeting) = hosted(srv).await;
    let (mut host_conn, host_id) = host_joins(&host, &meeting).await;
    let mut joined: Vec<(MeetingConnection, ParticipantId)> = Vec::new();
    for (i, name) in guests.iter().enumerate() {
        let (mut conn, id, _) = guest_knocks(srv, &meeting, name, &format!("127.0.9.{}", i + 1)).await;
        admit(&mut host_conn, &mut conn, id).await;
        joined.push((conn, id));
    }
    let mut all = vec![MediaParticipant::start(host_conn, host_id, options(0)).await.unwrap()];
    for (i, (conn, id)) in joined.into_iter().enumerate() {
        all.push(MediaParticipant::start(conn, id, options(i + 1)).await.unwrap());
    }
    all
}

/// Waits for the server to refuse `p`'s `request`; returns the error code.
pub(crate) async fn refusal(p: &mut MediaParticipant, request: &str) -> String {
    let what = format!("the refusal of its {request}");
    let refused = |m: &ServerMessage| matches!(m, ServerMessage::Error { request: Some(r), .. } if r == request);
    match p.wait_for(&what, WAIT, refused).await.unwrap() {
        ServerMessage::Error { code, .. } => code,
        other => unreachable!("{other:?}"),
    }
}

fn frames(p: &MediaParticipant, from: &MediaParticipant, source: MediaSource) -> u64 {
    p.stats().frames_from(from.id, source)
}

/// The latest arrival of anything from `sender` in these stats.
fn last_from(stats: &MediaStats, sender: ParticipantId) -> Option<Instant> {
    stats.received.iter().filter(|((s, _), _)| *s == sender).filter_map(|(_, t)| t.last_at).max()
}

in_process_and_loopback!(three_participants_exchange_audio_video_and_a_screen_share);
async fn three_participants_exchange_audio_video_and_a_screen_share() {
    let srv = TestServer::start(Engine::Sqlite).await;
    let people = meeting_with_media(&srv, &["Ada", "Grace"], |_| MediaOptions::default()).await;
    for p in &people {
        let others: Vec<ParticipantId> = people.iter().map(|o| o.id).filter(|id| *id != p.id).collect();
        p.wait_until("audio and video from both others", MEDIA_WAIT, |s| {
            others.iter().all(|o| {
                s.frames_from(*o, MediaSource::Microphone) >= 25 && s.frames_from(*o, MediaSource::Camera) >= 15
            })
        })
        .await
        .unwrap();
    }
    // Grace shares her screen; the room allows it, the others see it.
    let grace = &people[2];
    grace.share_screen(true);
    for p in &people[..2] {
        p.wait_until("Grace's screen", MEDIA_WAIT, |s| s.frames_from(grace.id, MediaSource::Screen) >= 10)
            .await
            .unwrap();
    }
    for p in &people {
        let stats = p.stats();
        assert_eq!(stats.misrouted, 0, "every track came from the participant the server said");
        assert_eq!(stats.unreadable, 0);
        assert_eq!(stats.frames_from(p.id, MediaSource::Camera), 0, "nobody gets their own media back");
        let camera = stats.from(people[0].id, MediaSource::Camera).or(stats.from(people[1].id, MediaSource::Camera));
        assert!(camera.unwrap().keyframes >= 1, "video is shown from a keyframe");
    }
    let sfu = srv.state.media.as_ref().unwrap().stats();
    assert!(sfu.packets_forwarded > 200, "{sfu:?}");
    assert_eq!(sfu.peer_faults, 0);
    // Grace stops sharing: the others stop receiving it.
    grace.share_screen(false);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before = frames(&people[0], grace, MediaSource::Screen);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(frames(&people[0], grace, MediaSource::Screen), before, "a stopped share is no longer forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_participant_has_no_media_path_until_admitted() {
    let srv = TestServer::start(Engine::Sqlite).await;
    let (host, _, meeting) = hosted(&srv).await;
    let (host_conn, host_id) = host_joins(&host, &meeting).await;
    let host_media = MediaParticipant::start(host_conn, host_id, MediaOptions::default()).await.unwrap();
    host_media.wait_until("the host's media session", MEDIA_WAIT, |s| s.connected).await.unwrap();

    let (guest_conn, guest_id, _) = guest_knocks(&srv, &meeting, "Mallory", "127.0.9.9").await;
    let mut guest = MediaParticipant::start(guest_conn, guest_id, MediaOptions::default()).await.unwrap();
    // Its offer is refused by the room; the SFU never hears of it.
    assert_eq!(refusal(&mut guest, "media_offer").await, "forbidden");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stats = guest.stats();
    assert!(!stats.connected);
    assert_eq!(stats.total_frames(), 0);
    let plane = srv.state.media.as_ref().unwrap();
    assert_eq!(plane.stats().peers, 1, "only the host has a media session");

    // A STUN request guessing at a session is dropped without an answer.
    let probe = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let unrouted_before = plane.stats().datagrams_unrouted;
    probe.send_to(&stun_binding_request("guessedufrag:x"), plane.advertised()).await.unwrap();
    let mut buf = [0u8; 1500];
    let answer = tokio::time::timeout(Duration::from_millis(500), probe.recv_from(&mut buf)).await;
    assert!(answer.is_err(), "no answer to a stranger");
    assert_eq!(plane.stats().datagrams_unrouted, unrouted_before + 1);

    // Admitted, the same participant gets the host's media.
    let host_ctl = host_media;
    host_ctl.send(ClientMessage::Admit { participant_id: guest_id });
    guest.wait_for("admission", WAIT, |m| matches!(m, ServerMessage::Admitted { .. })).await.unwrap();
    guest
        .wait_until("the host's media", MEDIA_WAIT, |s| s.frames_from(host_id, MediaSource::Camera) >= 10)
        .await
        .unwrap();
    host_ctl
        .wait_until("the guest's media", MEDIA_WAIT, |s| s.frames_from(guest_id, MediaSource::Microphone) >= 10)
        .await
        .unwrap();
}

in_process_and_loopback!(a_removed_participant_stops_receiving_and_sending_within_a_second);
async fn a_removed_participant_stops_receiving_and_sending_within_a_second() {
    let srv = TestServer::start(Engine::Sqlite).await;
    let people = meeting_with_media(&srv, &["Ada", "Eve"], |_| MediaOptions::default()).await;
    let (host, ada, eve) = (&people[0], &people[1], &people[2]);
    for p in &people {
        p.wait_until("media from everyone", MEDIA_WAIT, |s| s.received.len() >= 4).await.unwrap();
    }
    let eve_sent_before = eve.stats().sent_frames;
    host.send(ClientMessage::Remove { participant_id: eve.id });
    let removed_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let cutoff = removed_at + Duration::from_secs(1);
    // Eve's client kept sending (it ignores the removal, as a hostile one would).
    assert!(eve.stats().sent_frames > eve_sent_before + 50);
    let eve_stats = eve.stats();
    assert!(eve_stats.signaling_closed);
    for sender in [host.id, ada.id] {
        let last = last_from(&eve_stats, sender).unwrap();
        assert!(last <= cutoff, "Eve received media {:?} after her removal", last - removed_at);
    }
    for p in [host, ada] {
        let last = last_from(&p.stats(), eve.id).unwrap();
        assert!(last <= cutoff, "Eve's media reached {} {:?} after her removal", p.id, last - removed_at);
    }
    // The others still hear each other.
    let before = frames(host, ada, MediaSource::Microphone);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(frames(host, ada, MediaSource::Microphone) > before + 10);
    assert_eq!(srv.state.media.as_ref().unwrap().stats().peers, 2);
}

/// The median of what `p` measured from `sender`'s camera, send to receipt.
fn median_latency(p: &MediaParticipant, sender: ParticipantId) -> Duration {
    let mut us = p.stats().from(sender, MediaSource::Camera).map(|t| t.latency_us.clone()).unwrap_or_default();
    us.sort_unstable();
    Duration::from_micros(us.get(us.len() / 2).copied().unwrap_or(0))
}

/// A participant on a bad network of its own, made at its socket (what
/// `conclave loadtest media --loss/--jitter/--outage` gives each of its
/// participants, whatever the server): every datagram both ways takes the
/// path's delay, it still exchanges media through 5 % loss each way, an
/// outage cuts its media off both ways, and its media comes back after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_on_a_bad_network_of_its_own_loses_media_in_an_outage_and_gets_it_back() {
    let srv = TestServer::start(Engine::Sqlite).await;
    const DELAY: Duration = Duration::from_millis(60);
    let outage = Outage::default();
    let bad = Impairment { loss: 0.05, delay: DELAY, ..Impairment::default() };
    let people = meeting_with_media(&srv, &["Ada"], |n| MediaOptions {
        impairment: (n == 1).then(|| PathImpairment { up: bad, down: bad, seed: 3, outage: outage.clone() }),
        ..MediaOptions::default()
    })
    .await;
    let (host, ada) = (&people[0], &people[1]);
    for (p, from) in [(host, ada), (ada, host)] {
        p.wait_until("video through the bad network", MEDIA_WAIT, |s| {
            s.frames_from(from.id, MediaSource::Camera) >= 60
        })
        .await
        .unwrap();
    }
    // Ada's path holds every datagram for its delay, whichever way it goes.
    assert!(median_latency(ada, host.id) >= DELAY, "{:?} to Ada", median_latency(ada, host.id));
    assert!(median_latency(host, ada.id) >= DELAY, "{:?} from Ada", median_latency(host, ada.id));

    outage.set_down(true);
    // Frames already in hand may still come out while the receiver gives
    // up on the packets the outage took from before them.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (to_ada, from_ada) = (frames(ada, host, MediaSource::Camera), frames(host, ada, MediaSource::Camera));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(frames(ada, host, MediaSource::Camera), to_ada, "nothing reaches Ada in the outage");
    assert_eq!(frames(host, ada, MediaSource::Camera), from_ada, "nothing of Ada's gets out in the outage");

    outage.set_down(false);
    host.wait_until("Ada's video back", MEDIA_WAIT, |s| s.frames_from(ada.id, MediaSource::Camera) >= from_ada + 30)
        .await
        .unwrap();
    ada.wait_until("the host's video back", MEDIA_WAIT, |s| s.frames_from(host.id, MediaSource::Camera) >= to_ada + 30)
        .await
        .unwrap();
}

in_process_and_loopback!(host_mute_and_stop_video_are_enforced_at_the_sfu);
async fn host_mute_and_stop_video_are_enforced_at_the_sfu() {
    let srv = TestServer::start(Engine::Sqlite).await;
    let people = meeting_with_media(&srv, &["Loud"], |_| MediaOptions::default()).await;
    let (host, loud) = (&people[0], &people[1]);
    host.wait_until("the guest's media", MEDIA_WAIT, |s| {
        s.frames_from(loud.id, MediaSource::Microphone) > 10 && s.frames_from(loud.id, MediaSource::Camera) > 5
    })
    .await
    .unwrap();
    host.send(ClientMessage::Mute { participant_id: loud.id });
    host.send(ClientMessage::StopVideo { participant_id: loud.id });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (audio, video) = (frames(host, loud, MediaSource::Microphone), frames(host, loud, MediaSource::Camera));
    let sent = loud.stats().sent_frames;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // The guest's client keeps sending; the SFU drops it.
    assert!(loud.stats().sent_frames > sent + 40);
    assert_eq!(frames(host, loud, MediaSource::Microphone), audio, "muted audio is not forwarded");
    assert_eq!(frames(host, loud, MediaSource::Camera), video, "stopped video is not forwarded");
    assert!(srv.state.media.as_ref().unwrap().stats().packets_blocked > 40);
    // The guest unmutes themselves (allowed by default): audio flows again.
    loud.send(ClientMessage::SetMedia { audio_muted: Some(false), video_muted: Some(false) });
    host.wait_until("audio again", MEDIA_WAIT, |s| s.frames_from(loud.id, MediaSource::Microphone) > audio + 10)
        .await
        .unwrap();
    host.wait_until("video again", MEDIA_WAIT, |s| s.frames_from(loud.id, MediaSource::Camera) > video + 5)
        .await
        .unwrap();
}

in_process_and_loopback!(subscriptions_choose_the_videos_and_their_simulcast_layers);
async fn subscriptions_choose_the_videos_and_their_simulcast_layers() {
    let srv = TestServer::start(Engine::Sqlite).await;
    let simulcast = |i: usize| MediaOptions {
        simulcast: if i == 0 { vec!["q".into(), "h".into(), "f".into()] } else { Vec::new() },
        ..MediaOptions::default()
    };
    let people = meeting_with_media(&srv, &["Viewer"], simulcast).await;
    let (host, viewer) = (&people[0], &people[1]);
    let camera = |quality| ClientMessage::Subscribe {
        tiles: vec![Tile { participant_id: host.id, source: MediaSource::Camera, quality }],
    };
    let layer_now = |p: &MediaParticipant| p.stats().from(host.id, MediaSource::Camera).and_then(|t| t.last_layer);
    // A gallery tile: the lowest layer, and the host is asked for nothing more.
    viewer.send(camera(Quality::Low));
    wait_for_layer(viewer, &layer_now, 0).await;
    host.wait_until("only q requested", MEDIA_WAIT, |s| s.requested_layers.values().any(|r| r == &["q"]))
        .await
        .unwrap();
    // Pinned: the top layer, switched at a keyframe.
    viewer.send(camera(Quality::High));
    wait_for_layer(viewer, &layer_now, 2).await;
    host.wait_until("f requested", MEDIA_WAIT, |s| s.requested_layers.values().any(|r| r == &["f"])).await.unwrap();
    // Off screen: no video at all, audio still.
    viewer.send(ClientMessage::Subscribe { tiles: Vec::new() });
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (video, audio) = (frames(viewer, host, MediaSource::Camera), frames(viewer, host, MediaSource::Microphone));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(frames(viewer, host, MediaSource::Camera), video, "video nobody looks at is not sent");
    assert!(frames(viewer, host, MediaSource::Microphone) > audio + 20);
    host.wait_until("no layers requested", MEDIA_WAIT, |s| s.requested_layers.values().any(|r| r.is_empty()))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulcast_steps_down_when_the_subscribers_bandwidth_drops() {
    let srv = TestServer::start(Engine::Sqlite).await;
    let simulcast = |i: usize| MediaOptions {
        simulcast: if i == 0 { vec!["q".into(), "h".into(), "f".into()] } else { Vec::new() },
        camera: i == 0,
        // Top layer ~1 Mbit/s, middle ~250 kbit/s, low ~60 kbit/s.
        camera_frame_bytes: 4000,
        ..MediaOptions::default()
    };
    let people = meeting_with_media(&srv, &["Viewer"], simulcast).await;
    let (host, viewer) = (&people[0], &people[1]);
    let layer_now = |p: &MediaParticipant| p.stats().from(host.id, MediaSource::Camera).and_then(|t| t.last_layer);
    viewer.send(ClientMessage::Subscribe {
        tiles: vec![Tile { participant_id: host.id, source: MediaSource::Camera, quality: Quality::High }],
    });
    wait_for_layer(viewer, &layer_now, 2).await;
    // The viewer's link narrows to 400 kbit/s: the top layer no longer fits.
    viewer.limit_receive(Some(400));
    let deadline = Instant::now() + Duration::from_secs(20);
    while layer_now(viewer).is_none_or(|l| l >= 2) {
        assert!(Instant::now() < deadline, "still on the top layer: {:?}", viewer.stats().dropped_by_limit);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(viewer.stats().dropped_by_limit > 0, "the bottleneck was felt");
    let lower = layer_now(viewer).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(layer_now(viewer).unwrap() <= lower.max(1), "stays on a lower layer while the link is narrow");
}

in_process_and_loopback!(a_vanished_participants_session_is_restarted_without_disturbing_the_others);
async fn a_vanished_participants_session_is_restarted_without_disturbing_the_others() {
    let srv = TestServer::start(Engine::Sqlite).await;
    let people = meeting_with_media(&srv, &["Ghost"], |_| MediaOptions::default()).await;
    for p in &people {
        p.wait_until("connected", MEDIA_WAIT, |s| s.connected && s.total_frames() > 10).await.unwrap();
    }
    let plane = srv.state.media.as_ref().unwrap();
    let mut people = people.into_iter();
    let (host, ghost) = (people.next().unwrap(), people.next().unwrap());
    // The ghost's app dies without a word: ICE notices the silence.
    let started = Instant::now();
    ghost.stop();
    while plane.stats().sessions_lost == 0 {
        assert!(started.elapsed() < Duration::from_secs(45), "the lost session was never noticed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The host's own session is untouched and keeps working.
    assert_eq!(plane.stats().peer_faults, 0);
    assert!(host.stats().connected);
}

/// coturn on loopback with the TURN REST API's shared secret.
struct Coturn {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Coturn {
    /// Starts coturn on a free loopback port and waits until it answers,
    /// trying other ports if one was taken meanwhile.
    async fn start(secret: &str) -> Self {
        let log = std::env::temp_dir().join(format!("conclave-coturn-{}.log", std::process::id()));
        for _ in 0..3 {
            let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let relay_from = 20_000 + port % 10_000;
            let child = std::process::Command::new("turnserver")
                .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--allow-loopback-peers"])
                .args([
                    "--no-tls",
                    "--no-dtls",
                    "--no-cli",
                    "--no-tcp-relay",
                    "--realm=conclave.test",
                    "--use-auth-secret",
                ])
                .arg(format!("--static-auth-secret={secret}"))
                .arg(format!("--listening-port={port}"))
                .arg(format!("--min-port={relay_from}"))
                .arg(format!("--max-port={}", relay_from + 100))
                .args(["--log-file=stdout", "--simple-log"])
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect(
                    "coturn's turnserver must be installed (`cargo xtask test` installs it: apt-get install coturn)",
                );
            let coturn = Self { child, addr: format!("127.0.0.1:{port}").parse().unwrap() };
            if coturn.answers().await {
                return coturn;
            }
        }
        panic!("coturn did not start; its log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    }

    /// True once coturn answers a STUN binding request (within 10 s).
    async fn answers(&self) -> bool {
        let probe = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
        request.extend_from_slice(&[7; 12]);
        let mut buf = [0u8; 512];
        for _ in 0..50 {
            probe.send_to(&request, self.addr).await.unwrap();
            if tokio::time::timeout(Duration::from_millis(200), probe.recv_from(&mut buf)).await.is_ok() {
                return true;
            }
        }
        false
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_reaching_the_sfu_only_through_coturn_gets_media() {
    let secret = "a shared secret only coturn and Conclave know";
    let coturn = Coturn::start(secret).await;
    let turn_url = format!("turn:{}?transport=udp", coturn.addr);
    let srv = TestServer::start_with(Engine::Sqlite, |c| {
        c.media.as_mut().unwrap().turn = Some(conclave_server::TurnConfig {
            urls: vec![turn_url.clone()],
            secret: secret.into(),
            ttl: Duration::from_secs(600),
        });
    })
    .await;
    // TURN credentials expire by the wall clock, which coturn reads.
    let wall_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    srv.clock.advance(Duration::from_millis((wall_ms - crate::support::START_MS).max(0) as u64));

    let (host, _, meeting) = hosted(&srv).await;
    let (mut host_conn, host_id) = host_joins(&host, &meeting).await;
    let ticket = srv
        .client_from("127.0.9.7")
        .join_meeting(&conclave_proto::JoinMeetingRequest {
            link_secret: Some(meeting.link_secret.clone()),
            code: None,
            passcode: None,
            display_name: "Behind a firewall".into(),
        })
        .await
        .unwrap();
    let [ice] = ticket.ice_servers.as_slice() else { panic!("one TURN server: {:?}", ticket.ice_servers) };
    assert_eq!(ice.urls, std::slice::from_ref(&turn_url));
    let username = ice.username.clone().unwrap();
    let expiry: i64 = username.split(':').next().unwrap().parse().unwrap();
    assert!(expiry * 1000 > wall_ms && expiry * 1000 <= wall_ms + 601_000, "credentials expire in the configured time");
    let mut guest_conn = MeetingConnection::connect(&ticket.signaling_url).await.unwrap();
    let ServerMessage::Waiting { participant_id: guest_id, .. } = guest_conn.next(WAIT).await.unwrap() else {
        panic!()
    };
    admit(&mut host_conn, &mut guest_conn, guest_id).await;

    let relay = conclave_client::media::RelayOptions {
        server: coturn.addr,
        username: username.clone(),
        password: ice.credential.clone().unwrap(),
    };
    // coturn checks what Conclave minted: forged or expired credentials get no relay.
    assert!(conclave_client::media::allocate_relay(&relay).await.is_ok());
    let forged = conclave_client::media::RelayOptions { password: "Zm9yZ2VkIGNyZWRlbnRpYWw=".into(), ..relay.clone() };
    assert!(conclave_client::media::allocate_relay(&forged).await.is_err());
    let (old_user, old_pass) =
        conclave_server::media::turn_credentials(secret, wall_ms - 20 * 60_000, Duration::from_secs(60), "late");
    let expired = conclave_client::media::RelayOptions { username: old_user, password: old_pass, ..relay.clone() };
    assert!(conclave_client::media::allocate_relay(&expired).await.is_err());

    let host_media = MediaParticipant::start(host_conn, host_id, MediaOptions::default()).await.unwrap();
    let guest =
        MediaParticipant::start(guest_conn, guest_id, MediaOptions { relay: Some(relay), ..MediaOptions::default() })
            .await
            .unwrap();
    guest
        .wait_until("the host's media through the relay", MEDIA_WAIT, |s| {
            s.frames_from(host_id, MediaSource::Camera) >= 10 && s.frames_from(host_id, MediaSource::Microphone) >= 10
        })
        .await
        .unwrap();
    host_media
        .wait_until("the guest's media through the relay", MEDIA_WAIT, |s| {
            s.frames_from(guest_id, MediaSource::Camera) >= 10
        })
        .await
        .unwrap();
}

async fn wait_for_layer(p: &MediaParticipant, layer_now: &impl Fn(&MediaParticipant) -> Option<u8>, layer: u8) {
    let deadline = Instant::now() + MEDIA_WAIT;
    while layer_now(p) != Some(layer) {
        assert!(Instant::now() < deadline, "never switched to layer {layer}: {:#?}", p.stats().received);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And stays there.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(layer_now(p), Some(layer));
}

/// str0m logs the SRTP profile that DTLS negotiated; both ends must have
/// chosen AES-256-GCM.
#[tokio::test(flavor = "current_thread")]
async fn dtls_negotiates_aead_aes_256_gcm() {
    let logs = CapturedLogs::default();
    let subscriber = logs.subscriber("str0m=debug");
    let _guard = tracing::subscriber::set_default(subscriber);
    let srv = TestServer::start(Engine::Sqlite).await;
    let people = meeting_with_media(&srv, &["Ada"], |_| MediaOptions::default()).await;
    for p in &people {
        p.wait_until("connected", MEDIA_WAIT, |s| s.connected).await.unwrap();
    }
    let text = String::from_utf8_lossy(&logs.bytes()).into_owned();
    let profiles: Vec<&str> = text.lines().filter(|l| l.contains("SRTP keying material and profile")).collect();
    assert_eq!(profiles.len(), 4, "two sessions, two ends each: {profiles:?}");
    assert!(profiles.iter().all(|l| l.ends_with("SRTP_AEAD_AES_256_GCM")), "{profiles:?}");
}

/// A minimal STUN binding request with this USERNAME.
fn stun_binding_request(username: &str) -> Vec<u8> {
    let mut attr = Vec::new();
    attr.extend_from_slice(&0x0006u16.to_be_bytes());
    attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attr.extend_from_slice(username.as_bytes());
    while attr.len() % 4 != 0 {
        attr.push(0);
    }
    let mut msg = vec![0x00, 0x01];
    msg.extend_from_slice(&(attr.len() as u16).to_be_bytes());
    msg.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    msg.extend_from_slice(&[1; 12]);
    msg.extend_from_slice(&attr);
    msg
}

/// Shannon entropy, in bits per byte, of `bytes`.
fn entropy(bytes: &[u8]) -> f64 {
    let mut counts = [0usize; 256];
    for b in bytes {
        counts[*b as usize] += 1;
    }
    let n = bytes.len() as f64;
    counts.iter().filter(|c| **c > 0).map(|c| *c as f64 / n).map(|p| -p * p.log2()).sum()
}

in_process_and_loopback!(an_end_to_end_encrypted_meeting_is_opaque_to_the_sfu);
async fn an_end_to_end_encrypted_meeting_is_opaque_to_the_sfu() {
    let tap = conclave_sfu::FrameTap::default();
    let srv = TestServer::start_with(Engine::Sqlite, |c| c.media.as_mut().unwrap().tap = Some(tap.clone())).await;
    let e2ee = || MediaOptions { e2ee: true, ..MediaOptions::default() };
    let (host, _, meeting) = hosted(&srv).await;
    let (mut host_conn, host_id) = host_joins(&host, &meeting).await;
    let (mut ada_conn, ada_id, _) = guest_knocks(&srv, &meeting, "Ada", "127.0.9.1").await;
    admit(&mut host_conn, &mut ada_conn, ada_id).await;
    let (grace_conn, grace_id, _) = guest_knocks(&srv, &meeting, "Grace", "127.0.9.2").await;
    let host_m = MediaParticipant::start(host_conn, host_id, e2ee()).await.unwrap();
    let ada = MediaParticipant::start(ada_conn, ada_id, e2ee()).await.unwrap();
    let mut grace = MediaParticipant::start(grace_conn, grace_id, e2ee()).await.unwrap();

    // Host and Ada: one group, the same security code, each other's video.
    host_m
        .wait_until("Ada's video, decrypted", MEDIA_WAIT, |s| s.frames_from(ada_id, MediaSource::Camera) >= 10)
        .await
        .unwrap();
    ada.wait_until("the host's video, decrypted", MEDIA_WAIT, |s| s.frames_from(host_id, MediaSource::Camera) >= 10)
        .await
        .unwrap();
    let two = host_m.stats().security_code.expect("a security code");
    assert_eq!(ada.stats().security_code.as_ref(), Some(&two), "both show the same code");

    // Grace, waiting, is in no group: her request for a credential is refused and no Welcome reaches her.
    refusal(&mut grace, "e2ee_credential_request").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!grace.stats().welcomed);
    assert_eq!(grace.stats().total_frames(), 0);

    // Admitted, she is added: all three show one new code and decrypt each other.
    host_m.send(ClientMessage::Admit { participant_id: grace_id });
    grace.wait_until("the Welcome", MEDIA_WAIT, |s| s.welcomed).await.unwrap();
    for p in [&host_m, &ada, &grace] {
        p.wait_until("video from both others", MEDIA_WAIT, |s| {
            [host_id, ada_id, grace_id]
                .iter()
                .filter(|o| **o != p.id)
                .all(|o| s.frames_from(*o, MediaSource::Camera) >= 5)
        })
        .await
        .unwrap();
    }
    let three = host_m.stats().security_code.unwrap();
    assert_ne!(three, two, "a new member changes the code");
    assert_eq!(ada.stats().security_code.as_ref(), Some(&three));
    assert_eq!(grace.stats().security_code.as_ref(), Some(&three));

    // What the SFU forwarded: nothing readable.
    let frames = tap.lock().unwrap().clone();
    assert!(frames.len() > 200, "the tap saw {} frames", frames.len());
    assert!(frames.iter().all(|f| conclave_client::media::synthetic::parse(f).is_none()), "a frame in the clear");
    assert!(!frames.iter().any(|f| f.windows(4).any(|w| w == b"CNCL")), "plaintext markers in forwarded frames");
    // Where a clear frame has its header (sender, source, sequence), the bytes are as random as can be.
    let headers: Vec<u8> = frames.iter().filter(|f| f.len() >= 40).flat_map(|f| f[10..40].to_vec()).collect();
    let bits = entropy(&headers);
    assert!(bits > 7.5, "entropy {bits:.2} bits/byte");

    // Grace is removed: the others move to a new epoch and a new code.
    host_m.send(ClientMessage::Remove { participant_id: grace_id });
    host_m
        .wait_until("a new code without Grace", MEDIA_WAIT, |s| s.security_code.as_ref().is_some_and(|c| *c != three))
        .await
        .unwrap();
    ada.wait_until("the same new code", MEDIA_WAIT, |s| s.security_code == host_m.stats().security_code).await.unwrap();
    assert_eq!(grace.stats().security_code.as_ref(), Some(&three), "Grace is left on the old epoch");
    let after = ada.stats().frames_from(host_id, MediaSource::Camera);
    ada.wait_until("video under the new keys", MEDIA_WAIT, |s| {
        s.frames_from(host_id, MediaSource::Camera) > after + 10
    })
    .await
    .unwrap();
}

/// The tap is not blind itself: without end-to-end encryption it reads
/// every frame (which is why E2EE is on by default in the product).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_e2ee_the_sfu_tap_reads_the_frames() {
    let tap = conclave_sfu::FrameTap::default();
    let srv = TestServer::start_with(Engine::Sqlite, |c| c.media.as_mut().unwrap().tap = Some(tap.clone())).await;
    let people = meeting_with_media(&srv, &["Ada"], |_| MediaOptions::default()).await;
    people[1]
        .wait_until("the host's video", MEDIA_WAIT, |s| s.frames_from(people[0].id, MediaSource::Camera) >= 10)
        .await
        .unwrap();
    let frames = tap.lock().unwrap().clone();
    let readable = frames.iter().filter(|f| conclave_client::media::synthetic::parse(f).is_some()).count();
    assert!(readable > 20, "{readable} of {} frames readable", frames.len());
}
