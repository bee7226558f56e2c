//! A headless participant's side of end-to-end encryption: its KeyPackage,
//! and what it does with the delivery service's messages (create the group,
//! add or remove members as the designated committer, process commits and
//! Welcomes, read the MLS chat).

use conclave_e2ee::keys::base_key;
use conclave_e2ee::mls::{GroupMember, Processed};
use conclave_proto::signal::{ClientMessage, ServerMessage};
use data_encoding::BASE64;

use super::{Session, SUITE};

impl Session {
    /// This device's KeyPackage for the meeting's MLS group, when E2EE is on.
    pub(super) fn key_package(&self) -> Option<ClientMessage> {
        let kp = self.e2ee.as_ref()?.member.key_package().ok()?;
        Some(ClientMessage::E2eeKeyPackage { key_package: BASE64.encode(&kp) })
    }

    /// The delivery service's messages: create, add, remove, commits, Welcome, chat.
    pub(super) fn on_e2ee(&mut self, message: ServerMessage) -> Vec<ClientMessage> {
        let Some(e2ee) = self.e2ee.as_mut() else { return Vec::new() };
        let decode = |s: &str| BASE64.decode(s.as_bytes()).unwrap_or_default();
        let commit_message =
            |epoch: u64, commit: conclave_e2ee::mls::Commit, added, removed| ClientMessage::E2eeCommit {
                epoch,
                commit: BASE64.encode(&commit.commit),
                welcome: commit.welcome.map(|w| BASE64.encode(&w)),
                added,
                removed,
            };
        match message {
            ServerMessage::E2eeCreateGroup if e2ee.member.create_group(b"conclave-meeting").is_ok() => {
                let _ = e2ee.rekey();
            }
            ServerMessage::E2eeAddRequest { participant_id, key_package } => {
                let Some(epoch) = e2ee.member.epoch() else { return Vec::new() };
                if let Ok(commit) = e2ee.member.add(&[decode(&key_package)]) {
                    let _ = e2ee.rekey();
                    return vec![commit_message(epoch, commit, vec![participant_id], Vec::new())];
                }
            }
            ServerMessage::E2eeRemoveRequest { participant_id } => {
                let (Some(epoch), Some(leaf)) =
                    (e2ee.member.epoch(), e2ee.member.leaf_of(participant_id.to_string().as_bytes()))
                else {
                    return Vec::new();
                };
                if let Ok(commit) = e2ee.member.remove(&[leaf]) {
                    let _ = e2ee.rekey();
                    return vec![commit_message(epoch, commit, Vec::new(), vec![participant_id])];
                }
            }
            ServerMessage::E2eeCommit { commit, .. } => {
                let _ = e2ee.process(&decode(&commit));
            }
            ServerMessage::E2eeWelcome { welcome, .. } if e2ee.member.join(&decode(&welcome)).is_ok() => {
                let _ = e2ee.rekey();
                self.stats.lock().expect("stats lock").welcomed = true;
            }
            ServerMessage::E2eeApplication { from, message } => {
                if let Ok(Processed::Application { plaintext, .. }) = e2ee.process(&decode(&message)) {
                    let text = String::from_utf8_lossy(&plaintext).into_owned();
                    self.stats.lock().expect("stats lock").e2ee_chat.push((from, text));
                }
            }
            _ => {}
        }
        Vec::new()
    }

    /// What the stats show of the group: the security code (and its history)
    /// and the key material of each new epoch.
    pub(super) fn publish_e2ee_state(&self) {
        let code = self.e2ee.as_ref().and_then(|e| e.security_code());
        let mut stats = self.stats.lock().expect("stats lock");
        if let Some(member) = self.e2ee.as_ref().map(|e| &e.member) {
            if let (Ok(secret), Some(leaf)) = (member.sframe_epoch_secret(SUITE), member.leaf_index()) {
                if !stats.key_material.contains(&secret) {
                    stats.key_material.push(base_key(SUITE, &secret, leaf));
                    stats.key_material.push(secret);
                }
            }
        }
        if let Some(code) = &code {
            if stats.security_codes.last() != Some(code) {
                stats.security_codes.push(code.clone());
            }
        }
        stats.security_code = code;
    }
}
