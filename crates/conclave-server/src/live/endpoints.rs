//! This node's ends of the meetings it talks to: the queue of every
//! connection it holds, and everyone waiting for an answer. Meetings
//! address both by id ([`MeetingOutput`]); this is where the ids meet the
//! channels, which never leave the node.

use super::protocol::{Attendee, ConnectionId, Deliver, Frame, MeetingOutput, RequestId, Undeliverable};
use conclave_room::{ReportParties, ReportRefusal};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot};

/// Frames queued for one connection before it is judged too slow and cut.
pub const OUTBOX_CAPACITY: usize = 512;

/// What an asker is waiting for.
enum Waiting {
    Resume(oneshot::Sender<bool>),
    Report(oneshot::Sender<Result<ReportParties, ReportRefusal>>),
    Attendance(oneshot::Sender<Vec<Attendee>>),
}

#[derive(Default)]
pub struct Endpoints {
    connections: Mutex<HashMap<ConnectionId, mpsc::Sender<Frame>>>,
    waiting: Mutex<HashMap<RequestId, Waiting>>,
    next_connection: AtomicU64,
    next_request: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Endpoints {
    /// A new connection's id and the queue its frames arrive on.
    pub fn connect(&self) -> (ConnectionId, mpsc::Receiver<Frame>) {
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
        lock(&self.connections).insert(id, tx);
        (id, rx)
    }

    pub fn disconnect(&self, id: ConnectionId) {
        lock(&self.connections).remove(&id);
    }

    /// Waits for the answer to a resume: `request` goes in the command.
    pub fn await_resume(&self) -> (RequestId, oneshot::Receiver<bool>) {
        let (tx, rx) = oneshot::channel();
        (self.wait(Waiting::Resume(tx)), rx)
    }

    /// Waits for a report's verdict: `request` goes in the command.
    pub fn await_report(&self) -> (RequestId, oneshot::Receiver<Result<ReportParties, ReportRefusal>>) {
        let (tx, rx) = oneshot::channel();
        (self.wait(Waiting::Report(tx)), rx)
    }

    /// Waits for a meeting's attendance: `request` goes in the command.
    pub fn await_attendance(&self) -> (RequestId, oneshot::Receiver<Vec<Attendee>>) {
        let (tx, rx) = oneshot::channel();
        (self.wait(Waiting::Attendance(tx)), rx)
    }

    fn wait(&self, waiting: Waiting) -> RequestId {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed) + 1;
        lock(&self.waiting).insert(id, waiting);
        id
    }

    /// Forgets an asker whose command never reached a meeting.
    pub fn give_up(&self, request: RequestId) {
        lock(&self.waiting).remove(&request);
    }
}

impl Deliver for Endpoints {
    fn deliver(&self, output: MeetingOutput) -> Result<(), Undeliverable> {
        match output {
            MeetingOutput::ToConnection { connection, frame } => {
                let sender = lock(&self.connections).get(&connection).cloned().ok_or(Undeliverable::Gone)?;
                sender.try_send(frame).map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => Undeliverable::Full,
                    mpsc::error::TrySendError::Closed(_) => Undeliverable::Gone,
                })
            }
            MeetingOutput::Resumed { request, accepted } => match lock(&self.waiting).remove(&request) {
                Some(Waiting::Resume(reply)) => reply.send(accepted).map_err(|_| Undeliverable::Gone),
                _ => Err(Undeliverable::Gone),
            },
            MeetingOutput::ReportVerdict { request, verdict } => match lock(&self.waiting).remove(&request) {
                Some(Waiting::Report(reply)) => {
                    reply.send(verdict.map(|parties| *parties)).map_err(|_| Undeliverable::Gone)
                }
                _ => Err(Undeliverable::Gone),
            },
            MeetingOutput::Attendance { request, present } => match lock(&self.waiting).remove(&request) {
                Some(Waiting::Attendance(reply)) => reply.send(present).map_err(|_| Undeliverable::Gone),
                _ => Err(Undeliverable::Gone),
            },
        }
    }
}
