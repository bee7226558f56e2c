//! One device's end-to-end encrypted conversations over the REST API: the
//! driver of `conclave_e2ee::conversations::ConversationDevice`, which
//! decides everything (the order of the inbox and each log, the MLS
//! handshake the server asks for, catching up and trying again) and names
//! the calls it needs; this module only makes them. The server only ever
//! sees ciphertext.

use conclave_e2ee::conversations::{text_payload, Call, ConversationDevice, DeviceError, Failure, Operation, Reply};
use conclave_e2ee::mls::MlsError;
use conclave_proto::conversation::{MessageAccepted, MessagePayload, Reference, SendMessageRequest};
use conclave_proto::RegisterDeviceRequest;
use data_encoding::BASE64;

pub use conclave_e2ee::conversations::{Attached, ChatEvent, HeldMessage};

use crate::{Client, ClientError};

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// Boxed, as `File` is: a call's error is several times the size of
    /// the others, and every call of a device would carry its size.
    #[error(transparent)]
    Api(Box<ClientError>),
    #[error("end-to-end encryption failed: {0:?}")]
    Mls(MlsError),
    #[error("the server's credential is not for this device's key")]
    NotVouched,
    #[error("this device is not in the conversation's group yet")]
    NotInGroup,
    #[error(transparent)]
    File(Box<crate::files::FileTransferError>),
    /// A call failed whose error the driver did not keep (never, in practice).
    #[error("the server refused a call ({0})")]
    Refused(Failure),
}

impl From<ClientError> for ChatError {
    fn from(err: ClientError) -> Self {
        Self::Api(Box::new(err))
    }
}

impl From<crate::files::FileTransferError> for ChatError {
    fn from(err: crate::files::FileTransferError) -> Self {
        Self::File(Box::new(err))
    }
}

impl From<MlsError> for ChatError {
    fn from(err: MlsError) -> Self {
        Self::Mls(err)
    }
}

/// A device of the signed-in account, holding its conversations' keys.
pub struct ChatDevice {
    client: Client,
    pub device_id: String,
    pub user_id: String,
    device: ConversationDevice,
}

impl ChatDevice {
    /// A new device for `client`'s account: a fresh signature key,
    /// registered with the account and vouched for by the server.
    pub async fn register(client: &Client, name: &str) -> Result<Self, ChatError> {
        let key = ConversationDevice::new_key().map_err(device_error)?;
        let req = RegisterDeviceRequest { signature_key: BASE64.encode(&key.signature_key), name: name.to_owned() };
        let registration = client.register_device(&req).await?;
        let me = client.me().await?;
        let credential = BASE64.decode(registration.credential.as_bytes()).map_err(|_| ChatError::NotVouched)?;
        let device =
            ConversationDevice::new(registration.device.id, me.user.id, key.key, credential, registration.authority);
        Ok(Self::over(client, device))
    }

    fn over(client: &Client, device: ConversationDevice) -> Self {
        Self { client: client.clone(), device_id: device.device_id.clone(), user_id: device.user_id.clone(), device }
    }

    /// Everything this device holds (its private key, each group's MLS
    /// state), for the device alone to keep and carry on from with
    /// [`Self::restore`]. Whoever reads it reads this device's conversations.
    pub fn export(&self) -> Vec<u8> {
        self.device.export()
    }

    /// The device [`Self::export`] kept, talking through `client`.
    pub fn restore(client: &Client, kept: &[u8]) -> Result<Self, ChatError> {
        Ok(Self::over(client, ConversationDevice::restore(kept).map_err(device_error)?))
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The messages of a conversation this device has read, in order.
    pub fn history(&self, conversation_id: &str) -> &[HeldMessage] {
        self.device.history(conversation_id)
    }

    /// The messages this device holds that mention its account, in order.
    pub fn mentioning_me(&self, conversation_id: &str) -> Vec<&HeldMessage> {
        self.device.mentioning_me(conversation_id)
    }

    /// The messages this device holds that match `query`, newest first,
    /// found on the device alone.
    pub fn search(&self, query: &str) -> Vec<conclave_e2ee::search::Found> {
        self.device.search(query)
    }

    /// Whether this device is in `conversation_id`'s group.
    pub fn in_group(&self, conversation_id: &str) -> bool {
        self.device.in_group(conversation_id)
    }

    /// The MLS epoch this device is at in the conversation.
    pub fn epoch(&self, conversation_id: &str) -> Option<u64> {
        self.device.epoch(conversation_id)
    }

    /// Opens a message of the conversation with the keys this device holds
    /// (`None` if they do not open it): what a device keeps after leaving
    /// opens nothing sent after.
    pub fn open_ciphertext(&mut self, conversation_id: &str, from_device: &str, content: &str) -> Option<String> {
        self.device.open_ciphertext(conversation_id, from_device, content)
    }

    /// Opens a message's history copy with the history keys this device
    /// holds (`None` if they do not open it).
    pub fn open_history_copy(&self, conversation_id: &str, client_id: &str, history: &str) -> Option<String> {
        self.device.open_history_copy(conversation_id, client_id, history)
    }

    /// Asks to be in a conversation's group (the first device creates it);
    /// the answer comes with the next syncs. A plain conversation (where
    /// the organisation allows them) has no group: the device follows its
    /// log from now on, and reads its first page at once.
    pub async fn open(&mut self, conversation_id: &str) -> Result<(), ChatError> {
        let conversation_id = conversation_id.to_owned();
        let operation = if self.client.get_conversation(&conversation_id).await?.encrypted {
            Operation::Open { conversation_id }
        } else {
            Operation::Follow { conversation_id }
        };
        self.run(operation).await.map(drop)
    }

    /// Takes everything new: the inbox, then every conversation's log.
    pub async fn sync(&mut self) -> Result<Vec<ChatEvent>, ChatError> {
        Ok(self.run(Operation::Sync).await?.events)
    }

    /// Starts a call from the conversation and shares its link there,
    /// encrypted like any message: the members enter without waiting.
    pub async fn start_call(&mut self, conversation_id: &str) -> Result<conclave_proto::Meeting, ChatError> {
        let meeting = self.client.start_call(conversation_id).await?;
        let text = format!("📞 {} — join: {}", meeting.title, meeting.invite_url);
        self.send_text(conversation_id, &text, None).await?;
        Ok(meeting)
    }

    /// Encrypts `text` for the conversation and sends it; durable when this
    /// returns. Catches up and tries again if the group moved on meanwhile.
    pub async fn send_text(
        &mut self,
        conversation_id: &str,
        text: &str,
        reference: Option<Reference>,
    ) -> Result<MessageAccepted, ChatError> {
        self.send_payload(conversation_id, text_payload(text), reference).await
    }

    /// Seals and uploads a file to the conversation, then shares it there
    /// in a message (with `thumbnail`, a small preview this device made,
    /// uploaded the same way, and a caption). `progress` hears the bytes
    /// uploaded and the total.
    pub async fn send_file(
        &mut self,
        conversation_id: &str,
        source: &std::path::Path,
        thumbnail: Option<&std::path::Path>,
        caption: Option<&str>,
        progress: impl FnMut(u64, u64),
    ) -> Result<(MessageAccepted, Attached), ChatError> {
        if !self.in_group(conversation_id) {
            return Err(ChatError::NotInGroup);
        }
        let name =
            |path: &std::path::Path| path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let uploaded = self.client.upload_file(conversation_id, &self.device_id, source, progress).await?;
        let file = uploaded.shared(&name(source), crate::files::mime_of(source));
        let thumbnail = match thumbnail {
            Some(path) => {
                let uploaded = self.client.upload_file(conversation_id, &self.device_id, path, |_, _| {}).await?;
                Some(uploaded.shared(&name(path), crate::files::mime_of(path)))
            }
            None => None,
        };
        let attached = Attached { file: file.clone(), thumbnail: thumbnail.clone() };
        let payload = MessagePayload::File { file, thumbnail, caption: caption.map(str::to_owned) };
        let accepted = self.send_payload(conversation_id, payload, None).await?;
        Ok((accepted, attached))
    }

    async fn send_payload(
        &mut self,
        conversation_id: &str,
        payload: MessagePayload,
        reference: Option<Reference>,
    ) -> Result<MessageAccepted, ChatError> {
        let operation = Operation::Send {
            conversation_id: conversation_id.to_owned(),
            payload,
            reference,
            client_id: format!("{:032x}", rand::random::<u128>()),
        };
        Ok(self.run(operation).await?.accepted.expect("a send that succeeds is accepted"))
    }

    /// Encrypts a text for the conversation's current epoch without sending
    /// it: the request [`Client::send_message`] takes. It goes stale when
    /// the group moves on (`409 stale-epoch`), so it is for sending soon —
    /// by an outbox flushed on reconnect, or a load generator that keeps
    /// encryption out of the time it measures.
    pub fn seal_text(&mut self, conversation_id: &str, text: &str) -> Result<SendMessageRequest, ChatError> {
        let client_id = format!("{:032x}", rand::random::<u128>());
        self.device.seal_text(conversation_id, text, &client_id).map_err(device_error)
    }

    /// Runs one operation of the device to its end, making the calls it
    /// names. A call that fails for a reason the device cannot act on ends
    /// the operation with that call's error.
    async fn run(&mut self, operation: Operation) -> Result<conclave_e2ee::conversations::Finished, ChatError> {
        self.device.start(operation);
        let mut failed = None;
        while let Some(call) = self.device.poll_call() {
            let reply = match self.make(call).await {
                Ok(reply) => reply,
                Err(err) => {
                    let failure = Failure { status: err.status(), code: err.code().map(str::to_owned) };
                    failed = Some(err);
                    Reply::Failed(failure)
                }
            };
            self.device.handle_reply(reply);
        }
        self.device.finish().map_err(|err| match (err, failed) {
            (DeviceError::Call(_), Some(call)) => ChatError::Api(Box::new(call)),
            (err, _) => device_error(err),
        })
    }

    async fn make(&self, call: Call) -> Result<Reply, ClientError> {
        let client = &self.client;
        Ok(match call {
            Call::ReadInbox { after } => Reply::Inbox(client.read_device_inbox(&self.device_id, after).await?),
            Call::ReadLog { conversation_id, after, limit } => {
                Reply::Entries(client.read_conversation(&conversation_id, &self.device_id, after, limit, 0).await?)
            }
            Call::ReadEarlier { conversation_id, after, limit } => {
                Reply::Entries(client.read_conversation_earlier(&conversation_id, &self.device_id, after, limit).await?)
            }
            Call::UploadKeyPackage { conversation_id, request } => {
                client.upload_key_package(&conversation_id, &request).await?;
                Reply::Done
            }
            Call::SendCommit { conversation_id, request } => {
                client.send_commit(&conversation_id, &request).await?;
                Reply::Done
            }
            Call::SendMessage { conversation_id, request } => {
                Reply::Accepted(client.send_message(&conversation_id, &request).await?)
            }
            Call::Wait { ms } => {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                Reply::Done
            }
        })
    }
}

fn device_error(err: DeviceError) -> ChatError {
    match err {
        DeviceError::Mls(err) => ChatError::Mls(err),
        DeviceError::NotVouched => ChatError::NotVouched,
        DeviceError::NotInGroup => ChatError::NotInGroup,
        DeviceError::Unreadable => ChatError::Mls(MlsError::Malformed),
        DeviceError::Call(failure) => ChatError::Refused(failure),
    }
}
