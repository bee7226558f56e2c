//! A session's signaling connection, read and written by a task of its own.
//!
//! The driver's loop wakes for every burst of datagrams; polling a
//! WebSocket at each of those wake-ups cost more than handling the
//! datagrams (the WebSocket prepares its whole read buffer on every poll).
//! The pump wakes only when the connection has a message or the session has
//! one to send, and the driver reads a channel instead.

use conclave_proto::signal::{ClientMessage, ServerMessage};
use std::time::Duration;
use tokio::sync::mpsc;

use crate::signaling::{SignalChannel, SignalError};

/// The driver's end: messages to send, and what the connection received.
pub(super) struct Signaling {
    outgoing: mpsc::UnboundedSender<ClientMessage>,
    incoming: mpsc::UnboundedReceiver<ServerMessage>,
}

impl Signaling {
    /// Starts the pump for `connection`. Dropping the `Signaling` stops it
    /// and closes the connection.
    pub fn start(connection: impl SignalChannel) -> Self {
        let (outgoing, to_send) = mpsc::unbounded_channel();
        let (received, incoming) = mpsc::unbounded_channel();
        tokio::spawn(pump(connection, to_send, received));
        Self { outgoing, incoming }
    }

    /// Queues a message; messages go in the order they were queued.
    /// `false` once the connection has closed.
    pub fn send(&self, message: ClientMessage) -> bool {
        self.outgoing.send(message).is_ok()
    }

    /// The next message; `None` once the connection has closed.
    pub async fn next(&mut self) -> Option<ServerMessage> {
        self.incoming.recv().await
    }
}

async fn pump(
    mut connection: impl SignalChannel,
    mut to_send: mpsc::UnboundedReceiver<ClientMessage>,
    received: mpsc::UnboundedSender<ServerMessage>,
) {
    loop {
        tokio::select! {
            message = to_send.recv() => match message {
                Some(message) => {
                    if connection.send(&message).await.is_err() {
                        return;
                    }
                }
                // The driver is gone.
                None => return,
            },
            message = connection.next(Duration::from_secs(3600)) => match message {
                Ok(message) => {
                    if received.send(message).is_err() {
                        return;
                    }
                }
                Err(SignalError::Timeout(_)) => {}
                Err(_) => return,
            },
        }
    }
}
