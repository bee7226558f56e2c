//! The tokio task around a [`MediaSession`]: it only moves bytes and time.
//! Datagrams from the UDP socket, messages from the signaling pump and the
//! application's requests go in, each with the time it was handled; what
//! the session queued goes out to the socket, the pump and the application;
//! and the task sleeps until the session's next deadline. With an impaired
//! [`Path`], datagrams wait in it each way and the task also wakes when the
//! next one is due.
//!
//! The session sits behind a mutex only so that the application can read
//! its stats; the lock is never held across an `.await`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use conclave_impair::Path;
use conclave_proto::signal::{ClientMessage, ServerMessage};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::machine::{Datagram, MediaSession};
use super::pump::Signaling;

/// Datagrams read in one wake-up (each handled and drained on its own)
/// before the outputs are sent: one wake-up for a burst, not one each.
const RECEIVE_BATCH: usize = 32;

/// The longest sleep: str0m says "never" with a deadline years away.
const LONGEST_SLEEP: Duration = Duration::from_secs(3600);

/// What the application asks of a running session.
pub(super) enum Control {
    /// A message of the application's own, for the server.
    Signal(ClientMessage),
    Screen(bool),
    AudioLevel(i8),
    ReceiveLimit(Option<u64>),
    Sending(bool),
}

/// A session's shared handle: the driver feeds it, the application reads
/// its stats.
pub(super) type SharedSession = Arc<Mutex<MediaSession>>;

pub(super) fn lock(session: &SharedSession) -> MutexGuard<'_, MediaSession> {
    // A panic elsewhere leaves the session as it was; its stats still tell.
    session.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What one wake-up's inputs made the session queue.
#[derive(Default)]
struct Outputs {
    datagrams: Vec<Datagram>,
    signals: Vec<ClientMessage>,
    messages: Vec<ServerMessage>,
}

impl Outputs {
    fn take_from(&mut self, session: &mut MediaSession) {
        self.datagrams.extend(std::iter::from_fn(|| session.poll_transmit()));
        self.signals.extend(std::iter::from_fn(|| session.poll_signal()));
        self.messages.extend(std::iter::from_fn(|| session.poll_message()));
    }
}

pub(super) struct Driver {
    pub session: SharedSession,
    pub socket: UdpSocket,
    /// The bad network the participant is on, if any.
    pub path: Option<Path>,
    pub signaling: Signaling,
    pub control: mpsc::UnboundedReceiver<Control>,
    /// Server messages for the application (`MediaParticipant::wait_for`).
    pub messages: mpsc::UnboundedSender<ServerMessage>,
}

impl Driver {
    /// Runs until the application drops its handle.
    pub async fn run(mut self) {
        let mut buf = vec![0u8; 2048];
        let local = match self.socket.local_addr() {
            Ok(local) => local,
            Err(_) => return,
        };
        let mut outputs = Outputs::default();
        let mut signaling_open = true;
        loop {
            let mut deadline = {
                let mut session = lock(&self.session);
                arrive(&mut self.path, local, &mut session);
                outputs.take_from(&mut session);
                session.poll_timeout()
            };
            self.carry_out(&mut outputs).await;
            if let Some(due) = self.path.as_ref().and_then(Path::poll_timeout) {
                deadline = deadline.min(due);
            }
            let now = Instant::now();
            let wake = tokio::time::Instant::from_std(deadline.clamp(now, now + LONGEST_SLEEP));
            tokio::select! {
                received = self.signaling.next(), if signaling_open => match received {
                    Some(message) => lock(&self.session).handle_signal(Instant::now(), message),
                    None => {
                        signaling_open = false;
                        lock(&self.session).handle_signaling_closed();
                    }
                },
                command = self.control.recv() => match command {
                    Some(command) => self.on_control(command),
                    None => return,
                },
                received = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, source)) = received {
                        let mut session = lock(&self.session);
                        let path = &mut self.path;
                        let mut handle = |source, bytes: &[u8]| match path {
                            Some(path) => path.receive(Instant::now(), source, bytes.to_vec()),
                            None => session.handle_datagram(Instant::now(), source, local, bytes),
                        };
                        handle(source, &buf[..n]);
                        for _ in 1..RECEIVE_BATCH {
                            match self.socket.try_recv_from(&mut buf) {
                                Ok((n, source)) => handle(source, &buf[..n]),
                                Err(_) => break,
                            }
                        }
                    }
                }
                () = tokio::time::sleep_until(wake) => lock(&self.session).handle_timeout(Instant::now()),
            }
        }
    }

    fn on_control(&mut self, command: Control) {
        match command {
            // Not the session's: straight to the server, after what the
            // session queued before it (carried out at the top of the loop).
            Control::Signal(message) => {
                let _ = self.signaling.send(message);
            }
            Control::Screen(on) => lock(&self.session).share_screen(Instant::now(), on),
            Control::AudioLevel(level) => lock(&self.session).set_audio_level(level),
            Control::ReceiveLimit(kbps) => lock(&self.session).limit_receive(Instant::now(), kbps),
            Control::Sending(on) => lock(&self.session).set_sending(on),
        }
    }

    /// Sends what the session queued: datagrams to the socket, messages to
    /// the server and to the application.
    async fn carry_out(&mut self, outputs: &mut Outputs) {
        match &mut self.path {
            None => {
                for datagram in outputs.datagrams.drain(..) {
                    // A datagram the kernel refuses is a datagram lost on the way.
                    let _ = self.socket.send_to(&datagram.contents, datagram.destination).await;
                }
            }
            Some(path) => {
                let now = Instant::now();
                for datagram in outputs.datagrams.drain(..) {
                    path.send(now, datagram.destination, datagram.contents);
                }
                while let Some((destination, bytes)) = path.poll_send(now) {
                    let _ = self.socket.send_to(&bytes, destination).await;
                }
            }
        }
        for message in outputs.signals.drain(..) {
            // A closed connection shows itself as the end of `next`.
            let _ = self.signaling.send(message);
        }
        for message in outputs.messages.drain(..) {
            let _ = self.messages.send(message);
        }
    }
}

/// Hands the session what the impaired path lets arrive by now.
fn arrive(path: &mut Option<Path>, local: std::net::SocketAddr, session: &mut MediaSession) {
    let Some(path) = path else { return };
    let now = Instant::now();
    while let Some((source, bytes)) = path.poll_receive(now) {
        session.handle_datagram(now, source, local, &bytes);
    }
}
