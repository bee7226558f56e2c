//! A device's side of the meeting's MLS delivery service, sans IO: the
//! server's `e2ee_*` messages in, the messages to send back out. Native
//! participants and the browser (through wasm) run this same code.
//!
//! The designated committer's commits stay pending until the service echoes
//! them back in order; a refused one is discarded and, when it was refused
//! only for being stale, built again on the new epoch. One commit is in
//! flight at a time; requests that arrive meanwhile wait their turn.

use std::collections::VecDeque;

use conclave_proto::signal::{ClientMessage, ParticipantId, ServerMessage};
use data_encoding::BASE64;

use crate::mls::{Commit, GroupMember, MlsError, OpenMlsMember, Processed};
use crate::session::E2eeSession;
use crate::sframe::CipherSuite;

/// The SFrame suite of every meeting's media, on every kind of device.
pub const MEETING_SUITE: CipherSuite = CipherSuite::Aes128GcmSha256_128;

/// What a message from the service changed, for the participant to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    /// The group is at a new epoch: new keys and a new security code.
    NewEpoch(u64),
    /// A chat line from the group, decrypted.
    Chat { from: ParticipantId, text: String },
    /// This device was removed from the group; it can read nothing more.
    Removed,
}

/// What handling one message produced.
#[derive(Debug, Default)]
pub struct Handled {
    pub send: Vec<ClientMessage>,
    pub events: Vec<AgentEvent>,
}

/// A request of the service this device, as committer, has to carry out.
#[derive(Debug, Clone)]
enum Request {
    Add { participant_id: ParticipantId, key_package: Vec<u8> },
    Remove { participant_id: ParticipantId },
}

struct InFlight {
    request: Request,
    /// The epoch it was built on.
    epoch: u64,
    commit: String,
}

pub struct E2eeAgent<M: GroupMember> {
    session: E2eeSession<M>,
    in_flight: Option<InFlight>,
    queued: VecDeque<Request>,
}

impl E2eeAgent<OpenMlsMember> {
    /// A new device whose MLS credential names `identity` (the participant id).
    pub fn for_device(identity: &[u8]) -> Result<Self, MlsError> {
        Ok(Self::new(E2eeSession::new(OpenMlsMember::new(identity)?, MEETING_SUITE)))
    }
}

impl<M: GroupMember> E2eeAgent<M> {
    pub fn new(session: E2eeSession<M>) -> Self {
        Self { session, in_flight: None, queued: VecDeque::new() }
    }

    pub fn session(&self) -> &E2eeSession<M> {
        &self.session
    }

    pub fn session_mut(&mut self) -> &mut E2eeSession<M> {
        &mut self.session
    }

    /// The first message a device sends: its KeyPackage.
    pub fn key_package(&self) -> Result<ClientMessage, MlsError> {
        Ok(ClientMessage::E2eeKeyPackage { key_package: BASE64.encode(&self.session.member.key_package()?) })
    }

    /// A chat line for the group, as an MLS application message.
    pub fn chat(&mut self, text: &str) -> Result<ClientMessage, MlsError> {
        let message = self.session.member.encrypt(text.as_bytes())?;
        Ok(ClientMessage::E2eeApplication { message: BASE64.encode(&message) })
    }

    /// Handles one message from the service; anything that is not about
    /// E2EE, or that cannot be used, changes nothing.
    pub fn handle(&mut self, message: &ServerMessage) -> Handled {
        let mut out = Handled::default();
        match message {
            ServerMessage::E2eeCreateGroup => {
                if self.session.member.create_group(b"conclave-meeting").is_ok() && self.session.rekey().is_ok() {
                    out.events.extend(self.epoch_event());
                }
            }
            ServerMessage::E2eeAddRequest { participant_id, key_package } => {
                let Ok(key_package) = BASE64.decode(key_package.as_bytes()) else { return out };
                self.queued.push_back(Request::Add { participant_id: *participant_id, key_package });
            }
            ServerMessage::E2eeRemoveRequest { participant_id } => {
                self.queued.push_back(Request::Remove { participant_id: *participant_id });
            }
            ServerMessage::E2eeCommit { commit, .. } => {
                if self.in_flight.as_ref().is_some_and(|f| &f.commit == commit) {
                    // Ours, ordered by the service: apply it.
                    self.in_flight = None;
                    if self.session.confirm_commit().is_ok() {
                        out.events.extend(self.epoch_event());
                    }
                } else if let Ok(bytes) = BASE64.decode(commit.as_bytes()) {
                    out.events.extend(self.process(&bytes));
                }
            }
            ServerMessage::E2eeRejected { epoch, .. } => {
                if let Some(refused) = self.in_flight.take() {
                    let _ = self.session.member.discard_commit();
                    // Stale (another commit was first): build it again on
                    // the new epoch. Refused for what it is: drop it.
                    if *epoch != refused.epoch {
                        self.queued.push_front(refused.request);
                    }
                }
            }
            ServerMessage::E2eeWelcome { welcome, .. } => {
                let joined = BASE64
                    .decode(welcome.as_bytes())
                    .ok()
                    .is_some_and(|w| self.session.member.join(&w).is_ok() && self.session.rekey().is_ok());
                if joined {
                    out.events.extend(self.epoch_event());
                }
            }
            ServerMessage::E2eeApplication { from, message } => {
                if let Ok(bytes) = BASE64.decode(message.as_bytes()) {
                    if let Ok(Processed::Application { plaintext, .. }) = self.session.process(&bytes) {
                        let text = String::from_utf8_lossy(&plaintext).into_owned();
                        out.events.push(AgentEvent::Chat { from: *from, text });
                    }
                }
            }
            _ => return out,
        }
        out.send.extend(self.next_commit());
        out
    }

    fn process(&mut self, commit: &[u8]) -> Option<AgentEvent> {
        match self.session.process(commit).ok()? {
            Processed::NewEpoch(epoch) => Some(AgentEvent::NewEpoch(epoch)),
            Processed::Removed => {
                self.in_flight = None;
                self.queued.clear();
                Some(AgentEvent::Removed)
            }
            _ => None,
        }
    }

    fn epoch_event(&self) -> Option<AgentEvent> {
        self.session.member.epoch().map(AgentEvent::NewEpoch)
    }

    /// Builds the next queued commit, unless one is in flight. Requests that
    /// no longer apply (someone already gone) are skipped.
    fn next_commit(&mut self) -> Option<ClientMessage> {
        if self.in_flight.is_some() {
            return None;
        }
        let epoch = self.session.member.epoch()?;
        while let Some(request) = self.queued.pop_front() {
            let Ok((built, added, removed)) = self.build(&request) else { continue };
            let commit = BASE64.encode(&built.commit);
            self.in_flight = Some(InFlight { request, epoch, commit: commit.clone() });
            let welcome = built.welcome.map(|w| BASE64.encode(&w));
            return Some(ClientMessage::E2eeCommit { epoch, commit, welcome, added, removed });
        }
        None
    }

    fn build(&mut self, request: &Request) -> Result<(Commit, Vec<ParticipantId>, Vec<ParticipantId>), MlsError> {
        let member = &mut self.session.member;
        match request {
            Request::Add { participant_id, key_package } => {
                Ok((member.add(std::slice::from_ref(key_package))?, vec![*participant_id], Vec::new()))
            }
            Request::Remove { participant_id } => {
                let leaf = member.leaf_of(participant_id.to_string().as_bytes()).ok_or(MlsError::NoGroup)?;
                Ok((member.remove(&[leaf])?, Vec::new(), vec![*participant_id]))
            }
        }
    }
}
