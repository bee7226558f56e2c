//! ICE over TCP through the real driver: a participant whose network lets
//! no UDP through (its only candidate is an active TCP one) connects to the
//! media plane's passive TCP candidate, completes ICE and DTLS in RFC 4571
//! frames, and the session is up.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use conclave_proto::media::{MediaSource, PublishedTrack};
use conclave_proto::signal::ServerMessage;
use conclave_sfu::{Command, MediaPlane, MeetingKey, Rights, SfuConfig, SfuEvent};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

#[tokio::test]
async fn a_participant_without_udp_connects_over_tcp() {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (udp_addr, tcp_addr) = (udp.local_addr().unwrap(), tcp.local_addr().unwrap());
    let (events, mut event_rx) = mpsc::unbounded_channel();
    let config = SfuConfig::new(udp_addr, 1000).with_tcp(tcp_addr);
    let plane = MediaPlane::start(udp, Some(tcp), config, events).unwrap();
    assert_eq!(plane.advertised_tcp(), Some(tcp_addr));

    let meeting = MeetingKey::from("m");
    let rights = Rights { microphone: true, camera: true, screen: false };
    plane.send(Command::Admit { meeting: meeting.clone(), participant: 1, rights });

    // The participant: TCP only, in the active role (it connects).
    let local: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut rtc = Rtc::builder().set_crypto_provider(conclave_dtls::crypto_provider()).build(Instant::now());
    let candidate = Candidate::builder().tcp().host(local).tcptype(TcpType::Active).build().unwrap();
    rtc.add_local_candidate(candidate);
    let mut changes = rtc.sdp_api();
    let mid = changes.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let (offer, pending) = changes.apply().unwrap();
    let offer = offer.to_sdp_string();
    assert!(!offer.contains(" udp "), "no UDP candidate at all:\n{offer}");
    let tracks = vec![PublishedTrack { mid: mid.to_string(), source: MediaSource::Microphone }];
    plane.send(Command::Offer { meeting: meeting.clone(), participant: 1, sdp: offer, tracks });
    let answer = loop {
        match tokio::time::timeout(Duration::from_secs(5), event_rx.recv()).await.unwrap().unwrap() {
            SfuEvent::Signal { message: ServerMessage::MediaAnswer { sdp }, .. } => break sdp,
            SfuEvent::Signal { message, .. } => panic!("unexpected {message:?}"),
            SfuEvent::ActiveSpeaker { .. } | SfuEvent::Quality { .. } => {}
        }
    };
    let passive = format!("{} {} typ host tcptype passive", tcp_addr.ip(), tcp_addr.port());
    assert!(
        answer.lines().any(|l| l.starts_with("a=candidate:") && l.contains(" tcp ") && l.contains(&passive)),
        "{answer}"
    );
    rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap()).unwrap();

    // The driver's loop, over one TCP connection to the passive candidate.
    let mut stream: Option<TcpStream> = None;
    let mut buf = vec![0u8; 4096];
    let mut pending_in: Vec<u8> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut connected = false;
    while !connected {
        assert!(Instant::now() < deadline, "ICE and DTLS over TCP did not complete");
        let wait = loop {
            match rtc.poll_output().unwrap() {
                Output::Transmit(t) => {
                    assert_eq!(t.proto, Protocol::Tcp, "nothing goes over UDP");
                    assert_eq!(t.destination, tcp_addr);
                    if stream.is_none() {
                        stream = Some(TcpStream::connect(t.destination).await.unwrap());
                    }
                    let mut framed = (t.contents.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&t.contents);
                    stream.as_mut().unwrap().write_all(&framed).await.unwrap();
                }
                Output::Event(Event::Connected) => connected = true,
                Output::Event(_) => {}
                Output::Timeout(at) => break at,
            }
        };
        if connected {
            break;
        }
        let sleep = wait.saturating_duration_since(Instant::now()).min(Duration::from_millis(50));
        let Some(s) = stream.as_mut() else {
            tokio::time::sleep(sleep).await;
            rtc.handle_input(Input::Timeout(Instant::now())).unwrap();
            continue;
        };
        match tokio::time::timeout(sleep, s.read(&mut buf)).await {
            Ok(Ok(0)) => panic!("the media plane closed the connection"),
            Ok(Ok(n)) => pending_in.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => {}
        }
        // Whole RFC 4571 frames, each one packet for str0m.
        while pending_in.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([pending_in[0], pending_in[1]]));
            if pending_in.len() < 2 + len {
                break;
            }
            let packet: Vec<u8> = pending_in.drain(..2 + len).skip(2).collect();
            let source = tcp_addr;
            let receive = Receive {
                proto: Protocol::Tcp,
                source,
                destination: local,
                contents: packet.as_slice().try_into().unwrap(),
            };
            rtc.handle_input(Input::Receive(Instant::now(), receive)).unwrap();
        }
        rtc.handle_input(Input::Timeout(Instant::now())).unwrap();
    }
    assert!(plane.stats().datagrams_in > 0);
}
