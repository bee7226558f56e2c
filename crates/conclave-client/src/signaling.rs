//! A participant's signaling connection: the WebSocket a join ticket opens,
//! with typed messages both ways and helpers to wait for what a test or bot
//! expects.

use conclave_proto::signal::{ClientMessage, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server answered the upgrade with this HTTP status (a bad ticket: 401).
    #[error("the server refused the connection with HTTP {0}")]
    Rejected(u16),
    #[error("the connection closed")]
    Closed,
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("unexpected frame: {0}")]
    Protocol(String),
}

/// What a media session negotiates through: a meeting's signaling
/// connection, or an adapter speaking another SFU's protocol in the same
/// terms (the Janus side of `conclave loadtest media`).
pub trait SignalChannel: Send + 'static {
    fn send(&mut self, message: &ClientMessage) -> impl Future<Output = Result<(), SignalError>> + Send;
    /// The next message, or `Timeout` when none came `within`.
    fn next(&mut self, within: Duration) -> impl Future<Output = Result<ServerMessage, SignalError>> + Send;
}

impl SignalChannel for MeetingConnection {
    async fn send(&mut self, message: &ClientMessage) -> Result<(), SignalError> {
        MeetingConnection::send(self, message).await
    }

    async fn next(&mut self, within: Duration) -> Result<ServerMessage, SignalError> {
        MeetingConnection::next(self, within).await
    }
}

pub struct MeetingConnection {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Everything received so far, in order, for inspection.
    pub received: Vec<ServerMessage>,
    /// The code and reason of the server's close frame, once it closed.
    pub close_reason: Option<(u16, String)>,
}

impl MeetingConnection {
    /// Opens `signaling_url` (from `joinMeeting`, or a resume URL).
    pub async fn connect(signaling_url: &str) -> Result<Self, SignalError> {
        let (socket, _) = tokio_tungstenite::connect_async(signaling_url).await.map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(response) => SignalError::Rejected(response.status().as_u16()),
            other => SignalError::Connect(other.to_string()),
        })?;
        Ok(Self { socket, received: Vec::new(), close_reason: None })
    }

    /// The URL to resume a dropped connection with `resume_token`.
    pub fn resume_url(base_url: &str, resume_token: &str) -> String {
        let ws = base_url.trim_end_matches('/').replacen("http", "ws", 1);
        format!("{ws}/api/v1/signal?resume={resume_token}&v={}", conclave_proto::signal::PROTOCOL_VERSION)
    }

    pub async fn send(&mut self, message: &ClientMessage) -> Result<(), SignalError> {
        let json = serde_json::to_string(message).expect("client messages serialise");
        self.send_raw(json).await
    }

    /// Sends any text, well-formed or not (for tests of the server's defences).
    pub async fn send_raw(&mut self, text: String) -> Result<(), SignalError> {
        self.socket.send(Message::Text(text.into())).await.map_err(|_| SignalError::Closed)
    }

    /// The next message, or `Closed` when the server closed the connection.
    pub async fn next(&mut self, within: Duration) -> Result<ServerMessage, SignalError> {
        loop {
            let frame = tokio::time::timeout(within, self.socket.next())
                .await
                .map_err(|_| SignalError::Timeout("a message".into()))?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let message: ServerMessage =
                        serde_json::from_str(&text).map_err(|e| SignalError::Protocol(format!("{e}: {text}")))?;
                    self.received.push(message.clone());
                    return Ok(message);
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => return Err(SignalError::Protocol("binary frame".into())),
                Some(Ok(Message::Close(frame))) => {
                    self.close_reason = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                    return Err(SignalError::Closed);
                }
                Some(Err(_)) | None => return Err(SignalError::Closed),
            }
        }
    }

    /// Reads until a message matches `wanted` (keeping the others in `received`).
    pub async fn wait_for(
        &mut self,
        what: &str,
        within: Duration,
        wanted: impl Fn(&ServerMessage) -> bool,
    ) -> Result<ServerMessage, SignalError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(SignalError::Timeout(what.to_owned()));
            }
            match self.next(left).await {
                Ok(message) if wanted(&message) => return Ok(message),
                Ok(_) => continue,
                Err(SignalError::Timeout(_)) => return Err(SignalError::Timeout(what.to_owned())),
                Err(other) => return Err(other),
            }
        }
    }

    /// Collects whatever arrives within `window` (to show that nothing does).
    pub async fn drain(&mut self, window: Duration) -> Vec<ServerMessage> {
        let mut got = Vec::new();
        while let Ok(message) = self.next(window).await {
            got.push(message);
        }
        got
    }

    /// True once the server has closed the connection (reads until it does, within `within`).
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.next(left).await {
                Err(SignalError::Closed) => return true,
                Err(SignalError::Timeout(_)) => return false,
                _ => continue,
            }
        }
    }

    /// Leaves the meeting: sends `leave` and waits for the server to close
    /// the connection, so the departure is certain to have been heard.
    pub async fn leave(mut self) -> Result<(), SignalError> {
        self.send(&ClientMessage::Leave).await?;
        if self.closed_within(Duration::from_secs(5)).await {
            Ok(())
        } else {
            Err(SignalError::Timeout("the server to close after leave".into()))
        }
    }

    /// Closes the WebSocket properly: a close frame, then reading until the
    /// server's close. (Dropping a socket with unread data makes the kernel
    /// reset the connection, which can discard what was sent just before.)
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        let _ =
            tokio::time::timeout(Duration::from_secs(2), async { while let Some(Ok(_)) = self.socket.next().await {} })
                .await;
    }
}
