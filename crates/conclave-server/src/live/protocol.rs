//! What goes into a meeting's actor and what comes out of it, as plain
//! serialisable data addressed by connection and request ids. Nothing here
//! is a channel or a callback: a command can cross to another node as JSON
//! and come back the same, which the loopback directory does to every one
//! of them when it is switched on (see `directory.rs`).

use conclave_proto::signal::{ClientMessage, EndReason, ParticipantId, ServerMessage};
use conclave_room::{Identity, PolicyView, ReportParties, ReportRefusal, Standing};
use serde::{Deserialize, Serialize};

/// A participant's connection to a meeting: its signaling socket, or any
/// other transport that speaks for a seat (a recorder, a phone gateway).
/// Unique on the node that holds the connection.
pub type ConnectionId = u64;

/// Numbers a command that wants an answer, so the answer can find its asker.
pub type RequestId = u64;

/// Who a join ticket admits to the room: what the server established when
/// it issued the ticket, never what the client says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entrant {
    pub display_name: String,
    pub identity: Identity,
    pub standing: Standing,
}

/// Everything a meeting's actor is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum MeetingCommand {
    /// A new connection with a redeemed join ticket, and the resume token
    /// its seat will have.
    Join { connection: ConnectionId, entrant: Entrant, resume_token: String },
    /// A connection presenting a seat's resume token; answered with
    /// [`MeetingOutput::Resumed`].
    Resume { request: RequestId, connection: ConnectionId, resume_token: String },
    /// A message from a connection's participant.
    Message { connection: ConnectionId, message: ClientMessage },
    /// The connection is gone (closed, dropped or cut off).
    Closed { connection: ConnectionId },
    /// The organisation's policy changed.
    Policy { policy: PolicyView },
    /// The meeting is over from outside (deleted, or shut down).
    Terminate { reason: EndReason },
    /// The meeting's secrets were rotated: the old host key stops working.
    HostKey { host_key: String },
    /// A report through the REST API; answered with [`MeetingOutput::ReportVerdict`].
    Report { request: RequestId, resume_token: String, reported: ParticipantId },
    /// The owner or an admin lifted bans: these keys may join again.
    BansLifted { keys: Vec<String> },
    /// The organisation closed this account: its seats leave now.
    AccountClosed { user_id: String },
    /// Something the media plane has for this meeting's participants.
    Media { event: MediaEvent },
    /// Who is in the meeting now (for a conversation's call banner);
    /// answered with [`MeetingOutput::Attendance`].
    Attendance { request: RequestId },
    /// A participant's account device was registered and vouched for (off
    /// the meeting's task), or could not be.
    DeviceVouched { participant: ParticipantId, outcome: Result<VouchedDevice, String> },
}

/// A device credential as the server signed it, for a participant's seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VouchedDevice {
    /// base64 of the signed credential.
    pub credential: String,
    /// base64 of the authority's key.
    pub authority: String,
    pub owner: conclave_proto::credential::DeviceOwner,
}

/// What the media plane tells a meeting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum MediaEvent {
    /// A message for one participant's signaling connection (SDP, layers).
    Signal { participant: ParticipantId, message: ServerMessage },
    /// Who speaks now, if anyone.
    ActiveSpeaker { participant: Option<ParticipantId> },
    /// What the SFU sees of a participant's session (for call quality).
    Quality { participant: ParticipantId, view: conclave_proto::quality::SfuView },
}

/// What a connection is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "frame", rename_all = "snake_case")]
pub enum Frame {
    /// Boxed: a queue slot is then a pointer, not the largest message.
    Message { message: Box<ServerMessage> },
    /// Close the connection after what was sent before.
    Close,
}

/// Everything a meeting's actor sends out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "output", rename_all = "snake_case")]
pub enum MeetingOutput {
    ToConnection {
        connection: ConnectionId,
        frame: Frame,
    },
    /// The answer to a [`MeetingCommand::Resume`]: whether the token was a
    /// seat's (the connection now holds it).
    Resumed {
        request: RequestId,
        accepted: bool,
    },
    /// The answer to a [`MeetingCommand::Report`].
    ReportVerdict {
        request: RequestId,
        /// Boxed: who the parties are is big beside every other output.
        verdict: Result<Box<ReportParties>, ReportRefusal>,
    },
    /// The answer to a [`MeetingCommand::Attendance`]: everyone admitted.
    Attendance {
        request: RequestId,
        present: Vec<Attendee>,
    },
}

/// Someone admitted to a meeting, as a conversation's call banner names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attendee {
    /// Their account, when signed in.
    pub user_id: Option<String>,
    pub display_name: String,
}

impl MeetingOutput {
    pub fn message(connection: ConnectionId, message: ServerMessage) -> Self {
        Self::ToConnection { connection, frame: Frame::Message { message: Box::new(message) } }
    }

    pub fn close(connection: ConnectionId) -> Self {
        Self::ToConnection { connection, frame: Frame::Close }
    }
}

/// Why an output could not be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Undeliverable {
    /// The connection's queue is full: it reads too slowly.
    #[error("the connection is too slow")]
    Full,
    /// Nobody waits for it any more (the connection or the asker is gone).
    #[error("nobody is there")]
    Gone,
}

/// Where a meeting's outputs go: the connections and askers of this node,
/// or (in a cluster) the node that holds them.
pub trait Deliver: Send + Sync + 'static {
    /// Hands an output on without waiting. A full connection is reported,
    /// so the meeting can cut it off rather than block every other one.
    fn deliver(&self, output: MeetingOutput) -> Result<(), Undeliverable>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_outputs_survive_json_unchanged() {
        let commands = [
            MeetingCommand::Join {
                connection: 7,
                entrant: Entrant {
                    display_name: "Ada".into(),
                    identity: Identity { ip: Some("203.0.113.4".into()), ..Default::default() },
                    standing: Standing::Ordinary,
                },
                resume_token: "rs_x".into(),
            },
            MeetingCommand::Message { connection: 7, message: ClientMessage::RaiseHand },
            MeetingCommand::Media { event: MediaEvent::ActiveSpeaker { participant: Some(7) } },
            MeetingCommand::Report { request: 3, resume_token: "rs_x".into(), reported: 9 },
            MeetingCommand::Attendance { request: 4 },
        ];
        for command in commands {
            let json = serde_json::to_string(&command).unwrap();
            assert_eq!(serde_json::from_str::<MeetingCommand>(&json).unwrap(), command, "{json}");
        }
        let outputs = [
            MeetingOutput::message(7, ServerMessage::Pong),
            MeetingOutput::close(7),
            MeetingOutput::ReportVerdict { request: 3, verdict: Err(ReportRefusal::Throttled { retry_after_ms: 5 }) },
            MeetingOutput::Attendance {
                request: 4,
                present: vec![Attendee { user_id: Some("u-1".into()), display_name: "Ada".into() }],
            },
        ];
        for output in outputs {
            let json = serde_json::to_string(&output).unwrap();
            assert_eq!(serde_json::from_str::<MeetingOutput>(&json).unwrap(), output, "{json}");
        }
    }
}
