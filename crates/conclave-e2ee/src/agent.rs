//! A device's end-to-end encryption in one meeting: the group agent
//! (`group.rs`) for the meeting's MLS group, whose members are the
//! participants' seats, plus the SFrame keys of each epoch. Sans IO: the
//! server's `e2ee_*` messages in, the messages to send back and what
//! happened out. Native participants and the browser (through wasm) run
//! this same code.
//!
//! A device first asks the server to vouch for its signature key: an
//! account's device is registered with the account once and gets the same
//! credential in every meeting; a guest's is vouched for this meeting. It
//! joins with that credential, checks every other member's, and reports an
//! account seen with a device key it has not used before.

use conclave_proto::signal::{ClientMessage, E2eeMember, ParticipantId, ServerMessage};
use data_encoding::BASE64;

use crate::credential::KnownDevices;
use crate::group::{GroupAgent, GroupEvent, GroupInput, GroupOutput};
use crate::mls::{GroupMember, MlsError, OpenMlsMember};
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
    /// A commit relayed by the server was refused: it came from someone the
    /// service did not ask to commit, or added or removed someone it did not
    /// ask for. This device stayed where it was (its keys and security code
    /// no longer match the group's); shown to the user as a warning.
    CommitRefused { from: ParticipantId, reason: String },
    /// A participant's device left the group, by a commit carrying out the
    /// server's own signed proposal (`by_server`) or the committer's.
    DeviceRemoved { participant_id: ParticipantId, by_server: bool },
}

/// One member of the meeting's group as this device sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    pub leaf: u32,
    pub participant_id: Option<ParticipantId>,
    /// The account whose device it is (`None` for a guest's).
    pub user_id: Option<String>,
    pub display_name: String,
    /// The member's device key, as people compare it.
    pub fingerprint: String,
    /// The server vouches for this device key.
    pub verified: bool,
    pub is_self: bool,
}

/// What handling one message produced.
#[derive(Debug, Default)]
pub struct Handled {
    pub send: Vec<ClientMessage>,
    pub events: Vec<AgentEvent>,
}

pub struct E2eeAgent<M: GroupMember> {
    session: E2eeSession<M>,
    group: GroupAgent<ParticipantId>,
    /// Chat lines written while a removal waits for its commit: sent once
    /// the group is at the epoch without the departing device.
    held: Vec<String>,
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
        Self { session, group: GroupAgent::new(known), held: Vec::new() }
    }

    /// Every device key seen per account, for the device to keep.
    pub fn known_devices(&self) -> &KnownDevices {
        self.group.known_devices()
    }

    /// The first message a device sends: its key, for the server to vouch for.
    pub fn start(&self) -> ClientMessage {
        ClientMessage::E2eeCredentialRequest { signature_key: BASE64.encode(&self.session.member.signature_key()) }
    }

    /// Who is in the group, each member's credential checked.
    pub fn roster(&self) -> Vec<MemberInfo> {
        self.group.roster(&self.session.member).into_iter().map(meeting_member).collect()
    }

    pub fn session(&self) -> &E2eeSession<M> {
        &self.session
    }

    pub fn session_mut(&mut self) -> &mut E2eeSession<M> {
        &mut self.session
    }

    /// A chat line for the group, as an MLS application message; `None`
    /// when a removal waits for its commit (the device being removed could
    /// still read it): the line is held and goes out with what [`Self::handle`]
    /// sends once the commit is applied.
    pub fn chat(&mut self, text: &str) -> Result<Option<ClientMessage>, MlsError> {
        if !self.held.is_empty() {
            self.held.push(text.to_owned());
            return Ok(None);
        }
        match self.session.member.encrypt(text.as_bytes()) {
            Ok(message) => Ok(Some(ClientMessage::E2eeApplication { message: BASE64.encode(&message) })),
            Err(MlsError::AwaitingCommit) => {
                self.held.push(text.to_owned());
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// The held chat lines the group can take now, in the order written.
    fn release_held(&mut self) -> Vec<ClientMessage> {
        let mut sent = Vec::new();
        while let Some(text) = self.held.first() {
            let Ok(message) = self.session.member.encrypt(text.as_bytes()) else { break };
            sent.push(ClientMessage::E2eeApplication { message: BASE64.encode(&message) });
            self.held.remove(0);
        }
        sent
    }

    /// Handles one message from the service; anything that is not about
    /// E2EE, or that cannot be used, changes nothing.
    pub fn handle(&mut self, message: &ServerMessage) -> Handled {
        let mut out = Handled::default();
        if let ServerMessage::E2eeCredential { credential, authority, participant_id } = message {
            let Ok(credential) = BASE64.decode(credential.as_bytes()) else { return out };
            let output = self.group.vouched(&mut self.session.member, &credential, authority, *participant_id);
            out.send.extend(output.map(client_message));
            return out;
        }
        let Some(input) = group_input(message) else { return out };
        let handled = self.group.handle(&mut self.session.member, input);
        out.send.extend(handled.send.into_iter().map(client_message));
        for event in handled.events {
            out.events.extend(self.meeting_event(event));
        }
        if !self.held.is_empty() && out.events.iter().any(|e| matches!(e, AgentEvent::NewEpoch(_))) {
            out.send.extend(self.release_held());
        }
        out
    }

    /// A group event as the meeting shows it, taking the new epoch's keys.
    fn meeting_event(&mut self, event: GroupEvent<ParticipantId>) -> Option<AgentEvent> {
        Some(match event {
            GroupEvent::NewEpoch(epoch) => {
                // A failed rekey leaves no key to seal with: nothing is sent in the clear.
                self.session.rekey().ok()?;
                AgentEvent::NewEpoch(epoch)
            }
            GroupEvent::Application { from, plaintext } => {
                AgentEvent::Chat { from, text: String::from_utf8_lossy(&plaintext).into_owned() }
            }
            GroupEvent::Removed => {
                self.session.forget_keys();
                AgentEvent::Removed
            }
            GroupEvent::DeviceRemoved { member, by_server } => {
                AgentEvent::DeviceRemoved { participant_id: member, by_server }
            }
            GroupEvent::Roster(roster) => AgentEvent::Roster(roster.into_iter().map(meeting_member).collect()),
            GroupEvent::NewDevice { member, display_name, fingerprint } => {
                AgentEvent::NewDevice { participant_id: member, display_name, fingerprint }
            }
            GroupEvent::CommitRefused { from, reason } => AgentEvent::CommitRefused { from, reason },
        })
    }
}

fn meeting_member(info: crate::group::MemberInfo<ParticipantId>) -> MemberInfo {
    let participant_id = info.member.or(match &info.owner {
        Some(conclave_proto::credential::DeviceOwner::Guest { participant_id, .. }) if info.verified => {
            Some(*participant_id)
        }
        _ => None,
    });
    MemberInfo {
        leaf: info.leaf,
        participant_id,
        user_id: info.owner.as_ref().and_then(|o| o.user_id().map(str::to_owned)),
        display_name: info.display_name,
        fingerprint: info.fingerprint,
        verified: info.verified,
        is_self: info.is_self,
    }
}

/// A server message as input for the group agent, if it is one.
fn group_input(message: &ServerMessage) -> Option<GroupInput<ParticipantId>> {
    let blob = |text: &String| BASE64.decode(text.as_bytes()).ok();
    Some(match message {
        ServerMessage::E2eeCreateGroup => GroupInput::CreateGroup,
        ServerMessage::E2eeAddRequest { participant_id, owner, key_package, committer } => GroupInput::AddRequest {
            member: *participant_id,
            owner: owner.clone(),
            key_package: blob(key_package)?,
            committer: *committer,
        },
        ServerMessage::E2eeRemoveRequest { participant_id, owner, committer, proposal } => GroupInput::RemoveRequest {
            member: *participant_id,
            owner: owner.clone(),
            committer: *committer,
            // A proposal that is not even base64 is dropped; the committer removes the device itself.
            proposal: proposal.as_ref().and_then(blob),
        },
        ServerMessage::E2eeCommit { from, epoch, commit } => {
            GroupInput::Commit { from: *from, epoch: *epoch, commit: blob(commit)? }
        }
        ServerMessage::E2eeWelcome { welcome, committer, members, .. } => GroupInput::Welcome {
            welcome: blob(welcome)?,
            committer: *committer,
            members: members
                .iter()
                .map(|E2eeMember { participant_id, owner }| (*participant_id, owner.clone()))
                .collect(),
        },
        ServerMessage::E2eeRejected { epoch, .. } => GroupInput::Rejected { epoch: *epoch },
        ServerMessage::E2eeApplication { from, message } => {
            GroupInput::Application { from: *from, message: blob(message)? }
        }
        _ => return None,
    })
}

/// What the group agent sends, as the meeting's signaling message.
fn client_message(output: GroupOutput<ParticipantId>) -> ClientMessage {
    match output {
        GroupOutput::KeyPackage(key_package) => {
            ClientMessage::E2eeKeyPackage { key_package: BASE64.encode(&key_package) }
        }
        GroupOutput::Commit { epoch, commit, welcome, added, removed } => ClientMessage::E2eeCommit {
            epoch,
            commit: BASE64.encode(&commit),
            welcome: welcome.map(|w| BASE64.encode(&w)),
            added,
            removed,
        },
        GroupOutput::CommitRefused { epoch, from, reason } => ClientMessage::E2eeCommitRefused { epoch, from, reason },
    }
}
