//! The tokio driver around [`Sfu`]: one task owning the UDP port, feeding
//! the state machine datagrams, commands and time, and carrying out what it
//! asks for. Nothing here decides anything.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use str0m::net::Protocol;

use crate::sfu::{Command, Sfu, SfuConfig, SfuEvent, SfuStats};
use crate::tcp::{self, Connections, TcpFrame};

/// Datagrams read in one go before time and output are handled.
const BATCH: usize = 64;
/// Largest datagram accepted (above any path MTU).
const MAX_DATAGRAM: usize = 2048;
/// The port's kernel buffers, each way. Every participant's packets queue
/// in this one socket while a wake-up is worked through; the default of
/// about 200 KB (a few hundred small packets) overflowed under the
/// feedback of a few hundred subscribers, and a publisher's packet lost
/// there is lost for everyone.
const SOCKET_BUFFER: usize = 4 << 20;

/// A handle on the running media plane.
#[derive(Clone)]
pub struct MediaPlane {
    commands: mpsc::UnboundedSender<Command>,
    advertised: SocketAddr,
    advertised_tcp: Option<SocketAddr>,
    stats: Arc<Mutex<SfuStats>>,
}

impl MediaPlane {
    /// Starts the media plane on `socket` (and `tcp`, for ICE over TCP,
    /// when the configuration advertises it), telling peers to reach it at
    /// the configuration's addresses. Events for meetings arrive on
    /// `events`. Must be called within a tokio runtime.
    pub fn start(
        socket: std::net::UdpSocket,
        tcp: Option<std::net::TcpListener>,
        config: SfuConfig,
        events: mpsc::UnboundedSender<SfuEvent>,
    ) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        enlarge_buffers(&socket);
        let socket = UdpSocket::from_std(socket)?;
        let (commands, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Mutex::new(SfuStats::default()));
        let (advertised, advertised_tcp) = (config.advertised, config.tcp);
        let sfu = Sfu::new(config, Instant::now());
        let span = tracing::info_span!("media", %advertised);
        let connections = Connections::default();
        let tcp_frames = match tcp {
            Some(listener) => {
                listener.set_nonblocking(true)?;
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let (frames, received) = mpsc::channel(TCP_FRAMES_QUEUED);
                let accepting = tcp::accept(listener, connections.clone(), frames);
                tokio::spawn(tracing::Instrument::instrument(accepting, span.clone()));
                Some(received)
            }
            None => None,
        };
        let io = Io { socket, tcp_frames, connections };
        tokio::spawn(tracing::Instrument::instrument(run(io, sfu, rx, events, stats.clone()), span));
        Ok(Self { commands, advertised, advertised_tcp, stats })
    }

    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    pub fn advertised(&self) -> SocketAddr {
        self.advertised
    }

    /// Where participants reach the media plane over TCP, when offered.
    pub fn advertised_tcp(&self) -> Option<SocketAddr> {
        self.advertised_tcp
    }

    pub fn stats(&self) -> SfuStats {
        *self.stats.lock().expect("stats lock")
    }
}

/// The next TCP frame; never, when ICE over TCP is off.
async fn next_frame(frames: &mut Option<mpsc::Receiver<TcpFrame>>) -> Option<TcpFrame> {
    match frames {
        Some(frames) => frames.recv().await,
        None => std::future::pending().await,
    }
}

/// Asks for [`SOCKET_BUFFER`] each way; the kernel grants up to
/// `net.core.rmem_max` and `wmem_max`, which operators may need to raise.
fn enlarge_buffers(socket: &std::net::UdpSocket) {
    let socket = socket2::SockRef::from(socket);
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    let reported = socket.recv_buffer_size().unwrap_or(0);
    // Linux reports twice what it grants (it counts its own bookkeeping).
    let granted = if cfg!(target_os = "linux") { reported / 2 } else { reported };
    if granted < SOCKET_BUFFER {
        tracing::warn!(granted, wanted = SOCKET_BUFFER, "small UDP receive buffer; raise net.core.rmem_max");
    }
}

/// Frames from every TCP connection waiting for the SFU; a full queue
/// holds the connections' readers back (TCP's own flow control).
const TCP_FRAMES_QUEUED: usize = 1024;

/// The media plane's sockets.
struct Io {
    socket: UdpSocket,
    /// Frames from ICE-over-TCP connections, when offered.
    tcp_frames: Option<mpsc::Receiver<TcpFrame>>,
    connections: Connections,
}

async fn run(
    io: Io,
    mut sfu: Sfu,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<SfuEvent>,
    stats: Arc<Mutex<SfuStats>>,
) {
    let Io { socket, mut tcp_frames, connections } = io;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut outgoing = Vec::new();
    loop {
        let deadline = tokio::time::Instant::from_std(sfu.next_deadline());
        tokio::select! {
            biased;
            command = commands.recv() => match command {
                Some(command) => sfu.handle_command(Instant::now(), command),
                None => break,
            },
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, from)) => {
                    sfu.handle_datagram(Instant::now(), from, &buf[..n]);
                    for _ in 1..BATCH {
                        match socket.try_recv_from(&mut buf) {
                            Ok((n, from)) => sfu.handle_datagram(Instant::now(), from, &buf[..n]),
                            Err(_) => break,
                        }
                    }
                }
                // ICMP errors from earlier sends surface here on Linux; they
                // concern one peer, which its own timeouts will notice.
                Err(err) => tracing::trace!(error = %err, "UDP receive error"),
            },
            Some(frame) = next_frame(&mut tcp_frames) => {
                sfu.handle_packet(Instant::now(), Protocol::Tcp, frame.from, &frame.bytes);
            }
            () = tokio::time::sleep_until(deadline) => {}
        }
        sfu.handle_timeout(Instant::now());
        outgoing.extend(std::iter::from_fn(|| sfu.poll_transmit()));
        outgoing.retain(|t| {
            if t.proto == Protocol::Tcp {
                connections.send(t.destination, &t.contents);
            }
            t.proto != Protocol::Tcp
        });
        crate::batch_send::send_all(&socket, &outgoing).await;
        outgoing.clear();
        while let Some(event) = sfu.poll_event() {
            let _ = events.send(event);
        }
        *stats.lock().expect("stats lock") = sfu.stats;
    }
    tracing::info!("media plane stopped");
}
