//! MLS (RFC 9420) for a meeting's group, behind one small trait so the
//! implementation (openmls today) can change without touching meetings.
//!
//! Every message crosses as TLS-serialised bytes, which is what the server
//! (the delivery service) stores and forwards without understanding.

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

use crate::sframe::CipherSuite;
use data_encoding::BASE64;

/// The group's MLS cipher suite: X25519, AES-128-GCM, SHA-256, Ed25519.
const MLS_SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// The id every group of Conclave's is made with: a group is told apart by
/// where the server delivers it (a meeting, a conversation), and the
/// server's own proposals name it too.
pub const GROUP_ID: &[u8] = b"conclave-group";

/// The identity in the group's one external sender: the server, signing
/// with its credential authority's key (RFC 9420 §12.1.8.1).
const SERVER_IDENTITY: &[u8] = b"conclave-server";

#[derive(Debug, thiserror::Error)]
pub enum MlsError {
    #[error("not in a group yet")]
    NoGroup,
    #[error("malformed MLS message")]
    Malformed,
    #[error("MLS refused the operation: {0}")]
    Refused(String),
    /// A commit that MLS itself would accept, refused by this device's own
    /// rules (see [`CommitChanges`]): it was not applied.
    #[error("commit refused: {0}")]
    Vetoed(String),
    /// A removal proposed by the server waits for its commit: nothing is
    /// encrypted to the group until then (the device being removed could
    /// still read it). Sending again after the commit works.
    #[error("a removal waits for its commit; send again once it is done")]
    AwaitingCommit,
}

fn refused(e: impl std::fmt::Debug) -> MlsError {
    MlsError::Refused(format!("{e:?}"))
}

/// What processing a message from the group did.
#[derive(Debug, PartialEq, Eq)]
pub enum Processed {
    /// A commit was applied: the group is at a new epoch.
    NewEpoch(u64),
    /// A commit removed us: the group is over for us.
    Removed,
    /// An application message (e.g. a chat line) from the member at this leaf.
    Application { sender: u32, plaintext: Vec<u8> },
    /// Something else (a proposal), kept for the next commit.
    Other,
}

/// A leaf's (or a KeyPackage's) credential: the identity it claims and the
/// key it signs with. What the identity is worth is for the caller to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafCredential {
    pub identity: Vec<u8>,
    pub signature_key: Vec<u8>,
}

/// What a commit from another member would change, for the device to
/// judge before applying it (a commit whose judge says no is not applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitChanges {
    /// The committer's leaf as it is before the commit.
    pub committer: Option<LeafCredential>,
    /// The committer's leaf as the commit's update path would leave it.
    pub committer_after: Option<LeafCredential>,
    /// Leaves the commit adds, from the KeyPackages it carries.
    pub added: Vec<LeafCredential>,
    /// Leaves the commit removes, as they are before it.
    pub removed: Vec<LeafCredential>,
    /// Leaves the commit removes at an external sender's proposal, as they
    /// are before it, each with the key that signed the proposal (MLS has
    /// checked that signature against the group's external senders).
    pub removed_by_external: Vec<(LeafCredential, Vec<u8>)>,
    /// Leaves in the group before the commit, by leaf index.
    pub before: Vec<(u32, LeafCredential)>,
    /// Proposals of any other kind (updates of others, pre-shared keys,
    /// re-initialisation, changes to the group's extensions).
    pub other_proposals: usize,
}

/// Judges a commit before it is applied: `Err` with the reason to refuse it.
pub type CommitJudge<'a> = &'a mut dyn FnMut(&CommitChanges) -> Result<(), String>;

/// Judges an external sender's removal proposal before it is kept: the
/// leaf it removes as it is now, and the key that signed the proposal.
pub type RemovalJudge<'a> = &'a mut dyn FnMut(&LeafCredential, &[u8]) -> Result<(), String>;

/// A commit with what it produces for others.
pub struct Commit {
    /// For every member (the delivery service orders it).
    pub commit: Vec<u8>,
    /// For the members it adds, if any.
    pub welcome: Option<Vec<u8>>,
}

/// One participant's device in a meeting's MLS group.
pub trait GroupMember {
    /// The device's public signature key.
    fn signature_key(&self) -> Vec<u8>;
    /// Names this device in its credential from now on (the server's signed
    /// credential); only before it is in a group.
    fn set_identity(&mut self, identity: &[u8]) -> Result<(), MlsError>;
    /// The credential inside a KeyPackage, before adding it.
    fn key_package_credential(&self, key_package: &[u8]) -> Result<LeafCredential, MlsError>;
    /// A KeyPackage to be added with (the server hands it to a committer).
    fn key_package(&self) -> Result<Vec<u8>, MlsError>;
    /// Makes the group (epoch 0). `server_key`, the server's authority key,
    /// is written into the group as its one external sender, so the server
    /// can propose removals that every member checks (RFC 9420 §12.1.8.1).
    fn create_group(&mut self, group_id: &[u8], server_key: Option<&[u8]>) -> Result<(), MlsError>;
    /// Takes an external sender's proposal to remove a member, shown to
    /// `judge` first; kept for the next commit, which must include it.
    /// Returns the leaf it removes.
    fn take_removal_proposal(&mut self, proposal: &[u8], judge: RemovalJudge<'_>) -> Result<u32, MlsError>;
    /// Leaves that proposals kept for the next commit remove.
    fn pending_removals(&self) -> Vec<u32>;
    /// A commit of the proposals kept, and nothing else; pending like [`Self::add`].
    fn commit_pending(&mut self) -> Result<Commit, MlsError>;
    /// Adds members by their KeyPackages. The commit stays pending until
    /// [`Self::confirm_commit`] (the delivery service ordered it) or
    /// [`Self::discard_commit`] (it refused it), so a refused commit never
    /// forks this member from the group.
    fn add(&mut self, key_packages: &[Vec<u8>]) -> Result<Commit, MlsError>;
    /// Removes the members at these leaves; pending like [`Self::add`].
    fn remove(&mut self, leaves: &[u32]) -> Result<Commit, MlsError>;
    /// Applies this member's pending commit: the group moves to the next epoch.
    fn confirm_commit(&mut self) -> Result<(), MlsError>;
    /// Forgets this member's pending commit; the group stays where it was.
    fn discard_commit(&mut self) -> Result<(), MlsError>;
    fn join(&mut self, welcome: &[u8]) -> Result<(), MlsError>;
    /// Processes a message from the group. A commit is shown to `judge`
    /// first and applied only if it agrees ([`MlsError::Vetoed`] if not).
    fn process(&mut self, message: &[u8], judge: CommitJudge<'_>) -> Result<Processed, MlsError>;
    fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, MlsError>;
    fn epoch(&self) -> Option<u64>;
    fn leaf_index(&self) -> Option<u32>;
    /// Leaf indices of every member, in order.
    fn members(&self) -> Vec<u32>;
    /// Every member's leaf and credential, in leaf order.
    fn roster(&self) -> Vec<(u32, LeafCredential)>;
    /// The epoch authenticator (RFC 9420 §8.7), from which the security code is made.
    fn epoch_authenticator(&self) -> Option<Vec<u8>>;
    /// The secret SFrame keys of this epoch come from (RFC 9605 §5.2).
    fn sframe_epoch_secret(&self, suite: CipherSuite) -> Result<Vec<u8>, MlsError>;
}

/// What [`OpenMlsMember::export_state`] writes: JSON, bytes in base64.
#[derive(serde::Serialize, serde::Deserialize)]
struct KeptState {
    signer: String,
    identity: String,
    group_id: Option<String>,
    storage: Vec<(String, String)>,
}

/// [`GroupMember`] on openmls with its RustCrypto provider.
pub struct OpenMlsMember {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    group: Option<MlsGroup>,
}

impl OpenMlsMember {
    /// A device with a new signature key whose credential names `identity`.
    pub fn new(identity: &[u8]) -> Result<Self, MlsError> {
        let signer = SignatureKeyPair::new(MLS_SUITE.signature_algorithm()).map_err(refused)?;
        Self::with_signer(signer, identity)
    }

    /// A device with the signature key it kept from before (see
    /// [`Self::export_signature_key`]), so others recognise it; a new key
    /// when there is none (or it cannot be read).
    pub fn restore(kept: Option<&[u8]>) -> Result<Self, MlsError> {
        let signer = match kept.and_then(|k| SignatureKeyPair::tls_deserialize(&mut &k[..]).ok()) {
            Some(signer) if signer.signature_scheme() == MLS_SUITE.signature_algorithm() => signer,
            _ => SignatureKeyPair::new(MLS_SUITE.signature_algorithm()).map_err(refused)?,
        };
        Self::with_signer(signer, b"")
    }

    fn with_signer(signer: SignatureKeyPair, identity: &[u8]) -> Result<Self, MlsError> {
        let provider = OpenMlsRustCrypto::default();
        signer.store(provider.storage()).map_err(refused)?;
        let credential = CredentialWithKey {
            credential: BasicCredential::new(identity.to_vec()).into(),
            signature_key: signer.public().into(),
        };
        Ok(Self { provider, signer, credential, group: None })
    }

    /// The device's signature key pair, private half included, for the
    /// device alone to keep between meetings.
    pub fn export_signature_key(&self) -> Vec<u8> {
        self.signer.tls_serialize_detached().expect("a key pair serialises")
    }

    /// Everything this device holds of its group (its key pair, its
    /// credential, and openmls's whole store: the group's state at this
    /// epoch, a commit of its own waiting for the server's order), for the
    /// device alone to keep and carry on from later with [`Self::import_state`].
    pub fn export_state(&self) -> Vec<u8> {
        let storage = self.provider.storage().values.read().unwrap_or_else(|p| p.into_inner());
        let mut entries: Vec<(String, String)> =
            storage.iter().map(|(k, v)| (BASE64.encode(k), BASE64.encode(v))).collect();
        entries.sort();
        let kept = KeptState {
            signer: BASE64.encode(&self.export_signature_key()),
            identity: BASE64.encode(&self.identity()),
            group_id: self.group.as_ref().map(|g| BASE64.encode(g.group_id().as_slice())),
            storage: entries,
        };
        serde_json::to_vec(&kept).expect("kept state serialises")
    }

    /// The device as [`Self::export_state`] kept it.
    pub fn import_state(kept: &[u8]) -> Result<Self, MlsError> {
        let kept: KeptState = serde_json::from_slice(kept).map_err(|_| MlsError::Malformed)?;
        let bytes = |text: &str| BASE64.decode(text.as_bytes()).map_err(|_| MlsError::Malformed);
        let signer =
            SignatureKeyPair::tls_deserialize(&mut &bytes(&kept.signer)?[..]).map_err(|_| MlsError::Malformed)?;
        let mut member = Self::with_signer(signer, &bytes(&kept.identity)?)?;
        {
            let mut storage = member.provider.storage().values.write().unwrap_or_else(|p| p.into_inner());
            for (key, value) in &kept.storage {
                storage.insert(bytes(key)?, bytes(value)?);
            }
        }
        if let Some(group_id) = kept.group_id {
            let group_id = GroupId::from_slice(&bytes(&group_id)?);
            member.group = MlsGroup::load(member.provider.storage(), &group_id).map_err(refused)?;
            if member.group.is_none() {
                return Err(MlsError::Refused("the kept state has no such group".into()));
            }
        }
        Ok(member)
    }

    fn identity(&self) -> Vec<u8> {
        BasicCredential::try_from(self.credential.credential.clone()).map(|c| c.identity().to_vec()).unwrap_or_default()
    }

    fn group(&self) -> Result<&MlsGroup, MlsError> {
        self.group.as_ref().ok_or(MlsError::NoGroup)
    }

    /// A secret of the group's current epoch under `label` (the MLS
    /// exporter, RFC 9420 §8.5): every member derives the same, nobody
    /// outside the epoch can.
    pub fn export_secret(&self, label: &str, len: usize) -> Result<Vec<u8>, MlsError> {
        self.group()?.export_secret(self.provider.crypto(), label, b"", len).map_err(refused)
    }
}

fn serialize(message: &MlsMessageOut) -> Result<Vec<u8>, MlsError> {
    message.tls_serialize_detached().map_err(refused)
}

fn parse(bytes: &[u8]) -> Result<MlsMessageIn, MlsError> {
    MlsMessageIn::tls_deserialize(&mut &bytes[..]).map_err(|_| MlsError::Malformed)
}

fn leaf_credential(credential: &Credential, signature_key: &[u8]) -> LeafCredential {
    let identity = BasicCredential::try_from(credential.clone()).map(|c| c.identity().to_vec()).unwrap_or_default();
    LeafCredential { identity, signature_key: signature_key.to_vec() }
}

impl GroupMember for OpenMlsMember {
    fn signature_key(&self) -> Vec<u8> {
        self.signer.public().to_vec()
    }

    fn set_identity(&mut self, identity: &[u8]) -> Result<(), MlsError> {
        if self.group.is_some() {
            return Err(MlsError::Refused("already in a group".into()));
        }
        self.credential.credential = BasicCredential::new(identity.to_vec()).into();
        Ok(())
    }

    fn key_package_credential(&self, key_package: &[u8]) -> Result<LeafCredential, MlsError> {
        let kp = KeyPackageIn::tls_deserialize(&mut &key_package[..]).map_err(|_| MlsError::Malformed)?;
        let kp = kp.validate(self.provider.crypto(), ProtocolVersion::Mls10).map_err(refused)?;
        let leaf = kp.leaf_node();
        Ok(leaf_credential(leaf.credential(), leaf.signature_key().as_slice()))
    }

    fn key_package(&self) -> Result<Vec<u8>, MlsError> {
        let bundle = KeyPackage::builder()
            .build(MLS_SUITE, &self.provider, &self.signer, self.credential.clone())
            .map_err(refused)?;
        bundle.key_package().tls_serialize_detached().map_err(refused)
    }

    fn create_group(&mut self, group_id: &[u8], server_key: Option<&[u8]>) -> Result<(), MlsError> {
        let mut config = MlsGroupCreateConfig::builder()
            .ciphersuite(MLS_SUITE)
            // Newcomers get the tree inside the Welcome: nothing else to fetch.
            .use_ratchet_tree_extension(true);
        if let Some(key) = server_key {
            let extensions =
                Extensions::single(Extension::ExternalSenders(vec![server_sender(key)])).map_err(refused)?;
            config = config.with_group_context_extensions(extensions);
        }
        let config = config.build();
        let group = MlsGroup::new_with_group_id(
            &self.provider,
            &self.signer,
            &config,
            GroupId::from_slice(group_id),
            self.credential.clone(),
        )
        .map_err(refused)?;
        self.group = Some(group);
        Ok(())
    }

    fn add(&mut self, key_packages: &[Vec<u8>]) -> Result<Commit, MlsError> {
        let mut packages = Vec::with_capacity(key_packages.len());
        for bytes in key_packages {
            let kp = KeyPackageIn::tls_deserialize(&mut &bytes[..]).map_err(|_| MlsError::Malformed)?;
            packages.push(kp.validate(self.provider.crypto(), ProtocolVersion::Mls10).map_err(refused)?);
        }
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().ok_or(MlsError::NoGroup)?;
        let (commit, welcome, _) = group.add_members(provider, signer, &packages).map_err(refused)?;
        Ok(Commit { commit: serialize(&commit)?, welcome: Some(serialize(&welcome)?) })
    }

    fn remove(&mut self, leaves: &[u32]) -> Result<Commit, MlsError> {
        let leaves: Vec<LeafNodeIndex> = leaves.iter().map(|l| LeafNodeIndex::new(*l)).collect();
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().ok_or(MlsError::NoGroup)?;
        let (commit, welcome, _) = group.remove_members(provider, signer, &leaves).map_err(refused)?;
        Ok(Commit { commit: serialize(&commit)?, welcome: welcome.map(|w| serialize(&w)).transpose()? })
    }

    fn take_removal_proposal(&mut self, proposal: &[u8], judge: RemovalJudge<'_>) -> Result<u32, MlsError> {
        let message = parse(proposal)?.try_into_protocol_message().map_err(|_| MlsError::Malformed)?;
        let provider = &self.provider;
        let group = self.group.as_mut().ok_or(MlsError::NoGroup)?;
        let processed = group.process_message(provider, message).map_err(refused)?;
        let ProcessedMessageContent::ProposalMessage(queued) = processed.into_content() else {
            return Err(MlsError::Vetoed("not a proposal".into()));
        };
        let Sender::External(index) = queued.sender() else {
            return Err(MlsError::Vetoed("not from an external sender".into()));
        };
        let Proposal::Remove(remove) = queued.proposal() else {
            return Err(MlsError::Vetoed("not a removal".into()));
        };
        let leaf = remove.removed();
        let removed = group
            .member_at(leaf)
            .map(|m| leaf_credential(&m.credential, &m.signature_key))
            .ok_or_else(|| MlsError::Vetoed("it removes a leaf that holds nobody".into()))?;
        let signer = external_sender_key(group, *index).ok_or(MlsError::Malformed)?;
        judge(&removed, &signer).map_err(MlsError::Vetoed)?;
        // Kept even when it removes this device: the commit that carries it
        // out names it by reference, and only a device that has it can
        // read that commit and learn it is out.
        group.store_pending_proposal(provider.storage(), *queued).map_err(refused)?;
        Ok(leaf.u32())
    }

    fn pending_removals(&self) -> Vec<u32> {
        let Some(group) = self.group.as_ref() else { return Vec::new() };
        group
            .pending_proposals()
            .filter_map(|queued| match queued.proposal() {
                Proposal::Remove(remove) => Some(remove.removed().u32()),
                _ => None,
            })
            .collect()
    }

    fn commit_pending(&mut self) -> Result<Commit, MlsError> {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().ok_or(MlsError::NoGroup)?;
        let (commit, welcome, _) = group.commit_to_pending_proposals(provider, signer).map_err(refused)?;
        Ok(Commit { commit: serialize(&commit)?, welcome: welcome.map(|w| serialize(&w)).transpose()? })
    }

    fn confirm_commit(&mut self) -> Result<(), MlsError> {
        let provider = &self.provider;
        let group = self.group.as_mut().ok_or(MlsError::NoGroup)?;
        if group.pending_commit().is_none() {
            return Err(MlsError::Refused("no pending commit".into()));
        }
        group.merge_pending_commit(provider).map_err(refused)
    }

    fn discard_commit(&mut self) -> Result<(), MlsError> {
        let provider = &self.provider;
        let group = self.group.as_mut().ok_or(MlsError::NoGroup)?;
        group.clear_pending_commit(provider.storage()).map_err(refused)
    }

    fn join(&mut self, welcome: &[u8]) -> Result<(), MlsError> {
        let MlsMessageBodyIn::Welcome(welcome) = parse(welcome)?.extract() else {
            return Err(MlsError::Malformed);
        };
        let config = MlsGroupJoinConfig::builder().use_ratchet_tree_extension(true).build();
        let staged = StagedWelcome::new_from_welcome(&self.provider, &config, welcome, None).map_err(refused)?;
        self.group = Some(staged.into_group(&self.provider).map_err(refused)?);
        Ok(())
    }

    fn process(&mut self, message: &[u8], judge: CommitJudge<'_>) -> Result<Processed, MlsError> {
        let message = parse(message)?.try_into_protocol_message().map_err(|_| MlsError::Malformed)?;
        let provider = &self.provider;
        let group = self.group.as_mut().ok_or(MlsError::NoGroup)?;
        let processed = group.process_message(provider, message).map_err(refused)?;
        let sender = match processed.sender() {
            Sender::Member(leaf) => Some(leaf.u32()),
            _ => None,
        };
        Ok(match processed.into_content() {
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                let changes = commit_changes(group, sender, &staged);
                // Not merged: the group stays at its epoch, as if the commit never came.
                judge(&changes).map_err(MlsError::Vetoed)?;
                let removed = staged.self_removed();
                group.merge_staged_commit(provider, *staged).map_err(refused)?;
                if removed {
                    Processed::Removed
                } else {
                    Processed::NewEpoch(group.epoch().as_u64())
                }
            }
            ProcessedMessageContent::ApplicationMessage(app) => {
                Processed::Application { sender: sender.unwrap_or(u32::MAX), plaintext: app.into_bytes() }
            }
            _ => Processed::Other,
        })
    }

    fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, MlsError> {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().ok_or(MlsError::NoGroup)?;
        if group.has_pending_proposals() {
            return Err(MlsError::AwaitingCommit);
        }
        serialize(&group.create_message(provider, signer, plaintext).map_err(refused)?)
    }

    fn epoch(&self) -> Option<u64> {
        self.group.as_ref().map(|g| g.epoch().as_u64())
    }

    fn leaf_index(&self) -> Option<u32> {
        self.group.as_ref().map(|g| g.own_leaf_index().u32())
    }

    fn members(&self) -> Vec<u32> {
        self.group.as_ref().map(|g| g.members().map(|m| m.index.u32()).collect()).unwrap_or_default()
    }

    fn roster(&self) -> Vec<(u32, LeafCredential)> {
        let Some(group) = self.group.as_ref() else { return Vec::new() };
        group.members().map(|m| (m.index.u32(), leaf_credential(&m.credential, &m.signature_key))).collect()
    }

    fn epoch_authenticator(&self) -> Option<Vec<u8>> {
        self.group.as_ref().map(|g| g.epoch_authenticator().as_slice().to_vec())
    }

    fn sframe_epoch_secret(&self, suite: CipherSuite) -> Result<Vec<u8>, MlsError> {
        self.group()?
            .export_secret(self.provider.crypto(), crate::keys::EXPORTER_LABEL, b"", suite.hash_len())
            .map_err(refused)
    }
}

/// The group's external sender naming the server by its authority key.
fn server_sender(key: &[u8]) -> ExternalSender {
    ExternalSender::new(key.into(), BasicCredential::new(SERVER_IDENTITY.to_vec()).into())
}

/// The key of the group's external sender at `index`, if there is one.
fn external_sender_key(group: &MlsGroup, index: SenderExtensionIndex) -> Option<Vec<u8>> {
    let sender = group.extensions().external_senders()?.get(index_of(index))?;
    // The sender's key is its first field on the wire (RFC 9420 §12.1.8.1).
    let bytes = sender.tls_serialize_detached().ok()?;
    let key = SignaturePublicKey::tls_deserialize(&mut &bytes[..]).ok()?;
    Some(key.as_slice().to_vec())
}

/// The position an index names (openmls keeps its number to itself; it
/// is a big-endian u32 on the wire).
fn index_of(index: SenderExtensionIndex) -> usize {
    let bytes = index.tls_serialize_detached().expect("an index serialises");
    u32::from_be_bytes(bytes.try_into().expect("four bytes")) as usize
}

/// The server's proposal to remove the member at `leaf` from the group at
/// `epoch`, signed with the authority key whose seed is `authority_seed`
/// (the group's one external sender). Every member checks it; the next
/// commit carries it out.
pub fn server_removal(authority_seed: &[u8; 32], epoch: u64, leaf: u32) -> Result<Vec<u8>, MlsError> {
    let public = ed25519_dalek::SigningKey::from_bytes(authority_seed).verifying_key().to_bytes();
    let signer = SignatureKeyPair::from_raw(SignatureScheme::ED25519, authority_seed.to_vec(), public.to_vec());
    let proposal = ExternalProposal::new_remove::<OpenMlsRustCrypto>(
        LeafNodeIndex::new(leaf),
        GroupId::from_slice(GROUP_ID),
        GroupEpoch::from(epoch),
        &signer,
        SenderExtensionIndex::new(0),
    )
    .map_err(refused)?;
    serialize(&proposal)
}

/// What a staged commit would change, read before it is merged.
fn commit_changes(group: &MlsGroup, sender: Option<u32>, staged: &StagedCommit) -> CommitChanges {
    let leaf_of =
        |index: LeafNodeIndex| group.member_at(index).map(|m| leaf_credential(&m.credential, &m.signature_key));
    let mut changes = CommitChanges {
        committer: sender.and_then(|s| leaf_of(LeafNodeIndex::new(s))),
        committer_after: staged
            .update_path_leaf_node()
            .map(|leaf| leaf_credential(leaf.credential(), leaf.signature_key().as_slice())),
        added: Vec::new(),
        removed: Vec::new(),
        removed_by_external: Vec::new(),
        before: group.members().map(|m| (m.index.u32(), leaf_credential(&m.credential, &m.signature_key))).collect(),
        other_proposals: 0,
    };
    for queued in staged.queued_proposals() {
        match queued.proposal() {
            Proposal::Add(add) => {
                let leaf = add.key_package().leaf_node();
                changes.added.push(leaf_credential(leaf.credential(), leaf.signature_key().as_slice()));
            }
            Proposal::Remove(remove) => match (leaf_of(remove.removed()), queued.sender()) {
                (Some(leaf), Sender::External(index)) => match external_sender_key(group, *index) {
                    Some(key) => changes.removed_by_external.push((leaf, key)),
                    None => changes.other_proposals += 1,
                },
                (Some(leaf), _) => changes.removed.push(leaf),
                // Removing a leaf that holds nobody changes nothing anyone
                // sees, but it is not ours to allow.
                (None, _) => changes.other_proposals += 1,
            },
            _ => changes.other_proposals += 1,
        }
    }
    changes
}

/// The security code everyone in the meeting reads aloud: the epoch
/// authenticator as 8 groups of 5 digits (40 digits, about 132 bits).
pub fn security_code(authenticator: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(authenticator);
    digest
        .chunks(4)
        .map(|c| format!("{:05}", u32::from_be_bytes(c.try_into().expect("4 bytes")) % 100_000))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_codes_are_forty_digits_in_groups_of_five() {
        let code = security_code(b"authenticator");
        assert_eq!(code.len(), 8 * 5 + 7);
        assert!(code.split(' ').all(|g| g.len() == 5 && g.chars().all(|c| c.is_ascii_digit())));
        assert_ne!(code, security_code(b"authenticatos"));
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        let mut m = OpenMlsMember::new(b"ada").unwrap();
        assert!(matches!(m.join(b"\x00\x01garbage"), Err(MlsError::Malformed)));
        m.create_group(b"meeting", None).unwrap();
        assert!(m.process(&[0xff; 40], &mut |_| Ok(())).is_err());
        assert!(m.add(&[vec![1, 2, 3]]).is_err());
    }
}
