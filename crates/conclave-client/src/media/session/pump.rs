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
        tokio::spawn(pump(connection, to_send, received, KEEPALIVE));
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

/// How often an otherwise silent connection pings (as the browser does).
const KEEPALIVE: Duration = Duration::from_secs(20);

async fn pump(
    mut connection: impl SignalChannel,
    mut to_send: mpsc::UnboundedReceiver<ClientMessage>,
    received: mpsc::UnboundedSender<ServerMessage>,
    keepalive_every: Duration,
) {
    // The server closes a connection that says nothing for a minute; a
    // participant that only watches has nothing else to say.
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + keepalive_every, keepalive_every);
    loop {
        tokio::select! {
            _ = keepalive.tick() => {
                if connection.send(&ClientMessage::Ping).await.is_err() {
                    return;
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A connection that records what is sent and never receives anything.
    struct Silent(Arc<Mutex<Vec<ClientMessage>>>);

    impl SignalChannel for Silent {
        async fn send(&mut self, message: &ClientMessage) -> Result<(), SignalError> {
            self.0.lock().unwrap().push(message.clone());
            Ok(())
        }

        async fn next(&mut self, within: Duration) -> Result<ServerMessage, SignalError> {
            tokio::time::sleep(within).await;
            Err(SignalError::Timeout("a message".into()))
        }
    }

    #[tokio::test]
    async fn a_participant_that_only_watches_pings_before_the_server_gives_up_on_it() {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (_outgoing, to_send) = mpsc::unbounded_channel();
        let (received, _incoming) = mpsc::unbounded_channel();
        // The same loop as `Signaling::start`, on a shorter clock.
        let every = Duration::from_millis(40);
        tokio::spawn(pump(Silent(sent.clone()), to_send, received, every));
        tokio::time::sleep(every * 8).await;
        let sent = sent.lock().unwrap();
        assert!(!sent.is_empty(), "a silent connection pings");
        assert!(sent.iter().all(|m| *m == ClientMessage::Ping), "{sent:?}");
    }

    #[test]
    fn pings_come_well_inside_the_servers_idle_limit() {
        // conclave-server closes a connection silent for 60 s.
        assert!(KEEPALIVE * 2 < Duration::from_secs(60));
    }
}
