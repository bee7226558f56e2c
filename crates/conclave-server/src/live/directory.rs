//! Where a live meeting runs, and how to hand it a command. The default,
//! [`LocalRooms`], runs every meeting on this node, one task each; a cluster
//! of nodes will put another [`MeetingDirectory`] here (one that finds the
//! meeting's owner node and sends it the command) without the callers
//! changing. [`Loopback`] stands in for that remote case in tests: every
//! command and every output crosses as JSON and back, as it would between
//! nodes, so anything that does not survive the trip fails a test here
//! first.

use super::protocol::{Deliver, MeetingCommand, MeetingOutput, Undeliverable};
use conclave_room::RoomConfig;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Commands queued for one meeting before new ones are refused as a flood.
const COMMAND_CAPACITY: usize = 4096;

/// What it takes to start a meeting's room.
#[derive(Debug, Clone)]
pub struct Opening {
    pub meeting_id: String,
    pub org_id: String,
    pub room: RoomConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// No room runs for the meeting (it closed, or never opened).
    #[error("the meeting is not live")]
    NotLive,
    /// The meeting's command queue is full.
    #[error("the meeting is busy")]
    Busy,
}

pub trait MeetingDirectory: Send + Sync + 'static {
    /// Whether the meeting has a live room.
    fn is_live(&self, meeting_id: &str) -> bool;
    /// Hands `command` to the meeting's room, wherever it runs.
    fn send(&self, meeting_id: &str, command: MeetingCommand) -> Result<(), DirectoryError>;
    /// Starts the meeting's room unless one runs, then hands it `command`,
    /// in one step (a room closing meanwhile cannot swallow the command).
    fn open_and_send(&self, opening: Opening, command: MeetingCommand) -> Result<(), DirectoryError>;
    /// The live meetings of an organisation (for policy changes).
    fn live_in(&self, org_id: &str) -> Vec<String>;
    /// Every live meeting (for what concerns an account wherever it is).
    fn every_live(&self) -> Vec<String>;
}

/// Starts a room's actor on this node: given the opening, the queue of
/// its commands and where its outputs go.
pub type SpawnRoom = Box<dyn Fn(Opening, mpsc::Receiver<MeetingCommand>, Arc<dyn Deliver>) + Send + Sync>;

struct LocalRoom {
    org_id: String,
    commands: mpsc::Sender<MeetingCommand>,
}

/// Every meeting on this node: one actor task each, found by id.
pub struct LocalRooms {
    rooms: Mutex<HashMap<String, LocalRoom>>,
    spawn: SpawnRoom,
    /// Where the rooms' outputs go.
    deliver: Arc<dyn Deliver>,
}

impl LocalRooms {
    pub fn new(spawn: SpawnRoom, deliver: Arc<dyn Deliver>) -> Self {
        Self { rooms: Mutex::new(HashMap::new()), spawn, deliver }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, LocalRoom>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by an empty room's actor: closes it unless a command is
    /// already on its way (checked under the lock every sender takes).
    pub fn close_if_idle(&self, meeting_id: &str, commands: &mpsc::Receiver<MeetingCommand>) -> bool {
        let mut rooms = self.lock();
        if commands.is_empty() {
            rooms.remove(meeting_id);
            true
        } else {
            false
        }
    }

    /// Forgets a room whose actor stopped.
    pub fn forget(&self, meeting_id: &str) {
        self.lock().remove(meeting_id);
    }
}

fn queue(room: &LocalRoom, command: MeetingCommand) -> Result<(), DirectoryError> {
    room.commands.try_send(command).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => DirectoryError::Busy,
        mpsc::error::TrySendError::Closed(_) => DirectoryError::NotLive,
    })
}

impl MeetingDirectory for LocalRooms {
    fn is_live(&self, meeting_id: &str) -> bool {
        self.lock().contains_key(meeting_id)
    }

    fn send(&self, meeting_id: &str, command: MeetingCommand) -> Result<(), DirectoryError> {
        queue(self.lock().get(meeting_id).ok_or(DirectoryError::NotLive)?, command)
    }

    fn open_and_send(&self, opening: Opening, command: MeetingCommand) -> Result<(), DirectoryError> {
        let mut rooms = self.lock();
        if !rooms.contains_key(&opening.meeting_id) {
            let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
            rooms.insert(opening.meeting_id.clone(), LocalRoom { org_id: opening.org_id.clone(), commands: tx });
            (self.spawn)(opening.clone(), rx, self.deliver.clone());
        }
        queue(&rooms[&opening.meeting_id], command)
    }

    fn live_in(&self, org_id: &str) -> Vec<String> {
        self.lock().iter().filter(|(_, room)| room.org_id == org_id).map(|(id, _)| id.clone()).collect()
    }

    fn every_live(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}

/// Sends everything through JSON and back on its way to and from the rooms,
/// as a directory reaching other nodes would: the test transport that keeps
/// the runtime's boundary plain data.
pub struct Loopback(pub Arc<LocalRooms>);

/// A value as it arrives after crossing the wire.
fn across<T: Serialize + DeserializeOwned>(value: &T) -> T {
    let json = serde_json::to_string(value).expect("runtime messages serialise");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("runtime message did not survive JSON: {e}: {json}"))
}

impl MeetingDirectory for Loopback {
    fn is_live(&self, meeting_id: &str) -> bool {
        self.0.is_live(meeting_id)
    }

    fn send(&self, meeting_id: &str, command: MeetingCommand) -> Result<(), DirectoryError> {
        self.0.send(meeting_id, across(&command))
    }

    fn open_and_send(&self, opening: Opening, command: MeetingCommand) -> Result<(), DirectoryError> {
        self.0.open_and_send(opening, across(&command))
    }

    fn live_in(&self, org_id: &str) -> Vec<String> {
        self.0.live_in(org_id)
    }

    fn every_live(&self) -> Vec<String> {
        self.0.every_live()
    }
}

/// The outputs' side of [`Loopback`].
pub struct LoopbackDeliver(pub Arc<dyn Deliver>);

impl Deliver for LoopbackDeliver {
    fn deliver(&self, output: MeetingOutput) -> Result<(), Undeliverable> {
        self.0.deliver(across(&output))
    }
}
