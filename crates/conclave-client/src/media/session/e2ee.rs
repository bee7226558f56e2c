//! A headless participant's side of end-to-end encryption: its KeyPackage,
//! and the delivery service's messages handed to the shared
//! [`E2eeAgent`](conclave_e2ee::agent::E2eeAgent), whose replies are sent and
//! whose events (new epochs, chat) are recorded in the stats.

use conclave_e2ee::agent::{AgentEvent, MEETING_SUITE as SUITE};
use conclave_e2ee::keys::base_key;
use conclave_e2ee::mls::GroupMember;
use conclave_proto::signal::{ClientMessage, ServerMessage};

use super::machine::MediaSession;

impl MediaSession {
    /// The first E2EE message, when E2EE is on: this device's key, for the
    /// server to vouch for (its KeyPackage follows with the credential).
    pub(super) fn e2ee_start(&self) -> Option<ClientMessage> {
        Some(self.e2ee.as_ref()?.start())
    }

    /// The delivery service's messages: credential, create, add, remove, commits, Welcome, chat.
    pub(super) fn on_e2ee(&mut self, message: ServerMessage) -> Vec<ClientMessage> {
        let Some(agent) = self.e2ee.as_mut() else { return Vec::new() };
        let welcomed = matches!(message, ServerMessage::E2eeWelcome { .. });
        let handled = agent.handle(&message);
        let stats = &mut self.stats;
        for event in handled.events {
            match event {
                AgentEvent::NewEpoch(_) if welcomed => stats.welcomed = true,
                AgentEvent::Chat { from, text } => stats.e2ee_chat.push((from, text)),
                AgentEvent::Roster(roster) => stats.e2ee_roster = roster,
                AgentEvent::NewDevice { participant_id, display_name, .. } => {
                    stats.e2ee_new_devices.push((participant_id, display_name))
                }
                AgentEvent::CommitRefused { from, reason } => stats.e2ee_refused_commits.push((from, reason)),
                AgentEvent::DeviceRemoved { participant_id, by_server } => {
                    stats.e2ee_removed.push((participant_id, by_server))
                }
                _ => {}
            }
        }
        handled.send
    }

    /// What the stats show of the group: the security code (and its history)
    /// and the key material of each new epoch.
    pub(super) fn publish_e2ee_state(&mut self) {
        let session = self.e2ee.as_ref().map(|a| a.session());
        let code = session.and_then(|s| s.security_code());
        let stats = &mut self.stats;
        if let Some(member) = session.map(|s| &s.member) {
            if stats.e2ee_device_key.is_empty() {
                stats.e2ee_device_key = member.export_signature_key();
            }
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
