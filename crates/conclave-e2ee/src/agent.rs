//! A device's side of the meeting's MLS delivery service, sans IO: the
//! server's `e2ee_*` messages in, the messages to send back out. Native
//! participants and the browser (through wasm) run this same code.
//!
//! A device first asks the server to vouch for its signature key and joins
//! with the credential it gets; it checks every other member's credential
//! against the server's authority key, adds nobody whose credential fails,
//! and reports an account seen with a device key it has not used before.
//!
//! The service sends every request to every member, naming the committer
//! it asks to carry it out. Each device keeps what was asked, and applies a
//! commit relayed to it only if it comes from that committer and adds and
//! removes exactly what was asked: a member who is not the committer, or a
//! committer going beyond its requests (or a relay passing either along),
//! cannot evict or add anyone. A refused commit is reported to the server
//! and shown to the user; the device stays at its epoch, so its security
//! code no longer matches the others'.
//!
//! The designated committer's commits stay pending until the service echoes
//! them back in order; a refused one is discarded and, when it was refused
//! only for being stale, built again on the new epoch. One commit is in
//! flight at a time; requests that arrive meanwhile wait their turn.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use conclave_proto::credential::{DeviceCredential, SignedCredential};
use conclave_proto::signal::{ClientMessage, ParticipantId, ServerMessage};
use data_encoding::BASE64;

use crate::credential::{fingerprint, Authority, KnownDevices, Sighting};
use crate::mls::{Commit, CommitChanges, GroupMember, LeafCredential, MlsError, OpenMlsMember, Processed};
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

/// What the delivery service has asked for and no commit has done yet.
#[derive(Debug, Default)]
struct Asked {
    /// Who the service asks to commit.
    committer: Option<ParticipantId>,
    /// Devices to add: each participant's KeyPackage signature key.
    adds: BTreeMap<ParticipantId, Vec<u8>>,
    removals: BTreeSet<ParticipantId>,
}

pub struct E2eeAgent<M: GroupMember> {
    session: E2eeSession<M>,
    vouched: Option<Vouched>,
    known: KnownDevices,
    in_flight: Option<InFlight>,
    queued: VecDeque<Request>,
    asked: Asked,
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
        Self { session, vouched: None, known, in_flight: None, queued: VecDeque::new(), asked: Asked::default() }
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
            ServerMessage::E2eeAddRequest { participant_id, key_package, committer } => {
                let Ok(key_package) = BASE64.decode(key_package.as_bytes()) else { return out };
                let Ok(credential) = self.session.member.key_package_credential(&key_package) else { return out };
                self.asked.committer = Some(*committer);
                self.asked.adds.insert(*participant_id, credential.signature_key);
                if self.is_me(*committer) {
                    self.queued.push_back(Request::Add { participant_id: *participant_id, key_package });
                }
            }
            ServerMessage::E2eeRemoveRequest { participant_id, committer } => {
                self.asked.committer = Some(*committer);
                self.asked.removals.insert(*participant_id);
                if self.is_me(*committer) {
                    self.queued.push_back(Request::Remove { participant_id: *participant_id });
                }
            }
            ServerMessage::E2eeCommit { from, epoch, commit } => {
                if self.in_flight.as_ref().is_some_and(|f| &f.commit == commit) {
                    // Ours, ordered by the service: apply it.
                    let done = self.in_flight.take().map(|f| f.request);
                    if self.session.confirm_commit().is_ok() {
                        if let Some(request) = done {
                            self.asked.fulfilled(&request);
                        }
                        out.events.extend(self.epoch_events());
                    }
                } else if let Ok(bytes) = BASE64.decode(commit.as_bytes()) {
                    let (events, refusal) = self.process(*from, &bytes);
                    out.events.extend(events);
                    if let Some(reason) = refusal {
                        let epoch = epoch.saturating_sub(1);
                        out.send.push(ClientMessage::E2eeCommitRefused { epoch, from: *from, reason });
                    }
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
            ServerMessage::E2eeWelcome { welcome, committer, .. } => {
                let joined = BASE64
                    .decode(welcome.as_bytes())
                    .ok()
                    .is_some_and(|w| self.session.member.join(&w).is_ok() && self.session.rekey().is_ok());
                if joined {
                    // What was asked before is in the tree this device got;
                    // the service tells a newcomer what is still to be done.
                    self.asked = Asked { committer: Some(*committer), ..Asked::default() };
                    out.events.extend(self.epoch_events());
                }
            }
            ServerMessage::E2eeApplication { from, message } => {
                if let Ok(bytes) = BASE64.decode(message.as_bytes()) {
                    // An application message is never a commit: nothing to judge.
                    let mut no_commits = |_: &CommitChanges| Err("not a commit".to_owned());
                    if let Ok(Processed::Application { plaintext, .. }) = self.session.process(&bytes, &mut no_commits)
                    {
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

    fn is_me(&self, participant: ParticipantId) -> bool {
        self.vouched.as_ref().is_some_and(|v| v.me.participant_id == participant)
    }

    /// Applies another member's commit if it is what the service asked of
    /// the committer it named; returns the events and, when refused, why.
    fn process(&mut self, from: ParticipantId, commit: &[u8]) -> (Vec<AgentEvent>, Option<String>) {
        let mut applied = None;
        let result = {
            let (asked, vouched) = (&self.asked, &self.vouched);
            let mut judge = |changes: &CommitChanges| {
                let verdict = judge_commit(asked, vouched.as_ref(), from, changes);
                if let Ok(done) = &verdict {
                    applied = Some(done.clone());
                }
                verdict.map(|_| ())
            };
            self.session.process(commit, &mut judge)
        };
        match result {
            Ok(Processed::NewEpoch(_)) => {
                if let Some((added, removed)) = applied {
                    self.asked.adds.retain(|p, _| !added.contains(p));
                    self.asked.removals.retain(|p| !removed.contains(p));
                }
                (self.epoch_events(), None)
            }
            Ok(Processed::Removed) => {
                self.in_flight = None;
                self.queued.clear();
                (vec![AgentEvent::Removed], None)
            }
            Err(MlsError::Vetoed(reason)) => {
                (vec![AgentEvent::CommitRefused { from, reason: reason.clone() }], Some(reason))
            }
            _ => (Vec::new(), None),
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
            let Ok((built, added, removed)) = self.build_request(&request) else { continue };
            let commit = BASE64.encode(&built.commit);
            self.in_flight = Some(InFlight { request, epoch, commit: commit.clone() });
            let welcome = built.welcome.map(|w| BASE64.encode(&w));
            return Some(ClientMessage::E2eeCommit { epoch, commit, welcome, added, removed });
        }
        None
    }

    fn build_request(
        &mut self,
        request: &Request,
    ) -> Result<(Commit, Vec<ParticipantId>, Vec<ParticipantId>), MlsError> {
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

impl Asked {
    fn fulfilled(&mut self, request: &Request) {
        match request {
            Request::Add { participant_id, .. } => {
                self.adds.remove(participant_id);
            }
            Request::Remove { participant_id } => {
                self.removals.remove(participant_id);
            }
        }
    }
}

/// The participants a commit adds and removes, once judged acceptable.
type Judged = (Vec<ParticipantId>, Vec<ParticipantId>);

/// Whether another member's commit is what the delivery service asked of
/// the committer it named: sent by that committer under its own credential,
/// adding exactly the devices whose KeyPackages the service forwarded (each
/// vouched for by the server, one device per participant), removing only
/// the participants the service asked to remove, and nothing else.
fn judge_commit(
    asked: &Asked,
    vouched: Option<&Vouched>,
    from: ParticipantId,
    changes: &CommitChanges,
) -> Result<Judged, String> {
    let vouched = vouched.ok_or("this device has no credential yet")?;
    let check = |leaf: &LeafCredential| {
        vouched.authority.verify(&leaf.identity, &leaf.signature_key, Some(&vouched.me.meeting_id)).ok()
    };
    // A leaf's participant as its credential claims, checked or not: a
    // removal names whoever the leaf claims to be.
    let claimed = |leaf: &LeafCredential| {
        SignedCredential::from_bytes(&leaf.identity).and_then(|c| c.credential()).map(|c| c.participant_id)
    };
    if asked.committer != Some(from) {
        return Err(format!("participant {from} is not the committer the server named"));
    }
    let committer = changes.committer.as_ref().ok_or("the commit is not from a member")?;
    if check(committer).map(|c| c.participant_id) != Some(from) {
        return Err(format!("the commit is not signed by participant {from}"));
    }
    if changes.committer_after.as_ref().is_some_and(|after| after.identity != committer.identity) {
        return Err("the committer changes its own credential".into());
    }
    if changes.other_proposals > 0 {
        return Err("the commit makes changes nobody asked for".into());
    }
    let mut removed = Vec::new();
    for leaf in &changes.removed {
        match claimed(leaf) {
            Some(p) if asked.removals.contains(&p) => removed.push(p),
            Some(p) => return Err(format!("it removes participant {p}, whom the server did not ask to remove")),
            None => return Err("it removes a member the server did not ask to remove".into()),
        }
    }
    let mut added = Vec::new();
    for leaf in &changes.added {
        let Some(credential) = check(leaf) else {
            return Err("it adds a device the server did not vouch for".into());
        };
        let p = credential.participant_id;
        if asked.adds.get(&p) != Some(&leaf.signature_key) || added.contains(&p) {
            return Err(format!("it adds a device for participant {p} that the server did not ask to add"));
        }
        // One device per participant: an older one must leave in this commit.
        let stays = changes.before.iter().any(|(_, l)| claimed(l) == Some(p) && !changes.removed.contains(l));
        if stays {
            return Err(format!("participant {p} would have two devices in the group"));
        }
        added.push(p);
    }
    Ok((added, removed))
}
