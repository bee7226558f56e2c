//! Team conversations over REST: one method per `operationId` of the
//! `conversations` tag. The MLS side (encrypting, joining groups, carrying
//! out the server's requests) is the caller's: these move ciphertext.

use crate::{Client, Result};
use conclave_proto::conversation::*;
use reqwest::Method;

impl Client {
    pub async fn create_conversation(&self, req: &CreateConversationRequest) -> Result<Conversation> {
        self.json(Method::POST, "/api/v1/conversations", Some(req)).await
    }

    pub async fn list_conversations(&self) -> Result<ConversationList> {
        self.json::<_, ()>(Method::GET, "/api/v1/conversations", None).await
    }

    /// People of the caller's organisation whose name or address contains `query`.
    pub async fn find_people(&self, query: &str) -> Result<PeopleList> {
        let mut url = reqwest::Url::parse("http://x/api/v1/people").expect("a URL");
        url.query_pairs_mut().append_pair("q", query);
        let path = format!("{}?{}", url.path(), url.query().unwrap_or_default());
        self.json::<_, ()>(Method::GET, &path, None).await
    }

    /// The channels of the caller's organisation, joined or not.
    pub async fn list_channels(&self) -> Result<ChannelList> {
        self.json::<_, ()>(Method::GET, "/api/v1/channels", None).await
    }

    pub async fn get_conversation(&self, id: &str) -> Result<Conversation> {
        self.json::<_, ()>(Method::GET, &format!("/api/v1/conversations/{id}"), None).await
    }

    pub async fn update_conversation(&self, id: &str, update: &ConversationSettingsUpdate) -> Result<Conversation> {
        self.json(Method::PATCH, &format!("/api/v1/conversations/{id}"), Some(update)).await
    }

    pub async fn add_conversation_members(&self, id: &str, user_ids: &[&str]) -> Result<Conversation> {
        let req = AddMembersRequest { user_ids: user_ids.iter().map(|u| u.to_string()).collect() };
        self.json(Method::POST, &format!("/api/v1/conversations/{id}/members"), Some(&req)).await
    }

    pub async fn join_conversation(&self, id: &str) -> Result<Conversation> {
        self.json::<_, ()>(Method::POST, &format!("/api/v1/conversations/{id}/join"), None).await
    }

    /// Removes a member; the caller's own id leaves.
    pub async fn remove_conversation_member(&self, id: &str, user_id: &str) -> Result<()> {
        self.empty::<()>(Method::DELETE, &format!("/api/v1/conversations/{id}/members/{user_id}"), None).await
    }

    pub async fn set_conversation_role(&self, id: &str, user_id: &str, role: ConversationRole) -> Result<Conversation> {
        let req = SetConversationRoleRequest { role };
        self.json(Method::PUT, &format!("/api/v1/conversations/{id}/members/{user_id}/role"), Some(&req)).await
    }

    pub async fn send_message(&self, id: &str, req: &SendMessageRequest) -> Result<MessageAccepted> {
        self.json(Method::POST, &format!("/api/v1/conversations/{id}/messages"), Some(req)).await
    }

    /// Invites someone from outside as a guest: a link and a one-time code.
    pub async fn invite_guest(&self, id: &str, email: &str) -> Result<GuestInvitation> {
        let req = InviteGuestRequest { email: email.to_owned() };
        self.json(Method::POST, &format!("/api/v1/conversations/{id}/guests"), Some(&req)).await
    }

    /// Takes a guest invitation: the account it makes, signed in.
    pub async fn guest_signup(&self, req: &GuestSignupRequest) -> Result<conclave_proto::LoginResponse> {
        self.json(Method::POST, "/api/v1/auth/guest-signup", Some(req)).await
    }

    /// A guest, signed in, takes an invitation into another conversation.
    pub async fn accept_guest_invitation(&self, token: &str, code: &str) -> Result<Conversation> {
        let req = AcceptGuestInvitationRequest { token: token.to_owned(), code: code.to_owned() };
        self.json(Method::POST, "/api/v1/me/guest-invitations", Some(&req)).await
    }

    /// Starts a call from the conversation: a meeting its members enter directly.
    pub async fn start_call(&self, id: &str) -> Result<conclave_proto::Meeting> {
        self.json::<_, ()>(Method::POST, &format!("/api/v1/conversations/{id}/calls"), None).await
    }

    pub async fn mark_conversation_read(&self, id: &str, seq: Seq) -> Result<()> {
        self.empty(Method::PUT, &format!("/api/v1/conversations/{id}/read"), Some(&MarkReadRequest { seq })).await
    }

    pub async fn mute_conversation(&self, id: &str, muted: bool) -> Result<()> {
        self.empty(Method::PUT, &format!("/api/v1/conversations/{id}/mute"), Some(&MuteRequest { muted })).await
    }

    pub async fn delete_message(&self, id: &str, seq: Seq) -> Result<()> {
        self.empty::<()>(Method::DELETE, &format!("/api/v1/conversations/{id}/messages/{seq}"), None).await
    }

    /// The log after `after` as `device_id` may read it; with `wait_ms`, an
    /// empty page waits that long for the next entry.
    pub async fn read_conversation(
        &self,
        id: &str,
        device_id: &str,
        after: Seq,
        limit: u32,
        wait_ms: u64,
    ) -> Result<EntryPage> {
        self.entries(id, device_id, after, limit, &format!("wait_ms={wait_ms}")).await
    }

    /// The history copies of what came before `device_id` joined, after `after`.
    pub async fn read_conversation_earlier(
        &self,
        id: &str,
        device_id: &str,
        after: Seq,
        limit: u32,
    ) -> Result<EntryPage> {
        self.entries(id, device_id, after, limit, "earlier=true").await
    }

    async fn entries(&self, id: &str, device_id: &str, after: Seq, limit: u32, more: &str) -> Result<EntryPage> {
        let path =
            format!("/api/v1/conversations/{id}/entries?device_id={device_id}&after={after}&limit={limit}&{more}");
        self.json::<_, ()>(Method::GET, &path, None).await
    }

    pub async fn upload_key_package(&self, id: &str, req: &KeyPackageRequest) -> Result<()> {
        self.empty(Method::POST, &format!("/api/v1/conversations/{id}/key-packages"), Some(req)).await
    }

    pub async fn send_commit(&self, id: &str, req: &CommitRequest) -> Result<Conversation> {
        self.json(Method::POST, &format!("/api/v1/conversations/{id}/commits"), Some(req)).await
    }

    /// The device's handshake messages after `after` (those up to it are acknowledged).
    pub async fn read_device_inbox(&self, device_id: &str, after: i64) -> Result<InboxPage> {
        self.json::<_, ()>(Method::GET, &format!("/api/v1/me/devices/{device_id}/inbox?after={after}"), None).await
    }
}

/// A device's live connection (`deviceLive`): events as they happen;
/// typing notices and messages sent ([`LiveSender`]).
pub struct DeviceLive {
    events: futures_util::stream::SplitStream<LiveSocket>,
    sender: LiveSender,
}

type LiveSocket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What a device says on its live connection, from wherever it is: a
/// handle to the connection's writer, which any task may hold while
/// another reads the events.
#[derive(Debug, Clone)]
pub struct LiveSender {
    commands: tokio::sync::mpsc::UnboundedSender<String>,
}

impl Client {
    /// Opens `device_id`'s live connection.
    pub async fn device_live(&self, device_id: &str) -> std::result::Result<DeviceLive, crate::SignalError> {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("{}/api/v1/me/devices/{device_id}/live", self.base.replacen("http", "ws", 1));
        let mut request = url.into_client_request().map_err(|e| crate::SignalError::Connect(e.to_string()))?;
        if let Some(token) = &self.token {
            let value =
                format!("Bearer {token}").parse().map_err(|_| crate::SignalError::Connect("bad token".into()))?;
            request.headers_mut().insert("authorization", value);
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await.map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                crate::SignalError::Rejected(response.status().as_u16())
            }
            other => crate::SignalError::Connect(other.to_string()),
        })?;
        let (mut out, events) = socket.split();
        let (commands, mut queued) = tokio::sync::mpsc::unbounded_channel::<String>();
        // The writer ends with the connection (and then every send fails)
        // or once no handle to it is left.
        tokio::spawn(async move {
            while let Some(text) = queued.recv().await {
                if out.send(text.into()).await.is_err() {
                    return;
                }
            }
            let _ = out.close().await;
        });
        Ok(DeviceLive { events, sender: LiveSender { commands } })
    }
}

impl DeviceLive {
    /// The next event, waiting at most `within`.
    pub async fn next(&mut self, within: std::time::Duration) -> std::result::Result<LiveEvent, crate::SignalError> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let frame = tokio::time::timeout(within, self.events.next())
                .await
                .map_err(|_| crate::SignalError::Timeout("a live event".into()))?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(&text)
                        .map_err(|e| crate::SignalError::Protocol(format!("{e}: {text}")))
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(_)) | Some(Err(_)) | None => return Err(crate::SignalError::Closed),
            }
        }
    }

    /// Says the person is typing in a conversation.
    pub async fn typing(&mut self, conversation_id: &str) -> std::result::Result<(), crate::SignalError> {
        self.sender.typing(conversation_id)
    }

    /// A handle to say things on this connection while it is read elsewhere.
    pub fn sender(&self) -> LiveSender {
        self.sender.clone()
    }
}

impl LiveSender {
    fn say(&self, command: &LiveCommand) -> std::result::Result<(), crate::SignalError> {
        let text = serde_json::to_string(command).expect("live commands serialise");
        self.commands.send(text).map_err(|_| crate::SignalError::Closed)
    }

    /// Says the person is typing in a conversation.
    pub fn typing(&self, conversation_id: &str) -> std::result::Result<(), crate::SignalError> {
        self.say(&LiveCommand::Typing { conversation_id: conversation_id.to_owned() })
    }

    /// Sends a message from this connection's device, as
    /// [`Client::send_message`] does without a request of its own: the
    /// answer arrives among the events, `LiveEvent::Sent` (durable) or
    /// `LiveEvent::NotSent`, with the message's `client_id`.
    pub fn send_message(
        &self,
        conversation_id: &str,
        message: &SendMessageRequest,
    ) -> std::result::Result<(), crate::SignalError> {
        self.say(&LiveCommand::Send { conversation_id: conversation_id.to_owned(), message: message.clone() })
    }
}
