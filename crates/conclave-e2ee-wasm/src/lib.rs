//! Conclave's end-to-end encryption for the browser: one [`Device`] per
//! meeting, living in the web app's media worker, so keys never reach the
//! page. The worker hands it the server's `e2ee_*` messages as JSON and
//! sends back what it returns; the encoded-transform streams pass every
//! outgoing frame through [`Device::encrypt`] and every incoming one
//! through [`Device::decrypt`].

pub mod frame;

use conclave_e2ee::agent::{AgentEvent, E2eeAgent};
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

fn frame_kind(kind: &str) -> Result<FrameKind, JsError> {
    FrameKind::parse(kind).ok_or_else(|| error("unknown frame kind"))
}

#[wasm_bindgen]
impl Device {
    /// A new device whose MLS credential names `identity` (the participant id).
    #[wasm_bindgen(constructor)]
    pub fn new(identity: &str) -> Result<Device, JsError> {
        Ok(Self { agent: E2eeAgent::for_device(identity.as_bytes()).map_err(error)? })
    }

    /// The `e2ee_key_package` message to send once admitted, as JSON.
    pub fn key_package(&self) -> Result<String, JsError> {
        serde_json::to_string(&self.agent.key_package().map_err(error)?).map_err(error)
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
            })
            .collect();
        Ok(json!({ "send": handled.send, "events": events }).to_string())
    }

    /// An `e2ee_application` message carrying a chat line, as JSON.
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

    /// Seals an encoded frame; `kind` is `key`, `delta` or `audio`. Fails
    /// while this device has no keys (not yet in the group): nothing is
    /// ever sent in the clear.
    pub fn encrypt(&mut self, kind: &str, frame: &[u8]) -> Result<Vec<u8>, JsError> {
        frame::seal(self.agent.session_mut(), frame_kind(kind)?, frame).map_err(error)
    }

    pub fn decrypt(&mut self, kind: &str, frame: &[u8]) -> Result<Vec<u8>, JsError> {
        frame::open(self.agent.session_mut(), frame_kind(kind)?, frame).map_err(error)
    }
}
