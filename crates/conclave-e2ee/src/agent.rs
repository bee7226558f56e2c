//! A device's side of the meeting's MLS delivery service, sans IO: the
//! server's `e2ee_*` messages in, the messages to send back out. Native
//! participants and the browser (through wasm) run this same code.
//!
//! A device first asks the server to vouch for its signature key and joins
//! with the credential it gets; it checks every other member's credential
//! against the server's authority key, adds nobody whose credential fails,
//! and reports an account seen with a device key it has not used before.
//!
//! The designated committer's commits stay pending until the service echoes
//! them back in order; a refused one is discarded and, when it was refused
//! only for being stale, built again on the new epoch. One commit is in
//! flight at a time; requests that arrive meanwhile wait their turn.

use std::collections::VecDeque;

use conclave_proto::credential::{DeviceCredential, SignedCredential};
use conclave_proto::signal::{ClientMessage, ParticipantId, ServerMessage};
use data_encoding::BASE64;

use crate::credential::{fingerprint, Authority, KnownDevices, Sighting};
use crate::mls::{Commit, GroupMember, LeafCredential, MlsError, OpenMlsMember, Processed};
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
    /// Who is in the group now (after every new epoch).
    Roster(Vec<MemberInfo>),
    /// An account seen before is here with a device key never seen for it:
    /// a new device, or someone else holding the account. Shown to the user.
    NewDevice { participant_id: ParticipantId, display_name: String, fingerprint: String },
}

/// One member of the group as this device sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    pub leaf: u32,
    pub participant_id: Option<ParticipantId>,
    pub user_id: Option<String>,
    pub display_name: String,
    /// The member's device key, as people compare it.
    pub fingerprint: String,
    /// The server vouches for this device key, in this meeting.
    pub verified: bool,
    pub is_self: bool,
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

/// The server's credential for this device, once it has one.
struct Vouched {
    authority: Authority,
    me: DeviceCredential,
}

pub struct E2eeAgent<M: GroupMember> {
    session: E2eeSession<M>,
    vouched: Option<Vouched>,
    known: KnownDevices,
    in_flight: Option<InFlight>,
    queued: VecDeque<Request>,
}

impl E2eeAgent<OpenMlsMember> {
    /// A device with the signature key it kept (a new one if `None`) and
    /// the device keys it has seen for each account.
    pub fn for_device(kept_key: Option<&[u8]>, known: KnownDevices) -> Result<Self, MlsError> {
        Ok(Self::new(E2eeSession::new(OpenMlsMember::restore(kept_key)?, MEETING_SUITE), known))
    }
}

impl<M: GroupMember> E2eeAgent<M> {
    pub fn new(session: E2eeSession<M>, known: KnownDevices) -> Self {
        Self { session, vouched: None, known, in_flight: None, queued: VecDeque::new() }
    }

    /// Every device key seen per account, for the device to keep.
    pub fn known_devices(&self) -> &KnownDevices {
        &self.known
    }

    /// The first message a device sends: its key, for the server to vouch for.
    pub fn start(&self) -> ClientMessage {
        ClientMessage::E2eeCredentialRequest { signature_key: BASE64.encode(&self.session.member.signature_key()) }
    }

    /// Who is in the group, each member's credential checked.
    pub fn roster(&self) -> Vec<MemberInfo> {
        let me = self.session.member.leaf_index();
        self.session
            .member
            .roster()
            .into_iter()
            .map(|(leaf, credential)| self.describe(leaf, &credential, me))
            .collect()
    }

    fn describe(&self, leaf: u32, credential: &LeafCredential, me: Option<u32>) -> MemberInfo {
        let checked = self.check(credential);
        // An unchecked credential still says who it claims to be, for the
        // warning next to it; its claim is not trusted for anything.
        let claimed = checked.clone().ok().or_else(|| SignedCredential::from_bytes(&credential.identity)?.credential());
        MemberInfo {
            leaf,
            participant_id: claimed.as_ref().map(|c| c.participant_id),
            user_id: claimed.as_ref().and_then(|c| c.user_id.clone()),
            display_name: claimed.map(|c| c.display_name).unwrap_or_default(),
            fingerprint: fingerprint(&credential.signature_key),
            verified: checked.is_ok(),
            is_self: me == Some(leaf),
        }
    }

    fn check(&self, credential: &LeafCredential) -> Result<DeviceCredential, crate::credential::CredentialError> {
        let vouched = self.vouched.as_ref().ok_or(crate::credential::CredentialError::Forged)?;
        vouched.authority.verify(&credential.identity, &credential.signature_key, Some(&vouched.me.meeting_id))
    }
    pub fn session(&self) -> &E2eeSession<M> {
        &self.session
    }

    pub fn session_mut(&mut self) -> &mut E2eeSession<M> {
        &mut self.session
    }

    /// The server vouched for this device: take the credential (if it is
    /// for this device's key) and ask to be added with it.
    fn vouched_for(&mut self, credential: &str, authority: &str) -> Option<ClientMessage> {
        if self.vouched.is_some() {
            return None;
        }
        let authority = Authority::from_base64(authority).ok()?;
        let identity = BASE64.decode(credential.as_bytes()).ok()?;
        let me = authority.verify(&identity, &self.session.member.signature_key(), None).ok()?;
        self.session.member.set_identity(&identity).ok()?;
        self.vouched = Some(Vouched { authority, me });
        let key_package = self.session.member.key_package().ok()?;
        Some(ClientMessage::E2eeKeyPackage { key_package: BASE64.encode(&key_package) })
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
            ServerMessage::E2eeCredential { credential, authority } => {
                out.send.extend(self.vouched_for(credential, authority));
            }
            ServerMessage::E2eeCreateGroup => {
                if self.vouched.is_some()
                    && self.session.member.create_group(b"conclave-meeting").is_ok()
                    && self.session.rekey().is_ok()
                {
                    out.events.extend(self.epoch_events());
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
                        out.events.extend(self.epoch_events());
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
                    out.events.extend(self.epoch_events());
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

    fn process(&mut self, commit: &[u8]) -> Vec<AgentEvent> {
        match self.session.process(commit) {
            Ok(Processed::NewEpoch(_)) => self.epoch_events(),
            Ok(Processed::Removed) => {
                self.in_flight = None;
                self.queued.clear();
                vec![AgentEvent::Removed]
            }
            _ => Vec::new(),
        }
    }

    /// A new epoch, who is in the group now, and any account seen on a new
    /// device.
    fn epoch_events(&mut self) -> Vec<AgentEvent> {
        let Some(epoch) = self.session.member.epoch() else { return Vec::new() };
        let roster = self.roster();
        let mut events = vec![AgentEvent::NewEpoch(epoch)];
        for member in roster.iter().filter(|m| m.verified && !m.is_self) {
            let (Some(user), Some(participant_id)) = (&member.user_id, member.participant_id) else { continue };
            if self.known.observe(user, &member.fingerprint) == Sighting::NewDevice {
                events.push(AgentEvent::NewDevice {
                    participant_id,
                    display_name: member.display_name.clone(),
                    fingerprint: member.fingerprint.clone(),
                });
            }
        }
        events.push(AgentEvent::Roster(roster));
        events
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
        match request {
            Request::Add { participant_id, key_package } => {
                // Only a device the server vouches for, as the participant
                // the server asks to add, gets into the group.
                let credential = self.session.member.key_package_credential(key_package)?;
                let vouched = self.check(&credential).map_err(|e| MlsError::Refused(e.to_string()))?;
                if vouched.participant_id != *participant_id {
                    return Err(MlsError::Refused("the credential names another participant".into()));
                }
                let commit = self.session.member.add(std::slice::from_ref(key_package))?;
                Ok((commit, vec![*participant_id], Vec::new()))
            }
            Request::Remove { participant_id } => {
                let leaf = self
                    .roster()
                    .into_iter()
                    .find(|m| m.participant_id == Some(*participant_id) && !m.is_self)
                    .ok_or(MlsError::NoGroup)?
                    .leaf;
                Ok((self.session.member.remove(&[leaf])?, Vec::new(), vec![*participant_id]))
            }
        }
    }
}
