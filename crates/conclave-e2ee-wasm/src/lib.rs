//! Conclave's end-to-end encryption for the browser: one [`Device`] per
//! meeting, living in the web app's media worker, so keys never reach the
//! page. The worker hands it the server's `e2ee_*` messages as JSON and
//! sends back what it returns; the encoded-transform streams pass every
//! outgoing frame through [`Device::encrypt`] and every incoming one
//! through [`Device::decrypt`].
//!
//! The same worker holds the device's conversations
//! ([`conversations::Conversations`]): every group's keys, and the
//! messages it has opened, out of the page's reach.

pub mod av1;
pub mod conversations;
pub mod files;
pub mod frame;
pub mod h264;

use conclave_e2ee::agent::{AgentEvent, E2eeAgent, MemberInfo};
use conclave_e2ee::credential::KnownDevices;
use conclave_e2ee::mls::{GroupMember, OpenMlsMember};
use conclave_proto::signal::ServerMessage;
use serde_json::json;
use wasm_bindgen::prelude::*;

use crate::frame::FrameKind;

#[wasm_bindgen]
pub struct Device {
    agent: E2eeAgent<OpenMlsMember>,
}

fn error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn member(m: &MemberInfo) -> serde_json::Value {
    json!({
        "participant_id": m.participant_id,
        "user_id": m.user_id,
        "display_name": m.display_name,
        "fingerprint": m.fingerprint,
        "verified": m.verified,
        "is_self": m.is_self,
    })
}

fn frame_kind(kind: &str) -> Result<FrameKind, JsError> {
    FrameKind::parse(kind).ok_or_else(|| error("unknown frame kind"))
}

#[wasm_bindgen]
impl Device {
    /// The browser's device: the signature key it kept (a new one when
    /// absent) and the device keys it has seen per account (JSON, `{}` at first).
    #[wasm_bindgen(constructor)]
    pub fn new(kept_key: Option<Vec<u8>>, known_devices: &str) -> Result<Device, JsError> {
        let known: KnownDevices = serde_json::from_str(known_devices).unwrap_or_default();
        Ok(Self { agent: E2eeAgent::for_device(kept_key.as_deref(), known).map_err(error)? })
    }

    /// The signature key pair to keep for the next meeting (private: it
    /// never leaves the browser).
    pub fn signature_key(&self) -> Vec<u8> {
        self.agent.session().member.export_signature_key()
    }

    /// Every device key seen per account, as JSON, to keep.
    pub fn known_devices(&self) -> String {
        serde_json::to_string(self.agent.known_devices()).unwrap_or_else(|_| "{}".into())
    }

    /// The first message to send once admitted (the request for the
    /// server's credential), as JSON; the KeyPackage follows it.
    pub fn start(&self) -> Result<String, JsError> {
        serde_json::to_string(&self.agent.start()).map_err(error)
    }

    /// Handles one server message (JSON). Returns
    /// `{"send": [client messages], "events": [...]}`.
    pub fn handle(&mut self, message: &str) -> Result<String, JsError> {
        let message: ServerMessage = serde_json::from_str(message).map_err(error)?;
        let handled = self.agent.handle(&message);
        let events: Vec<_> = handled
            .events
            .iter()
            .map(|e| match e {
                AgentEvent::NewEpoch(epoch) => json!({ "type": "epoch", "epoch": epoch }),
                AgentEvent::Chat { from, text } => json!({ "type": "chat", "from": from, "text": text }),
                AgentEvent::Removed => json!({ "type": "removed" }),
                AgentEvent::Roster(roster) => json!({ "type": "roster", "members": roster.iter().map(member).collect::<Vec<_>>() }),
                AgentEvent::NewDevice { participant_id, display_name, fingerprint } => json!({
                    "type": "new_device", "participant_id": participant_id, "display_name": display_name, "fingerprint": fingerprint,
                }),
                AgentEvent::CommitRefused { from, reason } => json!({ "type": "commit_refused", "from": from, "reason": reason }),
                AgentEvent::DeviceRemoved { participant_id, by_server } => json!({
                    "type": "device_removed", "participant_id": participant_id, "by_server": by_server,
                }),
            })
            .collect();
        Ok(json!({ "send": handled.send, "events": events }).to_string())
    }

    /// An `e2ee_application` message carrying a chat line, as JSON; `null`
    /// when a removal waits for its commit (the line is held and sent with
    /// what `handle` returns once it is applied).
    pub fn chat(&mut self, text: &str) -> Result<String, JsError> {
        serde_json::to_string(&self.agent.chat(text).map_err(error)?).map_err(error)
    }

    /// The code everyone reads aloud; absent until in the group.
    pub fn security_code(&self) -> Option<String> {
        self.agent.session().security_code()
    }

    pub fn epoch(&self) -> Option<f64> {
        self.agent.session().member.epoch().map(|e| e as f64)
    }

    /// Seals an encoded frame; `kind` is `key` or `delta` for VP8 (its
    /// payload header stays readable), `whole` for audio and VP9, `h264`
    /// and `av1` for those codecs' layouts ([`frame`]). Fails
    /// while this device has no keys (not yet in the group): nothing is
    /// ever sent in the clear.
    pub fn encrypt(&mut self, kind: &str, frame: &[u8]) -> Result<Vec<u8>, JsError> {
        frame::seal(self.agent.session_mut(), frame_kind(kind)?, frame).map_err(error)
    }

    pub fn decrypt(&mut self, kind: &str, frame: &[u8]) -> Result<Vec<u8>, JsError> {
        frame::open(self.agent.session_mut(), frame_kind(kind)?, frame).map_err(error)
    }
}
