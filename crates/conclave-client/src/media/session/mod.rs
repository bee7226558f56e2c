//! A headless participant's media: [`MediaSession`], the sans-IO state
//! machine (negotiation as the polite peer, synthetic media, what it
//! receives, end-to-end encryption, relay-only through TURN), and
//! [`MediaParticipant`], the handle on the tokio task that drives one over a
//! UDP socket and its signaling connection.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conclave_impair::{Path, PathImpairment};
use conclave_proto::signal::{ClientMessage, ParticipantId, ServerMessage};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::stats::MediaStats;
use super::synthetic::FrameClock;
use super::turn::allocate;
use crate::signaling::{SignalChannel, SignalError};
use driver::{lock, Control, Driver, SharedSession};
use pump::Signaling;

mod bottleneck;
mod driver;
mod e2ee;
mod machine;
mod negotiation;
mod pump;
mod rtc;
mod sending;
#[cfg(test)]
mod tests;

pub use machine::{Datagram, MediaSession, SessionError};

#[derive(Debug, Clone)]
pub struct MediaOptions {
    pub microphone: bool,
    pub camera: bool,
    /// Simulcast rids for the camera, lowest first; empty for a single layer.
    pub simulcast: Vec<String>,
    /// Bytes per frame of the camera's top layer (lower layers are 1/4, 1/16).
    pub camera_frame_bytes: usize,
    pub fps: u32,
    /// The level sent in the audio-level extension: -127 silent, 0 loudest.
    pub audio_level: i8,
    /// The local address to send from (the driver's: a [`MediaSession`] is
    /// given the address its socket got).
    pub bind: IpAddr,
    /// Reach the SFU only through this TURN relay (no host candidate); the
    /// driver allocates it before the session starts.
    pub relay: Option<RelayOptions>,
    /// End-to-end encrypt media with SFrame under the meeting's MLS group.
    pub e2ee: bool,
    /// The device's signature key pair kept from an earlier meeting
    /// (`OpenMlsMember::export_signature_key`); a new device when `None`.
    pub e2ee_device_key: Option<Vec<u8>>,
    /// Never offer: the server offers what it sends (a Janus subscriber).
    pub await_offer: bool,
    /// Negotiate but send no frames until `resume_sending` (a load test
    /// brings everyone up before the load starts).
    pub paused: bool,
    /// A bad network between this participant and everything it talks to,
    /// made at its own socket (the driver's; the session never sees it).
    pub impairment: Option<PathImpairment>,
}

/// A TURN server and the credentials the join response handed out.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    pub server: SocketAddr,
    pub username: String,
    pub password: String,
}

impl Default for MediaOptions {
    fn default() -> Self {
        Self {
            microphone: true,
            camera: true,
            simulcast: Vec::new(),
            camera_frame_bytes: 4000,
            fps: 30,
            audio_level: -30,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            relay: None,
            e2ee: false,
            e2ee_device_key: None,
            await_offer: false,
            paused: false,
            impairment: None,
        }
    }
}

/// The socket's kernel receive buffer: room for a burst while this
/// participant's task waits its turn (a load test runs hundreds of them on
/// one core).
const RECEIVE_BUFFER: usize = 1 << 20;

/// A headless participant with media, running in its own task.
pub struct MediaParticipant {
    pub id: ParticipantId,
    control: mpsc::UnboundedSender<Control>,
    session: SharedSession,
    messages: mpsc::UnboundedReceiver<ServerMessage>,
    task: JoinHandle<()>,
}

impl MediaParticipant {
    /// Starts media on an admitted participant's connection.
    pub async fn start(
        connection: impl SignalChannel,
        id: ParticipantId,
        mut options: MediaOptions,
    ) -> std::io::Result<Self> {
        let path = options.impairment.take().map(Path::new);
        let socket = UdpSocket::bind(SocketAddr::new(options.bind, 0)).await?;
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(RECEIVE_BUFFER);
        let local = socket.local_addr()?;
        let session = match &options.relay {
            Some(relay) => {
                let turn = allocate(&socket, relay).await?;
                MediaSession::relayed(Instant::now(), id, options, local, turn, FrameClock::system())
            }
            None => MediaSession::new(Instant::now(), id, options, local, FrameClock::system()),
        }
        .map_err(std::io::Error::other)?;
        let session = Arc::new(Mutex::new(session));
        let (control, control_rx) = mpsc::unbounded_channel();
        let (messages_tx, messages) = mpsc::unbounded_channel();
        let driver = Driver {
            session: session.clone(),
            socket,
            path,
            signaling: Signaling::start(connection),
            control: control_rx,
            messages: messages_tx,
        };
        let task = tokio::spawn(driver.run());
        Ok(Self { id, control, session, messages, task })
    }

    pub fn send(&self, message: ClientMessage) {
        let _ = self.control.send(Control::Signal(message));
    }

    /// Starts or stops sharing the screen (asks the room, then publishes).
    pub fn share_screen(&self, on: bool) {
        let _ = self.control.send(Control::Screen(on));
    }

    /// Limits the bandwidth this participant receives at (`None`: no limit),
    /// dropping what exceeds it.
    pub fn limit_receive(&self, kbps: Option<u64>) {
        let _ = self.control.send(Control::ReceiveLimit(kbps));
    }

    /// Starts (or pauses) sending frames on what is negotiated.
    pub fn resume_sending(&self, on: bool) {
        let _ = self.control.send(Control::Sending(on));
    }

    pub fn set_audio_level(&self, level: i8) {
        let _ = self.control.send(Control::AudioLevel(level));
    }

    pub fn stats(&self) -> MediaStats {
        lock(&self.session).stats().clone()
    }

    /// Waits for a signaling message (other than media negotiation).
    pub async fn wait_for(
        &mut self,
        what: &str,
        within: Duration,
        wanted: impl Fn(&ServerMessage) -> bool,
    ) -> Result<ServerMessage, SignalError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.messages.recv()).await {
                Ok(Some(message)) if wanted(&message) => return Ok(message),
                Ok(Some(_)) => continue,
                Ok(None) => return Err(SignalError::Closed),
                Err(_) => return Err(SignalError::Timeout(what.to_owned())),
            }
        }
    }

    /// Waits until the received media satisfies `done`.
    pub async fn wait_until(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&MediaStats) -> bool,
    ) -> Result<MediaStats, String> {
        let deadline = Instant::now() + within;
        loop {
            let stats = self.stats();
            if done(&stats) {
                return Ok(stats);
            }
            if Instant::now() >= deadline {
                return Err(format!("timed out waiting for {what}; stats: {stats:#?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the participant's media and drops its connection.
    pub fn stop(self) {
        self.task.abort();
    }

    /// Leaves the meeting (the server tears the media session down), then stops.
    pub async fn leave(self) {
        self.send(ClientMessage::Leave);
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.stop();
    }
}
