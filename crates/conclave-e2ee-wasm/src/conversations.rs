//! A browser device's end-to-end encrypted conversations: conclave-e2ee's
//! [`ConversationDevice`] for the web app's worker. The worker starts an
//! operation, makes each call the device names with `fetch` and hands back
//! the reply, as `conclave-client` does natively; the page is given only
//! the decrypted messages it shows.

use conclave_e2ee::conversations::{text_payload, Call, ConversationDevice, Failure, Operation, Reply};
use conclave_proto::conversation::{MessagePayload, Reference};
use conclave_proto::file::SharedFile;
use data_encoding::BASE64;
use serde::Deserialize;
use serde_json::json;
use wasm_bindgen::prelude::*;

use crate::error;

/// What the worker asks of the device (JSON, by `op`).
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Asked {
    Sync,
    Open {
        conversation_id: String,
    },
    /// Reads a plain (unencrypted) conversation from now on.
    Follow {
        conversation_id: String,
    },
    Send {
        conversation_id: String,
        text: String,
        reference: Option<Reference>,
        client_id: String,
    },
    /// Shares a file this device uploaded (with its preview and a caption).
    SendFile {
        conversation_id: String,
        file: SharedFile,
        thumbnail: Option<SharedFile>,
        caption: Option<String>,
        client_id: String,
    },
}

/// The reply to a call: `{"ok": body}` (null for none) or `{"failed": {status, code}}`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answered {
    Ok(serde_json::Value),
    Failed(Failure),
}

/// What the call in flight answers with.
#[derive(Clone, Copy)]
enum Expect {
    Inbox,
    Entries,
    Accepted,
    Nothing,
}

#[wasm_bindgen]
pub struct Conversations {
    device: ConversationDevice,
    expect: Option<Expect>,
}

#[wasm_bindgen]
impl Conversations {
    /// A fresh signature key pair: `{"key": base64 (private, kept), "signature_key": base64 (to register)}`.
    pub fn new_key() -> Result<String, JsError> {
        let key = ConversationDevice::new_key().map_err(error)?;
        Ok(json!({ "key": BASE64.encode(&key.key), "signature_key": BASE64.encode(&key.signature_key) }).to_string())
    }

    /// The device the server registered: its id, its account, the key of
    /// [`Self::new_key`] and the server's credential (base64) and authority.
    pub fn create(
        device_id: String,
        user_id: String,
        key: &str,
        credential: &str,
        authority: String,
    ) -> Result<Conversations, JsError> {
        let bytes = |text: &str| BASE64.decode(text.as_bytes()).map_err(error);
        let device = ConversationDevice::new(device_id, user_id, bytes(key)?, bytes(credential)?, authority);
        Ok(Self { device, expect: None })
    }

    /// The device [`Self::export`] kept.
    pub fn restore(kept: &[u8]) -> Result<Conversations, JsError> {
        Ok(Self { device: ConversationDevice::restore(kept).map_err(error)?, expect: None })
    }

    /// Everything the device holds, private key included, for the worker
    /// to keep (sealed) and restore.
    pub fn export(&self) -> Vec<u8> {
        self.device.export()
    }

    pub fn device_id(&self) -> String {
        self.device.device_id.clone()
    }

    pub fn user_id(&self) -> String {
        self.device.user_id.clone()
    }

    /// Whether this device asked to be in the conversation's group.
    pub fn asked(&self, conversation_id: &str) -> bool {
        self.device.asked(conversation_id)
    }

    pub fn in_group(&self, conversation_id: &str) -> bool {
        self.device.in_group(conversation_id)
    }

    /// The messages this device holds of a conversation, as JSON.
    pub fn history(&self, conversation_id: &str) -> String {
        serde_json::to_string(self.device.history(conversation_id)).unwrap_or_else(|_| "[]".into())
    }

    /// The messages this device holds that match `query`, newest first,
    /// as JSON: answered from the device's own history, with no request.
    pub fn search(&self, query: &str) -> String {
        serde_json::to_string(&self.device.search(query)).unwrap_or_else(|_| "[]".into())
    }

    /// Starts an operation (JSON: `{"op": "sync"}`, `{"op": "open", …}`,
    /// `{"op": "follow", …}`, `{"op": "send", …}`).
    pub fn start(&mut self, asked: &str) -> Result<(), JsError> {
        let operation = match serde_json::from_str(asked).map_err(error)? {
            Asked::Sync => Operation::Sync,
            Asked::Open { conversation_id } => Operation::Open { conversation_id },
            Asked::Follow { conversation_id } => Operation::Follow { conversation_id },
            Asked::Send { conversation_id, text, reference, client_id } => {
                Operation::Send { conversation_id, payload: text_payload(&text), reference, client_id }
            }
            Asked::SendFile { conversation_id, file, thumbnail, caption, client_id } => Operation::Send {
                conversation_id,
                payload: MessagePayload::File { file, thumbnail, caption },
                reference: None,
                client_id,
            },
        };
        self.device.start(operation);
        Ok(())
    }

    /// The next call to make (JSON, by `call`), or `undefined` when the
    /// operation is over.
    pub fn poll_call(&mut self) -> Option<String> {
        let call = self.device.poll_call()?;
        self.expect = Some(match call {
            Call::ReadInbox { .. } => Expect::Inbox,
            Call::ReadLog { .. } | Call::ReadEarlier { .. } => Expect::Entries,
            Call::SendMessage { .. } => Expect::Accepted,
            Call::UploadKeyPackage { .. } | Call::SendCommit { .. } | Call::Wait { .. } => Expect::Nothing,
        });
        Some(serde_json::to_string(&call).expect("calls serialise"))
    }

    /// The reply to the call in flight.
    pub fn handle_reply(&mut self, reply: &str) -> Result<(), JsError> {
        let expect = self.expect.take().ok_or_else(|| error("no call in flight"))?;
        let reply = match serde_json::from_str(reply).map_err(error)? {
            Answered::Failed(failure) => Reply::Failed(failure),
            Answered::Ok(body) => {
                let parsed = match expect {
                    Expect::Inbox => serde_json::from_value(body).map(Reply::Inbox),
                    Expect::Entries => serde_json::from_value(body).map(Reply::Entries),
                    Expect::Accepted => serde_json::from_value(body).map(Reply::Accepted),
                    Expect::Nothing => Ok(Reply::Done),
                };
                // A body that is not what the API answers is a failed call.
                parsed.unwrap_or_else(|_| Reply::Failed(Failure::default()))
            }
        };
        self.device.handle_reply(reply);
        Ok(())
    }

    /// What the operation saw: `{"events": [...], "accepted": {seq, duplicate} | null}`;
    /// throws what ended it otherwise.
    pub fn finish(&mut self) -> Result<String, JsError> {
        let finished = self.device.finish().map_err(error)?;
        let accepted = finished.accepted.map(|a| json!({ "seq": a.seq, "duplicate": a.duplicate }));
        Ok(json!({ "events": finished.events, "accepted": accepted }).to_string())
    }
}
